"""OKX v5 swap wire format (ccxt class `okx`).

REST under /api/v5/public with the `{"code":"0","msg":"","data":[...]}` envelope; WebSocket
/ws/v5/public with one `liquidation-orders` subscription per instType and a text `ping`
keepalive. Sizes are in contracts: coins = sz * ctVal.

Funding, index and long/short ratios follow the field lists and response examples of "Get
funding rate" (https://www.okx.com/docs-v5/en/#public-data-rest-api-get-funding-rate), "Get index
tickers" (#public-data-rest-api-get-index-tickers) and the Trading Statistics contract ratios
(#trading-statistics-rest-api-get-contract-long-short-ratio and the two top-trader ones): every
number a string, times in ms, ratio rows `[ts, ratio]` newest first.
"""

from __future__ import annotations

import uuid
from functools import partial
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, Final

from exporter.fakeexchange.history import CANDLE_MS
from exporter.fakeexchange.markets import RECORDED_MARKETS, FakeMarket
from exporter.fakeexchange.protocol import (
    BadParameterError,
    Frame,
    Inbound,
    InvalidRequest,
    Liquidation,
    PingRequest,
    Quote,
    RestContext,
    RestHandler,
    RestReply,
    Side,
    SubscribeRequest,
    VenueProtocol,
    ack_each_arg,
    compact,
    decimal_str,
    fixed_str,
    group_by_symbol,
    int_param,
    json_reply,
    loads_object,
    parse_op_args,
    plain_error,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence


_CHANNEL: Final = "liquidation-orders"
_INST_TYPE: Final = "SWAP"
_LIST_MS: Final = "1611916828000"
_SIDES: Final = ("long", "short")
_INST_TYPES: Final = frozenset({"SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"})
_RECENT_CANDLES: Final = 1440
"""/market/candles serves the latest 1440 candles; older ones are under /market/history-candles."""
_OI_PERIODS_MS: Final = {"5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1H": 3_600_000}
"""Open interest is a level: a longer period's rows are the 5-minute rows on its grid (the
UTC/HK-anchored 2H+ periods are not kept)."""
_RATIO_PERIODS_MS: Final = {**_OI_PERIODS_MS, "2H": 7_200_000, "4H": 14_400_000}
"""The ratio periods on a plain grid (6H and longer open at UTC+8 or UTC 0: not served)."""
_RATIO_ROWS: Final = 1440
"""The ratio endpoints keep the latest 1440 periods."""
_RATIO_PATHS: Final = {
    "/api/v5/rubik/stat/contracts/long-short-account-ratio-contract": "accounts",
    "/api/v5/rubik/stat/contracts/long-short-account-ratio-contract-top-trader": "top_accounts",
    "/api/v5/rubik/stat/contracts/long-short-position-ratio-contract-top-trader": "top_positions",
}
"""Each contract ratio endpoint and the `MarketState.long_short` kind it serves."""
_EVERY_SWAP: Final = "ANY"
_NO_INSTRUMENT: Final = "Instrument ID, Instrument ID code, or Spread ID doesn't exist."
# The funding-rate bounds OKX prints for a major swap (the documented example).
_MAX_FUNDING_RATE: Final = "0.00375"
_MIN_FUNDING_RATE: Final = "-0.00375"


class OkxProtocol(VenueProtocol):
    """OKX swaps: one all-market `liquidation-orders` channel, sizes in contracts."""

    venue: ClassVar[str] = "okx"
    # Markets of its recorded frames only (markets.py).
    EXTRA_MARKETS: ClassVar[tuple[FakeMarket, ...]] = (RECORDED_MARKETS["CNPY"],)
    ccxt_id: ClassVar[str] = "okx"
    ws_paths: ClassVar[tuple[str, ...]] = ("/ws/v5/public",)

    def market_id(self, market: FakeMarket) -> str:
        """OKX swap ids are BASE-QUOTE-SWAP."""
        return f"{market.base}-{market.quote}-SWAP"

    def ccxt_config(self, rest_url: str, ws_url: str) -> dict[str, Any]:
        """Overrides from EXCHANGES.md; only swaps, so load_markets is one request."""
        return {
            "urls": {"api": {"rest": rest_url, "ws": f"{ws_url}/ws/v5"}},
            "options": {"fetchMarkets": {"types": ["swap"]}},
        }

    def new_conn_id(self) -> str:
        """OKX connIds are 8 hex digits."""
        return uuid.uuid4().hex[:8]

    # --- REST ---------------------------------------------------------------------------

    def rest_routes(self) -> Mapping[str, RestHandler]:
        """Instruments (load_markets), open interest, mark price and funding of every swap,
        index tickers, time, history and the long/short ratios."""
        ratios = {path: partial(self._long_short, kind) for path, kind in _RATIO_PATHS.items()}
        return {
            "/api/v5/public/instruments": self._instruments,
            "/api/v5/public/open-interest": self._open_interest,
            "/api/v5/public/mark-price": self._mark_price,
            "/api/v5/public/funding-rate": self._funding_rate,
            "/api/v5/market/index-tickers": self._index_tickers,
            "/api/v5/public/time": _server_time,
            "/api/v5/rubik/stat/contracts/open-interest-history": self._open_interest_history,
            "/api/v5/market/candles": partial(self._candles, recent_only=True),
            "/api/v5/market/history-candles": partial(self._candles, recent_only=False),
            **ratios,
        }

    def rest_error(self, status: int) -> RestReply:
        """50011 for 429 (ccxt maps it to RateLimitExceeded); plain text otherwise."""
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            return json_reply({"msg": "Too Many Requests", "code": "50011"}, status)
        return plain_error(status)

    def _instruments(self, ctx: RestContext) -> RestReply:
        return self._listing(ctx, self._instrument)

    def _instrument(self, quote: Quote, now_ms: int) -> dict[str, Any]:
        del now_ms  # instrument metadata does not move
        m = quote.market
        family = f"{m.base}-{m.quote}"
        return {
            "alias": "",
            "auctionEndTime": "",
            "baseCcy": "",
            "category": "1",
            "ctMult": "1",
            "ctType": "linear",
            "ctVal": m.contract_size,
            "ctValCcy": m.base,
            "expTime": "",
            "instFamily": family,
            "instId": self.market_id(m),
            "instType": _INST_TYPE,
            "lever": str(m.max_leverage),
            "listTime": _LIST_MS,
            "contTdSwTime": _LIST_MS,
            "lotSz": m.okx_lot_size,
            "maxIcebergSz": "100000000.0000000000000000",
            "maxLmtAmt": "20000000",
            "maxLmtSz": "100000000",
            "maxMktAmt": "",
            "maxMktSz": "10000",
            "maxStopSz": "10000",
            "maxTriggerSz": "100000000.0000000000000000",
            "maxTwapSz": "100000000.0000000000000000",
            "minSz": m.okx_lot_size,
            "optType": "",
            "quoteCcy": "",
            "ruleType": "normal",
            "settleCcy": m.quote,
            "state": "live",
            "stk": "",
            "tickSz": m.tick_plain,
            "uly": family,
        }

    def _open_interest(self, ctx: RestContext) -> RestReply:
        return self._listing(ctx, self._oi_row)

    def _oi_row(self, quote: Quote, now_ms: int) -> dict[str, Any]:
        m, state = quote.market, quote.state
        coins = state.open_interest_coins
        return {
            "instId": self.market_id(m),
            "instType": _INST_TYPE,
            "oi": decimal_str(coins / m.contract_coins),
            "oiCcy": decimal_str(coins),
            "oiUsd": f"{coins * state.mark_price:.4f}",
            "ts": str(now_ms),
        }

    def _mark_price(self, ctx: RestContext) -> RestReply:
        return self._listing(ctx, self._mark_row)

    def _mark_row(self, quote: Quote, now_ms: int) -> dict[str, Any]:
        m = quote.market
        return {
            "instType": _INST_TYPE,
            "instId": self.market_id(m),
            "markPx": fixed_str(round(quote.state.mark_price, 8), m.tick_decimals),
            "ts": str(now_ms),
        }

    def _funding_rate(self, ctx: RestContext) -> RestReply:
        """One swap's funding (`instId`), or every swap's for `instId=ANY`."""
        inst_id = ctx.query.get("instId", "")
        if not inst_id:
            return _error("50014", "Parameter instId can not be empty.")
        if inst_id == _EVERY_SWAP:
            quotes = list(ctx.quotes)
        else:
            quote = ctx.quote(inst_id, self.market_id)
            if quote is None:
                return _error("51001", _NO_INSTRUMENT)
            quotes = [quote]
        rows = [self._funding_row(q, ctx.now_ms) for q in quotes]
        return json_reply({"code": "0", "data": rows, "msg": ""})

    def _funding_row(self, quote: Quote, now_ms: int) -> dict[str, Any]:
        """`fundingRate` settles at `fundingTime`, the next settlement; `nextFundingTime` is
        the one after (their step is the interval); `nextFundingRate` is "" since OKX dropped
        the `next_period` method, so the state's predicted rate is not served."""
        state = quote.state
        funding_ms = state.next_funding_ms(now_ms)
        premium = (state.mark_price - state.index_price) / state.index_price
        return {
            "formulaType": "noRate",
            "fundingRate": decimal_str(state.funding_rate),
            "fundingTime": str(funding_ms),
            "impactValue": "",
            "instId": self.market_id(quote.market),
            "instType": _INST_TYPE,
            "interestRate": "",
            "maxFundingRate": _MAX_FUNDING_RATE,
            "method": "current_period",
            "minFundingRate": _MIN_FUNDING_RATE,
            "nextFundingRate": "",
            "nextFundingTime": str(funding_ms + state.funding_interval_ms),
            "premium": decimal_str(premium),
            "settFundingRate": decimal_str(state.funding_rate),
            "settState": "settled",
            "ts": str(now_ms),
        }

    def _index_tickers(self, ctx: RestContext) -> RestReply:
        """The index (`BASE-QUOTE`, a swap's `uly`) of every swap whose quote currency is
        `quoteCcy`, or the one index `instId`; one of them is required (the error OKX gives
        without either is not documented: its usual 50014)."""
        quote_ccy = ctx.query.get("quoteCcy", "")
        inst_id = ctx.query.get("instId", "")
        if not quote_ccy and not inst_id:
            return _error("50014", "Parameter quoteCcy can not be empty.")
        rows: dict[str, dict[str, Any]] = {}
        for quote in ctx.quotes:
            m = quote.market
            index_id = f"{m.base}-{m.quote}"
            if (not inst_id or index_id == inst_id) and (not quote_ccy or m.quote == quote_ccy):
                rows.setdefault(index_id, _index_row(index_id, quote, ctx.now_ms))
        if inst_id and not rows:
            return _error("51001", _NO_INSTRUMENT)
        return json_reply({"code": "0", "msg": "", "data": list(rows.values())})

    def _statistics_page(
        self, ctx: RestContext, periods: Mapping[str, int]
    ) -> tuple[Quote, int, int, int | None, int | None] | RestReply:
        """A statistics request's market (`instId`), period (default 5m) and its paging
        (`limit` at most 100, exclusive `begin` and `end`), or OKX's refusal."""
        quote = self._history_quote(ctx)
        if isinstance(quote, RestReply):
            return quote
        period = periods.get(ctx.query.get("period", "5m"))
        if period is None:
            return _error("51000", "Parameter period error")
        try:
            limit = int_param(ctx.query, "limit", 100, 100) or 100
            begin = int_param(ctx.query, "begin")
            end = int_param(ctx.query, "end")
        except BadParameterError as exc:
            return _error("51000", f"Parameter {exc.name} error")
        return quote, period, limit, begin, end

    def _long_short(self, kind: str, ctx: RestContext) -> RestReply:
        """A contract long/short ratio, `[ts, ratio]` rows newest first, one per period on
        its grid from the current one back, between the exclusive bounds `begin` and `end`,
        at most `limit` (max 100); the fake keeps one ratio per kind (the state's), and none
        (empty `data`) for a kind the state lacks."""
        page = self._statistics_page(ctx, _RATIO_PERIODS_MS)
        if isinstance(page, RestReply):
            return page
        quote, period, limit, begin, end = page
        ratio = quote.state.long_short.get(kind)
        newest = ctx.now_ms // period * period
        times = (newest - i * period for i in range(_RATIO_ROWS))
        kept = [t for t in times if (end is None or t < end) and (begin is None or t > begin)]
        data = [] if ratio is None else [[str(t), decimal_str(ratio)] for t in kept[:limit]]
        return json_reply({"code": "0", "msg": "", "data": data})

    def _open_interest_history(self, ctx: RestContext) -> RestReply:
        """Contract open-interest history, newest first: `[ts, contracts, coins, USD]` rows
        between the exclusive bounds `begin` and `end`, at most `limit` (max 100), newest
        first from `end`."""
        page = self._statistics_page(ctx, _OI_PERIODS_MS)
        if isinstance(page, RestReply):
            return page
        quote, period, limit, begin, end = page
        m = quote.market
        history = ctx.history(self.unified_symbol(m))
        rows = history.pick(*_exclusive(begin, end), limit, newest=True, period_ms=period)
        data = [
            [
                str(history.ts_ms[i]),
                decimal_str(float(history.open_interest_coins[i]) / m.contract_coins),
                decimal_str(float(history.open_interest_coins[i])),
                decimal_str(float(history.open_interest_coins[i] * history.open[i])),
            ]
            for i in reversed(rows)
        ]
        return json_reply({"code": "0", "msg": "", "data": data})

    def _candles(self, ctx: RestContext, *, recent_only: bool) -> RestReply:
        """5-minute candles, newest first, between the exclusive bounds `before` and `after`,
        at most `limit` (default 100, max 300), newest first from `after`. `/market/candles`
        holds only the latest 1440 candles; `/market/history-candles` goes further back."""
        quote = self._history_quote(ctx)
        if isinstance(quote, RestReply):
            return quote
        if ctx.query.get("bar", "1m") != "5m":  # the only bar the fake keeps
            return _error("51000", "Parameter bar error")
        try:
            limit = int_param(ctx.query, "limit", 100, 300) or 100
            before = int_param(ctx.query, "before")
            after = int_param(ctx.query, "after")
        except BadParameterError as exc:
            return _error("51000", f"Parameter {exc.name} error")
        first, last = _exclusive(before, after)
        if recent_only:
            oldest = (ctx.now_ms // CANDLE_MS - _RECENT_CANDLES + 1) * CANDLE_MS
            first = oldest if first is None else max(first, oldest)
        m = quote.market
        history = ctx.history(self.unified_symbol(m))
        rows = history.pick(first, last, limit, newest=True)

        def price(values: Any, i: int) -> str:
            return fixed_str(float(values[i]), m.tick_decimals)

        data = []
        for i in reversed(rows):
            ts = int(history.ts_ms[i])
            coins = history.volume_coins(i)
            data.append(
                [
                    str(ts),
                    price(history.open, i),
                    price(history.high, i),
                    price(history.low, i),
                    price(history.close, i),
                    decimal_str(coins / m.contract_coins),
                    decimal_str(coins),
                    decimal_str(coins * float(history.close[i])),
                    "1" if ts + CANDLE_MS <= ctx.now_ms else "0",  # confirmed (candle closed)
                ]
            )
        return json_reply({"code": "0", "msg": "", "data": data})

    def _history_quote(self, ctx: RestContext) -> Quote | RestReply:
        """The swap named by ?instId=, or OKX's refusal."""
        inst_id = ctx.query.get("instId", "")
        if not inst_id:
            return _error("50014", "Parameter instId can not be empty.")
        quote = ctx.quote(inst_id, self.market_id)
        if quote is None:
            return _error("51001", _NO_INSTRUMENT)
        return quote

    def _listing(
        self,
        ctx: RestContext,
        row: Callable[[Quote, int], dict[str, Any]],
    ) -> RestReply:
        """Shared instType/instId/instFamily filtering of the public list endpoints."""
        inst_type = ctx.query.get("instType", "")
        if not inst_type:
            return _error("50014", "Parameter instType can not be empty.")
        if inst_type not in _INST_TYPES:
            return _error("51000", "Parameter instType error")
        inst_id = ctx.query.get("instId")
        family = ctx.query.get("instFamily") or ctx.query.get("uly")
        quotes = [
            q
            for q in ctx.quotes
            if inst_type == _INST_TYPE
            and (not inst_id or self.market_id(q.market) == inst_id)
            and (not family or f"{q.market.base}-{q.market.quote}" == family)
        ]
        if inst_id and not quotes:
            return _error("51001", _NO_INSTRUMENT)
        return json_reply({"code": "0", "msg": "", "data": [row(q, ctx.now_ms) for q in quotes]})

    # --- WebSocket ----------------------------------------------------------------------

    def parse(self, text: str) -> Inbound:
        """Text `ping`, or `op` subscribe/unsubscribe with a list of `arg` objects."""
        return parse_op_args(text, _is_liquidation_arg)

    def ack(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """One `{"event":"subscribe","arg":...}` per arg, as OKX confirms each channel."""
        return ack_each_arg(request, conn_id)

    def reject(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """60018 for a channel that does not exist, else 60012 Illegal request (BadRequest)."""
        if request.invalid:
            arg = loads_object(request.invalid[0]) or {}
            msg = (
                f"Wrong URL or channel:{arg.get('channel')},instType:{arg.get('instType')} "
                "doesn't exist. Please use the correct URL, channel and parameters referring "
                "to API document."
            )
            return [compact({"event": "error", "code": "60018", "msg": msg, "connId": conn_id})]
        return [_illegal(request.text, conn_id)]

    def invalid(self, request: InvalidRequest, conn_id: str) -> list[str]:
        """OKX answers anything it cannot parse with 60012 and the request echoed."""
        return [_illegal(request.text, conn_id)]

    def pong(self, ping: PingRequest, conn_id: str) -> str:
        """Text `pong`."""
        del ping, conn_id
        return "pong"

    def encode(self, liquidations: Sequence[Liquidation]) -> list[Frame]:
        """One frame per symbol; each liquidation its own `data` entry with one detail.

        ccxt's handler reads only `details[0]` of an entry, so packing several details into
        one entry would silently lose all but the first in ccxt.
        """
        return [self._frame(group) for group in group_by_symbol(liquidations)]

    def _frame(self, group: Sequence[Liquidation]) -> Frame:
        m = self.market(group[0].symbol)
        family = f"{m.base}-{m.quote}"
        entries = [
            {
                "details": [
                    {
                        "bkLoss": "0",
                        "bkPx": fixed_str(liq.price, m.tick_decimals),
                        "ccy": "",
                        "posSide": liq.side,
                        "side": "sell" if liq.side == "long" else "buy",
                        "sz": decimal_str(liq.coins / m.contract_coins),
                        "ts": str(liq.ts_ms),
                    },
                ],
                "instFamily": family,
                "instId": self.market_id(m),
                "instType": _INST_TYPE,
                "uly": family,
            }
            for liq in group
        ]
        arg = {"channel": _CHANNEL, "instType": _INST_TYPE}
        return Frame(compact({"arg": arg, "data": entries}), group[0].symbol, tuple(group))

    def decode(self, text: str) -> list[Liquidation]:
        """Every detail of every entry; `net` positions take their side from the order side."""
        message = loads_object(text)
        if message is None or not isinstance(message.get("data"), list):
            return []
        arg = message.get("arg")
        if not isinstance(arg, dict) or arg.get("channel") != _CHANNEL:
            return []
        out = []
        for entry in message["data"]:
            market = self.by_id.get(str(entry.get("instId")))
            if market is None:
                continue
            for detail in entry.get("details", []):
                pos_side: Side = "long" if detail.get("side") == "sell" else "short"
                if detail.get("posSide") in _SIDES:
                    pos_side = detail["posSide"]
                coins = float(detail["sz"]) * market.contract_coins
                out.append(
                    Liquidation(
                        self.unified_symbol(market),
                        pos_side,
                        float(detail["bkPx"]),
                        coins,
                        int(detail["ts"]),
                    )
                )
        return out


def _exclusive(lower: int | None, upper: int | None) -> tuple[int | None, int | None]:
    """OKX's exclusive pagination bounds as the inclusive range `FakeHistory.pick` takes."""
    return (
        None if lower is None else lower + 1,
        None if upper is None else upper - 1,
    )


def _is_liquidation_arg(arg: object) -> bool:
    return (
        isinstance(arg, dict)
        and arg.get("channel") == _CHANNEL
        and arg.get("instType") == _INST_TYPE
    )


def _illegal(text: str, conn_id: str) -> str:
    msg = f"Illegal request: {text}"
    return compact({"event": "error", "code": "60012", "msg": msg, "connId": conn_id})


def _error(code: str, msg: str) -> RestReply:
    """OKX reports parameter errors with HTTP 400 and its own code."""
    return json_reply({"code": code, "msg": msg, "data": []}, HTTPStatus.BAD_REQUEST)


def _index_row(index_id: str, quote: Quote, now_ms: int) -> dict[str, Any]:
    """An index ticker: the state's index price; the fake keeps no index history, so the 24 h
    and day-open prices are the same."""
    price = decimal_str(round(quote.state.index_price, 8))
    return {
        "instId": index_id,
        "idxPx": price,
        "high24h": price,
        "sodUtc0": price,
        "open24h": price,
        "low24h": price,
        "sodUtc8": price,
        "ts": str(now_ms),
    }


def _server_time(ctx: RestContext) -> RestReply:
    return json_reply({"code": "0", "msg": "", "data": [{"ts": str(ctx.now_ms)}]})
