"""Bybit v5 linear wire format (ccxt class `bybit`).

REST under /v5/market with the `{"retCode","retMsg","result",...}` envelope; WebSocket
/v5/public/linear with `{"op":"subscribe","args":["allLiquidation.BTCUSDT"]}` and an
application-level `{"op":"ping"}` keepalive.

Funding and index price come from each market's state: a tickers row's `indexPrice`,
`fundingRate`, `nextFundingTime` (ms, a string) and `fundingIntervalHour` (whole hours, a
string), as https://bybit-exchange.github.io/docs/v5/market/tickers shows them, and
instruments-info's `fundingInterval` (minutes, a number,
https://bybit-exchange.github.io/docs/v5/market/instrument). `/v5/market/account-ratio` serves
the state's `accounts` ratio as `buyRatio` / `sellRatio` shares
(https://bybit-exchange.github.io/docs/v5/market/long-short-ratio).
"""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib import parse

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
    compact,
    decimal_str,
    fixed_str,
    floor_to_step,
    group_by_symbol,
    int_param,
    json_reply,
    loads_object,
    plain_error,
    text_reply,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


_TOPIC_PREFIX: Final = "allLiquidation."
_LEGACY_TOPIC_PREFIX: Final = "liquidation."
_PUSH_LAG_MS: Final = 400
"""Frame `ts` trails the newest `T` by ~0.4 s in recorded frames (500 ms push cycle)."""
_LAUNCH_MS: Final = "1585526400000"
_KNOWN_CATEGORIES: Final = frozenset({"spot", "linear", "inverse", "option"})
_PERIODS_MS: Final = {
    "5min": 300_000,
    "15min": 900_000,
    "30min": 1_800_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}
"""Open-interest `intervalTime`s and account-ratio `period`s (the same set). Open interest is a
level: a longer interval's rows are the 5-minute rows on its grid."""
_CURSOR_KEY: Final = "lastTime"
"""Bybit's cursors are opaque URL-encoded strings (`lastTime%3D<oldest open time served>`)."""


class BybitProtocol(VenueProtocol):
    """Bybit linear: one `allLiquidation.<ID>` topic per symbol, several rows per frame."""

    venue: ClassVar[str] = "bybit"
    # Markets of its recorded frames only (markets.py).
    EXTRA_MARKETS: ClassVar[tuple[FakeMarket, ...]] = tuple(
        RECORDED_MARKETS[base] for base in ("GALA", "PIPPIN", "ICP", "MARSCOIN")
    )
    ccxt_id: ClassVar[str] = "bybit"
    ws_paths: ClassVar[tuple[str, ...]] = ("/v5/public/linear",)
    CATEGORY: ClassVar[str] = "linear"
    """The v5 `category` served (others answer empty lists); the stream is `ws_paths[0]`."""
    LEVERAGE_CAP: ClassVar[float] = math.inf
    """The highest `maxLeverage` an instrument states."""
    FUNDING_CAP: ClassVar[str] = "0.005"
    """The funding rate's bound either way: instruments' `upperFundingRate` (`lowerFundingRate`
    negated) and tickers' `fundingCap`."""
    SERVES_HISTORY: ClassVar[bool] = True
    """Whether open-interest history and klines are served (the heatmap backfill)."""
    LEGACY_FIELDS: ClassVar[tuple[tuple[str, tuple[str, str, str, str, str]], ...]] = (
        ("side", ("symbol", "side", "price", "size", "updatedTime")),
    )
    """The single entry of a `liquidation.<ID>` frame: per shape, the key that tells it and its
    (symbol, side, price, size, time) fields, checked in order (none found: the last)."""

    def market_id(self, market: FakeMarket) -> str:
        """Bybit ids are base+quote, e.g. BTCUSDT."""
        return f"{market.base}{market.quote}"

    def ccxt_config(self, rest_url: str, ws_url: str) -> dict[str, Any]:
        """Overrides from EXCHANGES.md; only `CATEGORY` markets, so load_markets is two
        requests."""
        return {
            "urls": {
                "api": {
                    "public": rest_url,
                    "ws": {"public": {self.CATEGORY: f"{ws_url}{self.ws_paths[0]}"}},
                },
            },
            "options": {"fetchMarkets": {"types": [self.CATEGORY]}},
        }

    # --- REST ---------------------------------------------------------------------------

    def rest_routes(self) -> Mapping[str, RestHandler]:
        """Instruments (load_markets), tickers (OI, mark price, funding and index price of
        every symbol), the accounts' long/short ratio, time; and open-interest history and
        klines where `SERVES_HISTORY`."""
        routes: dict[str, RestHandler] = {
            "/v5/market/instruments-info": self._instruments,
            "/v5/market/tickers": self._tickers,
            "/v5/market/account-ratio": self._account_ratio,
            "/v5/market/time": _server_time,
        }
        if self.SERVES_HISTORY:
            routes |= {
                "/v5/market/open-interest": self._open_interest,
                "/v5/market/kline": self._kline,
            }
        return routes

    def rest_error(self, status: int) -> RestReply:
        """retCode 10006 for 429; 403 is Bybit's IP limit and comes as bare text."""
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            return json_reply(_envelope(0, {}, code=10006, msg="Too many visits!"), status)
        if status == HTTPStatus.FORBIDDEN:
            return text_reply(status, "access too frequent")
        return plain_error(status)

    def _instruments(self, ctx: RestContext) -> RestReply:
        category = ctx.query.get("category", "")
        if category not in _KNOWN_CATEGORIES:
            return _params_error(ctx.now_ms, "params error: Category is invalid")
        # Everything here is trading: PreLaunch (ccxt asks for it too) and later pages are empty.
        listed = (
            category == self.CATEGORY
            and ctx.query.get("status", "Trading") == "Trading"
            and not ctx.query.get("cursor")
        )
        quotes = self._filter(ctx) if listed else []
        rows = [self._instrument(q) for q in quotes]
        result = {"category": category, "list": rows, "nextPageCursor": ""}
        return json_reply(_envelope(ctx.now_ms, result))

    def _instrument(self, quote: Quote) -> dict[str, Any]:
        """A perpetual's row; `fundingInterval` is the state's interval in minutes."""
        m = quote.market
        max_qty = floor_to_step(20_000_000 / m.mark_price, m.qty_step)
        return {
            "symbol": self.market_id(m),
            "contractType": "LinearPerpetual",
            "status": "Trading",
            "baseCoin": m.base,
            "quoteCoin": m.quote,
            "launchTime": _LAUNCH_MS,
            "deliveryTime": "0",
            "deliveryFeeRate": "",
            "priceScale": str(m.price_decimals),
            "leverageFilter": {
                "minLeverage": "1",
                "maxLeverage": f"{min(m.max_leverage, self.LEVERAGE_CAP):.2f}",
                "leverageStep": "0.01",
            },
            "priceFilter": {
                "minPrice": m.tick_size,
                "maxPrice": fixed_str(m.mark_price * 25, m.price_decimals),
                "tickSize": m.tick_size,
            },
            "lotSizeFilter": {
                "maxOrderQty": max_qty,
                "minOrderQty": m.qty_step,
                "qtyStep": m.qty_step,
                "postOnlyMaxOrderQty": max_qty,
                "maxMktOrderQty": max_qty,
                "minNotionalValue": "5",
            },
            "unifiedMarginTrade": True,
            "fundingInterval": quote.state.funding_interval_hours * 60,
            "settleCoin": m.quote,
            "copyTrading": "both",
            "upperFundingRate": self.FUNDING_CAP,
            "lowerFundingRate": f"-{self.FUNDING_CAP}",
            "isPreListing": False,
            "preListingInfo": None,
            "displayName": "",
        }

    def _tickers(self, ctx: RestContext) -> RestReply:
        category = ctx.query.get("category", "")
        if category not in _KNOWN_CATEGORIES:
            return _params_error(ctx.now_ms, "params error: Category is invalid")
        quotes = self._filter(ctx) if category == self.CATEGORY else []
        if ctx.query.get("symbol") and not quotes:
            return _params_error(ctx.now_ms, "Not supported symbols")
        rows = [self._ticker(q, ctx.now_ms) for q in quotes]
        return json_reply(_envelope(ctx.now_ms, {"category": category, "list": rows}))

    def _ticker(self, quote: Quote, now_ms: int) -> dict[str, Any]:
        """A linear row in the docs' field order: open interest in coins, its value in USD;
        funding and index price from the state (rates printed as the docs' examples do,
        "0.0001", "-0.001034": no trailing zeros; at most 8 decimals here)."""
        m, state = quote.market, quote.state
        mark = state.mark_price
        tick = float(m.tick_size)

        def price(value: float) -> str:
            return fixed_str(round(value, m.price_decimals), m.price_decimals)

        return {
            "symbol": self.market_id(m),
            "lastPrice": price(mark),
            "indexPrice": price(state.index_price),
            "markPrice": price(mark),
            "prevPrice24h": price(mark * 0.98),
            "price24hPcnt": "0.020408",
            "highPrice24h": price(mark * 1.03),
            "lowPrice24h": price(mark * 0.97),
            "prevPrice1h": price(mark * 0.995),
            "openInterest": fixed_str(state.open_interest_coins, m.qty_decimals),
            "openInterestValue": f"{state.open_interest_coins * mark:.2f}",
            "turnover24h": f"{state.open_interest_coins * mark * 2.5:.4f}",
            "volume24h": fixed_str(state.open_interest_coins * 2.5, m.qty_decimals),
            "fundingRate": decimal_str(round(state.funding_rate, 8)),
            "nextFundingTime": str(state.next_funding_ms(now_ms)),
            "predictedDeliveryPrice": "",
            "basisRate": "",
            "deliveryFeeRate": "",
            "deliveryTime": "0",
            "ask1Size": m.qty_step,
            "bid1Price": price(mark - tick),
            "ask1Price": price(mark + tick),
            "bid1Size": m.qty_step,
            "basis": "",
            "preOpenPrice": "",
            "preQty": "",
            "curPreListingPhase": "",
            "fundingIntervalHour": str(state.funding_interval_hours),
            "basisRateYear": "",
            "fundingCap": self.FUNDING_CAP,
        }

    def _open_interest(self, ctx: RestContext) -> RestReply:
        """Open-interest history, newest first: at most `limit` (default 50, max 200) rows
        walking back from `endTime` (a lone `startTime` is ignored, as ccxt notes) and a
        `nextPageCursor` for the rows before them."""
        quote = self._history_quote(ctx)
        if isinstance(quote, RestReply):
            return quote
        period = _PERIODS_MS.get(ctx.query.get("intervalTime", ""))
        if period is None:
            return _params_error(ctx.now_ms, "params error: intervalTime is invalid")
        try:
            limit = int_param(ctx.query, "limit", 50, 200) or 50
            start = int_param(ctx.query, "startTime")
            end = int_param(ctx.query, "endTime")
            before = _cursor_ts(ctx.query.get("cursor", ""))
        except BadParameterError as exc:
            return _params_error(ctx.now_ms, f"params error: {exc.name} is invalid")
        first = start if end is not None else None
        last = ctx.now_ms if end is None else end
        if before is not None:
            last = min(last, before - 1)
        m = quote.market
        history = ctx.history(self.unified_symbol(m))
        rows = history.pick(first, last, limit, newest=True, period_ms=period)
        oldest = int(history.ts_ms[rows[0]]) if rows else None
        more = oldest is not None and bool(
            history.pick(first, oldest - 1, 1, newest=True, period_ms=period)
        )
        result = {
            "symbol": self.market_id(m),
            "category": self.CATEGORY,
            "list": [
                {
                    "openInterest": f"{history.open_interest_coins[i]:.8f}",
                    "timestamp": str(history.ts_ms[i]),
                }
                for i in reversed(rows)
            ],
            "nextPageCursor": parse.quote(f"{_CURSOR_KEY}={oldest}") if more else "",
        }
        return json_reply(_envelope(ctx.now_ms, result))

    def _kline(self, ctx: RestContext) -> RestReply:
        """5-minute klines, newest first: at most `limit` (default 200, max 1000) from the
        candle holding `start` up to `end` (the newest ones when `end` is given)."""
        quote = self._history_quote(ctx)
        if isinstance(quote, RestReply):
            return quote
        if ctx.query.get("interval") != "5":  # the only interval the fake keeps
            return _params_error(ctx.now_ms, "Invalid period!")
        try:
            limit = int_param(ctx.query, "limit", 200, 1000) or 200
            start = int_param(ctx.query, "start")
            end = int_param(ctx.query, "end")
        except BadParameterError as exc:
            return _params_error(ctx.now_ms, f"params error: {exc.name} is invalid")
        first = None if start is None else start // CANDLE_MS * CANDLE_MS
        m = quote.market
        history = ctx.history(self.unified_symbol(m))
        rows = history.pick(first, end, limit, newest=end is not None or start is None)

        def price(values: Any, i: int) -> str:
            return fixed_str(float(values[i]), m.price_decimals)

        candles = [
            [
                str(history.ts_ms[i]),
                price(history.open, i),
                price(history.high, i),
                price(history.low, i),
                price(history.close, i),
                fixed_str(history.volume_coins(i), m.qty_decimals),
                f"{history.volume_coins(i) * float(history.close[i]):.4f}",
            ]
            for i in reversed(rows)
        ]
        result = {"symbol": self.market_id(m), "category": self.CATEGORY, "list": candles}
        return json_reply(_envelope(ctx.now_ms, result))

    def _account_ratio(self, ctx: RestContext) -> RestReply:
        """The accounts' long/short ratio of `symbol`, newest first: `limit` rows (default 50,
        at most 500) on the `period` grid, no further pages. The fake keeps no history of the
        ratio: every row holds the state's `accounts` ratio r as the shares of holders net long
        (`buyRatio`, r / (1 + r)) and net short (`sellRatio`, 1 / (1 + r)); none set, no rows.
        Bybit prints these with 2 to 4 decimals; the fake prints 12 significant digits, so that
        any ratio a test sets arrives to 1e-9 (1.8125 is 0.6444.../0.3555...)."""
        quote = self._history_quote(ctx)
        if isinstance(quote, RestReply):
            return quote
        period = _PERIODS_MS.get(ctx.query.get("period", ""))
        if period is None:
            return _params_error(ctx.now_ms, "params error: period is invalid")
        try:
            limit = int_param(ctx.query, "limit", 50, 500) or 50
        except BadParameterError as exc:
            return _params_error(ctx.now_ms, f"params error: {exc.name} is invalid")
        ratio = quote.state.long_short.get("accounts")
        if ratio is None:  # no ratio set for this market: no rows
            return json_reply(_envelope(ctx.now_ms, {"list": [], "nextPageCursor": ""}))
        newest = ctx.now_ms // period * period
        row = {
            "symbol": self.market_id(quote.market),
            "buyRatio": decimal_str(ratio / (1 + ratio)),
            "sellRatio": decimal_str(1 / (1 + ratio)),
        }
        rows = [row | {"timestamp": str(newest - i * period)} for i in range(limit)]
        return json_reply(_envelope(ctx.now_ms, {"list": rows, "nextPageCursor": ""}))

    def _history_quote(self, ctx: RestContext) -> Quote | RestReply:
        """The market named by ?category=<CATEGORY>&symbol=, or Bybit's refusal."""
        if ctx.query.get("category") not in {"linear", "inverse"}:
            return _params_error(ctx.now_ms, "params error: Category is invalid")
        quote = ctx.quote(ctx.query.get("symbol", ""), self.market_id)
        if ctx.query.get("category") != self.CATEGORY or quote is None:
            return _params_error(ctx.now_ms, "params error: symbol invalid")
        return quote

    def _filter(self, ctx: RestContext) -> list[Quote]:
        wanted = ctx.query.get("symbol")
        return [q for q in ctx.quotes if not wanted or self.market_id(q.market) == wanted]

    # --- WebSocket ----------------------------------------------------------------------

    def parse(self, text: str) -> Inbound:
        """`op` subscribe/unsubscribe with string topics, or `op` ping."""
        message = loads_object(text)
        if message is None:
            return InvalidRequest(text)
        op = message.get("op")
        if op == "ping":
            return PingRequest(message)
        args = message.get("args")
        if op not in {"subscribe", "unsubscribe"} or not isinstance(args, list):
            return InvalidRequest(text)
        keys: set[str] = set()
        invalid: list[str] = []
        for topic in args:
            market = self._topic_market(topic)
            if market is None:
                invalid.append(str(topic))
            else:
                keys.add(self.unified_symbol(market))
        return SubscribeRequest(op, frozenset(keys), tuple(invalid), message, text)

    def _topic_market(self, topic: object) -> FakeMarket | None:
        if not isinstance(topic, str) or not topic.startswith(_TOPIC_PREFIX):
            return None
        return self.by_id.get(topic.removeprefix(_TOPIC_PREFIX))

    def ack(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """`{"success":true,...,"op":"subscribe"}`, echoing req_id."""
        return [compact(_op_answer(request.message, conn_id, success=True, msg=""))]

    def reject(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """Bybit's refusal of a topic; ccxt maps `success:false` to ExchangeError."""
        topics = request.invalid or tuple(str(t) for t in request.message.get("args", []))
        msg = f"Invalid symbol :[{','.join(topics)}]"
        return [compact(_op_answer(request.message, conn_id, success=False, msg=msg))]

    def invalid(self, request: InvalidRequest, conn_id: str) -> list[str]:
        """Unknown op or unparsable JSON."""
        message = loads_object(request.text) or {}
        answer = _op_answer(message, conn_id, success=False, msg="error:invalid op")
        return [compact(answer)]

    def pong(self, ping: PingRequest, conn_id: str) -> str:
        """The contract-stream pong, as recorded in the fixture."""
        return compact(_op_answer(ping.message, conn_id, success=True, msg="pong"))

    def encode(self, liquidations: Sequence[Liquidation]) -> list[Frame]:
        """One frame per symbol, its rows in the `data` list (Bybit pushes every 500 ms)."""
        return [self._frame(group) for group in group_by_symbol(liquidations)]

    def _frame(self, group: Sequence[Liquidation]) -> Frame:
        m = self.market(group[0].symbol)
        market_id = self.market_id(m)
        rows = [
            {
                "T": liq.ts_ms,
                "s": market_id,
                "S": "Buy" if liq.side == "long" else "Sell",
                "v": self._size(m, liq),
                "p": fixed_str(liq.price, m.price_decimals),
            }
            for liq in group
        ]
        frame = {
            "topic": f"{_TOPIC_PREFIX}{market_id}",
            "type": "snapshot",
            "ts": max(liq.ts_ms for liq in group) + _PUSH_LAG_MS,
            "data": rows,
        }
        return Frame(compact(frame), group[0].symbol, tuple(group))

    def _size(self, m: FakeMarket, liq: Liquidation) -> str:
        """An allLiquidation row's `v`: coins here."""
        return fixed_str(liq.coins, m.qty_decimals)

    def decode(self, text: str) -> list[Liquidation]:
        """allLiquidation rows, and the retired single-row `liquidation.<ID>` topic."""
        message = loads_object(text)
        if message is None:
            return []
        topic = str(message.get("topic", ""))
        data = message.get("data")
        rows: list[tuple[Any, ...]]
        if topic.startswith(_TOPIC_PREFIX) and isinstance(data, list):
            rows = [(r.get("s"), r.get("S"), r.get("p"), r.get("v"), r.get("T")) for r in data]
        elif topic.startswith(_LEGACY_TOPIC_PREFIX) and isinstance(data, dict):
            names = next(
                (shape for key, shape in self.LEGACY_FIELDS if key in data),
                self.LEGACY_FIELDS[-1][1],
            )
            rows = [tuple(data.get(name) for name in names)]
        else:
            return []
        out = []
        for market_id, side, price, size, ts in rows:
            market = self.by_id.get(str(market_id))
            coins = None if market is None else self._coins(float(size), float(price))
            if market is not None and coins is not None:
                position: Side = "long" if side == "Buy" else "short"
                out.append(
                    Liquidation(self.unified_symbol(market), position, float(price), coins, int(ts))
                )
        return out

    def _coins(self, size: float, price: float) -> float | None:
        """Coins of a row's size at its price (None: no liquidation to log); linear's are
        coins."""
        del price
        return size


def _cursor_ts(cursor: str) -> int | None:
    """The open time a `nextPageCursor` we issued points below; None for no cursor. Clients
    send it back as they got it, so the query string decodes its `%3D` (ccxt does this)."""
    if not cursor:
        return None
    name, _, value = parse.unquote(cursor).partition("=")
    if name != _CURSOR_KEY or not value.isdigit():
        raise BadParameterError("cursor")
    return int(value)


def _envelope(now_ms: int, result: object, *, code: int = 0, msg: str = "OK") -> dict[str, Any]:
    return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": now_ms}


def _params_error(now_ms: int, msg: str) -> RestReply:
    """Bybit answers parameter errors with HTTP 200 and retCode 10001."""
    return json_reply(_envelope(now_ms, {}, code=10001, msg=msg))


def _op_answer(
    request: Mapping[str, Any],
    conn_id: str,
    *,
    success: bool,
    msg: str,
) -> dict[str, Any]:
    req_id = request.get("req_id")
    return {
        "success": success,
        "ret_msg": msg,
        "conn_id": conn_id,
        "req_id": "" if req_id is None else str(req_id),
        "op": str(request.get("op", "")),
    }


def _server_time(ctx: RestContext) -> RestReply:
    result = {"timeSecond": str(ctx.now_ms // 1000), "timeNano": str(ctx.now_ms * 1_000_000)}
    return json_reply(_envelope(ctx.now_ms, result))
