"""Gate USDT-settled perpetual futures wire format (ccxt class `gate`).

REST under /api/v4 (bare JSON; errors are `{"label","message"}`); WebSocket /v4/ws/usdt with
`{"time","channel","event","payload"}` requests, answered `{..., "result":{"status":"success"}}`
or with an `error` object, and the application ping `futures.ping` answered `futures.pong`.
Liquidations come as the channel has pushed them since 2026-08-20: every order of a contract
aggregated per ~1 s, at most 20 per push, `time` in ms, `size` signed contracts (negative: a
forced sell, a long liquidated) printed as decimals (what a client sending the
`X-Gate-Size-Decimal: 1` header gets; without it Gate prints integers).

Funding and index price come from the market state: the tickers carry `funding_rate`,
`funding_rate_indicative` and `index_price`, the contract list the same and the schedule,
`funding_next_apply` (seconds) and `funding_interval` (seconds), as Gate's APIv4 documentation
shows them (https://www.gate.com/docs/developers/apiv4/en/, models `Contract` and
`FuturesTicker`, and the example of `GET /futures/{settle}/contracts`): rates as decimal
strings, times as integers.

The fake has no clock: acks and pongs carry the request's own `time`.
"""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, Final

from exporter.fakeexchange.history import CANDLE_MS
from exporter.fakeexchange.protocol import (
    ALL_MARKETS,
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
    decoded_entries,
    fixed_str,
    group_by_symbol,
    int_param,
    json_reply,
    loads_object,
    plain_error,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from exporter.fakeexchange.markets import FakeMarket

_CHANNEL: Final = "futures.public_liquidates"
_PING: Final = "futures.ping"
_PONG: Final = "futures.pong"
_ALL: Final = "!all"
_API: Final = "/api/v4"
_PUSH_LAG_MS: Final = 1000
"""A push leaves at the end of its ~1 s aggregation cycle."""
_PER_PUSH: Final = 20
"""Gate pushes a contract's cached orders at once when they reach 20."""
_QUANTO: Final = {"BTC": "0.0001", "ETH": "0.01", "SOL": "1", "XRP": "10"}
"""Coins per contract (`quanto_multiplier`) as Gate lists these; other markets: 1."""
_CREATE_S: Final = 1_569_398_400
_SECONDS_BELOW: Final = 1e11
"""An entry `time` below this is in seconds (before 2026-08-20), else in milliseconds."""
_OI_INTERVALS_MS: Final = {"5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000}
"""Open interest is a level: a longer interval's rows are the 5-minute rows on its grid."""


def quanto(market: FakeMarket) -> str:
    """Coins per contract of ``market`` on Gate."""
    return _QUANTO.get(market.base, "1")


class GateProtocol(VenueProtocol):
    """Gate USDT futures: one `futures.public_liquidates` subscription (`!all`, or contracts)."""

    venue: ClassVar[str] = "gate"
    ccxt_id: ClassVar[str] = "gate"
    ws_paths: ClassVar[tuple[str, ...]] = ("/v4/ws/usdt",)

    def market_id(self, market: FakeMarket) -> str:
        """Gate contract names are BASE_QUOTE, e.g. BTC_USDT."""
        return f"{market.base}_{market.quote}"

    def ccxt_config(self, rest_url: str, ws_url: str) -> dict[str, Any]:
        """REST roots and USDT swaps only (the stream is native: ccxt.pro has no public
        liquidations for gate)."""
        del ws_url
        root = rest_url + _API
        return {
            "urls": {"api": {"public": {"futures": root, "spot": root}}},
            "options": {
                "fetchMarkets": {"types": ["swap"]},
                "swap": {"fetchMarkets": {"settlementCurrencies": ["usdt"]}},
            },
        }

    def new_conn_id(self) -> str:
        """Gate connection ids are 16 hex digits."""
        return uuid.uuid4().hex[:16]

    def _coins_per_contract(self, market_id: str) -> float | None:
        market = self.by_id.get(market_id)
        return None if market is None else float(quanto(market))

    # --- REST ---------------------------------------------------------------------------

    def rest_routes(self) -> Mapping[str, RestHandler]:
        """Currencies and contracts (load_markets; the funding schedule on every poll), tickers
        (open interest, mark and index price and funding rates of every contract), contract
        stats (open-interest history) and candles."""
        return {
            f"{_API}/spot/currencies": self._currencies,
            f"{_API}/futures/usdt/contracts": self._contracts,
            f"{_API}/futures/usdt/tickers": self._tickers,
            f"{_API}/futures/usdt/contract_stats": self._contract_stats,
            f"{_API}/futures/usdt/candlesticks": self._candlesticks,
        }

    def rest_error(self, status: int) -> RestReply:
        """`TOO_MANY_REQUESTS` for 429 (ccxt: RateLimitExceeded); plain text otherwise."""
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            return _error("TOO_MANY_REQUESTS", "Request Rate limit Exceeded", status)
        return plain_error(status)

    def _currencies(self, ctx: RestContext) -> RestReply:
        coins = sorted({q.market.base for q in ctx.quotes} | {q.market.quote for q in ctx.quotes})
        return json_reply([_currency(coin) for coin in coins])

    def _contracts(self, ctx: RestContext) -> RestReply:
        return json_reply([self._contract(q, ctx.now_ms) for q in ctx.quotes])

    def _contract(self, quote: Quote, now_ms: int) -> dict[str, Any]:
        m, state = quote.market, quote.state
        mark = _price(state.mark_price, m)
        return {
            "name": self.market_id(m),
            "type": "direct",
            "quanto_multiplier": quanto(m),
            "ref_discount_rate": "0",
            "order_price_deviate": "0.5",
            "maintenance_rate": "0.005",
            "mark_type": "index",
            "last_price": mark,
            "mark_price": mark,
            "index_price": _price(state.index_price, m),
            "funding_rate_indicative": decimal_str(state.predicted_funding_rate),
            "mark_price_round": m.tick_plain,
            "funding_offset": 0,
            "in_delisting": False,
            "risk_limit_base": "1000000",
            "interest_rate": "0.0003",
            "order_price_round": m.tick_plain,
            "order_size_min": 1,
            "ref_rebate_rate": "0.2",
            "funding_interval": state.funding_interval_hours * 3600,
            "risk_limit_step": "1000000",
            "leverage_min": "1",
            "leverage_max": str(m.max_leverage),
            "risk_limit_max": "10000000",
            "maker_fee_rate": "-0.0001",
            "taker_fee_rate": "0.00075",
            "funding_rate": decimal_str(state.funding_rate),
            "order_size_max": 1_000_000,
            "funding_next_apply": state.next_funding_ms(now_ms) // 1000,
            "short_users": 1000,
            "config_change_time": _CREATE_S,
            "trade_size": 1_000_000_000,
            "position_size": round(state.open_interest_coins / float(quanto(m))),
            "long_users": 1000,
            "funding_impact_value": "60000",
            "orders_limit": 50,
            "trade_id": 1,
            "orderbook_id": 1,
            "enable_bonus": True,
            "enable_credit": True,
            "create_time": _CREATE_S,
            "funding_cap_ratio": "0.75",
            "status": "trading",
            "launch_time": _CREATE_S,
            "enable_decimal": False,
        }

    def _tickers(self, ctx: RestContext) -> RestReply:
        """Every contract (or `?contract=`): `total_size` is the open interest in contracts."""
        wanted = ctx.query.get("contract")
        quotes = [q for q in ctx.quotes if not wanted or self.market_id(q.market) == wanted]
        if wanted and not quotes:
            return _error("CONTRACT_NOT_FOUND", "contract not found")
        return json_reply([self._ticker(q) for q in quotes])

    def _ticker(self, quote: Quote) -> dict[str, Any]:
        m, state = quote.market, quote.state
        mark = state.mark_price

        def price(value: float) -> str:
            return fixed_str(round(value, m.tick_decimals), m.tick_decimals)

        contracts = state.open_interest_coins / float(quanto(m))
        return {
            "contract": self.market_id(m),
            "last": price(mark),
            "change_percentage": "2.04",
            "total_size": decimal_str(contracts),
            "volume_24h": decimal_str(round(contracts * 2.5)),
            "volume_24h_base": decimal_str(round(state.open_interest_coins * 2.5)),
            "volume_24h_quote": f"{state.open_interest_coins * mark * 2.5:.0f}",
            "volume_24h_settle": f"{state.open_interest_coins * mark * 2.5:.0f}",
            "mark_price": price(mark),
            "funding_rate": decimal_str(state.funding_rate),
            "funding_rate_indicative": decimal_str(state.predicted_funding_rate),
            "index_price": price(state.index_price),
            "quanto_base_rate": "",
            "low_24h": price(mark * 0.97),
            "high_24h": price(mark * 1.03),
            "lowest_ask": price(mark + float(m.tick_size)),
            "highest_bid": price(mark - float(m.tick_size)),
            "lowest_size": "1",
            "highest_size": "1",
        }

    def _contract_stats(self, ctx: RestContext) -> RestReply:
        """5-minute statistics, oldest first: the first `limit` (default 30, max 100) from
        `from` (seconds), else the newest ones. `open_interest` is in contracts."""
        quote = self._history_quote(ctx)
        if isinstance(quote, RestReply):
            return quote
        period = _OI_INTERVALS_MS.get(ctx.query.get("interval", "5m"))
        if period is None:
            return _error("INVALID_PARAM_VALUE", "invalid argument: interval")
        try:
            limit = int_param(ctx.query, "limit", 30, 100) or 30
            start = int_param(ctx.query, "from")
        except BadParameterError as exc:
            return _error("INVALID_PARAM_VALUE", f"invalid argument: {exc.name}")
        m = quote.market
        history = ctx.history(self.unified_symbol(m))
        first = None if start is None else start * 1000
        rows = history.pick(first, ctx.now_ms, limit, newest=start is None, period_ms=period)
        per_contract = float(quanto(m))
        stats = []
        for i in rows:
            coins = float(history.open_interest_coins[i])
            close = float(history.close[i])
            stats.append(
                {
                    "time": int(history.ts_ms[i]) // 1000,
                    "lsr_taker": 1.02,
                    "lsr_account": 1.5,
                    "long_liq_size": 0,
                    "long_liq_amount": 0,
                    "long_liq_usd": 0,
                    "short_liq_size": 0,
                    "short_liq_amount": 0,
                    "short_liq_usd": 0,
                    "open_interest": round(coins / per_contract),
                    "open_interest_usd": round(coins * close, 4),
                    "top_lsr_account": 1.2,
                    "top_lsr_size": 1.1,
                    "mark_price": fixed_str(close, m.tick_decimals),
                }
            )
        return json_reply(stats)

    def _candlesticks(self, ctx: RestContext) -> RestReply:
        """5-minute candles, oldest first: those opening in [`from`, `to`] (seconds; at most
        2000), or the newest `limit` up to `to` or now. `limit` with `from` is refused."""
        quote = self._history_quote(ctx)
        if isinstance(quote, RestReply):
            return quote
        if ctx.query.get("interval", "5m") != "5m":  # the only interval the fake keeps
            return _error("INVALID_PARAM_VALUE", "invalid argument: interval")
        try:
            start = int_param(ctx.query, "from")
            end = int_param(ctx.query, "to")
            limit = int_param(ctx.query, "limit", 100, 2000)
        except BadParameterError as exc:
            return _error("INVALID_PARAM_VALUE", f"invalid argument: {exc.name}")
        if start is not None and "limit" in ctx.query:
            return _error("INVALID_PARAM_VALUE", "limit conflicts with from and to")
        last = ctx.now_ms if end is None else end * 1000
        m = quote.market
        history = ctx.history(self.unified_symbol(m))
        if start is None:
            rows = history.pick(None, last, limit or 100, newest=True)
        else:
            if (last - start * 1000) // CANDLE_MS >= 2000:  # Gate's cap
                return _error("INVALID_PARAM_VALUE", "Too many points requested")
            rows = history.pick(start * 1000, last, 2000, newest=False)

        def price(values: Any, i: int) -> str:
            return fixed_str(float(values[i]), m.tick_decimals)

        per_contract = float(quanto(m))
        candles = [
            {
                "t": int(history.ts_ms[i]) // 1000,
                "v": round(history.volume_coins(i) / per_contract),
                "c": price(history.close, i),
                "h": price(history.high, i),
                "l": price(history.low, i),
                "o": price(history.open, i),
                "sum": f"{history.volume_coins(i) * float(history.close[i]):.4f}",
            }
            for i in rows
        ]
        return json_reply(candles)

    def _history_quote(self, ctx: RestContext) -> Quote | RestReply:
        """The contract named by ?contract=, or Gate's refusal."""
        contract = ctx.query.get("contract", "")
        if not contract:
            return _error("MISSING_REQUIRED_PARAM", "Missing required parameter: contract")
        quote = ctx.quote(contract, self.market_id)
        if quote is None:
            return _error("CONTRACT_NOT_FOUND", "contract not found")
        return quote

    # --- WebSocket ----------------------------------------------------------------------

    def parse(self, text: str) -> Inbound:
        """`futures.ping`, or `event` subscribe/unsubscribe with a `payload` of contract names
        (or `!all`)."""
        message = loads_object(text)
        if message is None:
            return InvalidRequest(text)
        channel = message.get("channel")
        if channel == _PING:
            return PingRequest(message)
        event = message.get("event")
        payload = message.get("payload")
        if event not in {"subscribe", "unsubscribe"} or not isinstance(channel, str):
            return InvalidRequest(text)
        if channel != _CHANNEL or not isinstance(payload, list) or not payload:
            return SubscribeRequest(event, frozenset(), (str(channel),), message, text)
        keys: set[str] = set()
        invalid: list[str] = []
        for name in payload:
            market = self.by_id.get(name) if isinstance(name, str) else None
            if name == _ALL:
                keys.add(ALL_MARKETS)
            elif market is None:
                invalid.append(str(name))
            else:
                keys.add(self.unified_symbol(market))
        return SubscribeRequest(event, frozenset(keys), tuple(invalid), message, text)

    def ack(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """`result: {"status": "success"}` with the request's channel, event and payload."""
        return [compact(_answer(request.message, conn_id, result={"status": "success"}))]

    def reject(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """Error code 2 (invalid argument) naming the unknown channel or contract."""
        what = request.invalid[0] if request.invalid else request.text
        channel = request.message.get("channel")
        noun = "contract" if channel == _CHANNEL else "channel"
        error = {"code": 2, "message": f"unknown {noun} {what}"}
        return [compact(_answer(request.message, conn_id, error=error))]

    def invalid(self, request: InvalidRequest, conn_id: str) -> list[str]:
        """Error code 1 for anything that is not a request."""
        message = loads_object(request.text) or {}
        error = {"code": 1, "message": "invalid argument struct"}
        return [compact(_answer(message, conn_id, error=error))]

    def pong(self, ping: PingRequest, conn_id: str) -> str:
        """`futures.pong` with an empty event and a null result."""
        answer = _answer(ping.message, conn_id, result=None)
        answer["channel"] = _PONG
        answer["event"] = ""
        answer.pop("payload", None)
        return compact(answer)

    def encode(self, liquidations: Sequence[Liquidation]) -> list[Frame]:
        """One frame per contract and push, at most 20 orders each."""
        return [
            self._frame(group[i : i + _PER_PUSH])
            for group in group_by_symbol(liquidations)
            for i in range(0, len(group), _PER_PUSH)
        ]

    def _frame(self, group: Sequence[Liquidation]) -> Frame:
        m = self.market(group[0].symbol)
        per_contract = float(quanto(m))
        entries = [
            {
                "price": decimal_str(liq.price),
                # A forced sell (negative) closes a long.
                "size": decimal_str((-1 if liq.side == "long" else 1) * liq.coins / per_contract),
                "time": liq.ts_ms,
                "contract": self.market_id(m),
            }
            for liq in group
        ]
        push_ms = max(liq.ts_ms for liq in group) + _PUSH_LAG_MS
        frame = {
            "channel": _CHANNEL,
            "event": "update",
            "time": push_ms // 1000,
            "time_ms": push_ms,
            "result": entries,
        }
        return Frame(compact(frame), group[0].symbol, tuple(group))

    def decode(self, text: str) -> list[Liquidation]:
        """Every `result` entry, `time` in seconds or ms (before and since 2026-08-20).
        ValueError for a frame that is no well-formed push (the server then logs it raw)."""
        message = loads_object(text)
        if message is None or message.get("channel") != _CHANNEL:
            return []
        return decoded_entries(message.get("result"), self._decoded)

    def _decoded(self, entry: Mapping[str, Any]) -> Liquidation | None:
        market = self.by_id.get(str(entry.get("contract")))
        if market is None:
            return None
        size = float(entry["size"])
        side: Side = "long" if size < 0 else "short"
        if "time_ms" in entry:
            ts = int(entry["time_ms"])
        else:
            raw = float(entry["time"])
            ts = int(raw * 1000) if raw < _SECONDS_BELOW else int(raw)
        coins = abs(size) * float(quanto(market))
        return Liquidation(self.unified_symbol(market), side, float(entry["price"]), coins, ts)


def _price(value: float, market: FakeMarket) -> str:
    """A price on the contract's tick, printed with its decimals."""
    return fixed_str(round(value, market.tick_decimals), market.tick_decimals)


def _currency(coin: str) -> dict[str, Any]:
    chain = {"name": coin, "addr": "", "withdraw_disabled": False, "withdraw_delayed": False}
    return {
        "currency": coin,
        "name": coin,
        "delisted": False,
        "withdraw_disabled": False,
        "withdraw_delayed": False,
        "deposit_disabled": False,
        "trade_disabled": False,
        "fixed_rate": "",
        "chain": coin,
        "chains": [{**chain, "deposit_disabled": False}],
    }


def _answer(
    request: Mapping[str, Any],
    conn_id: str,
    *,
    result: object = None,
    error: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Gate's response envelope; `time` is the request's (the fake has no clock)."""
    sent = request.get("time")
    seconds = sent if isinstance(sent, int) and not isinstance(sent, bool) else 0
    answer: dict[str, Any] = {
        "time": seconds,
        "time_ms": seconds * 1000,
        "conn_id": conn_id,
        "trace_id": uuid.uuid4().hex,
        "channel": str(request.get("channel", "")),
        "event": str(request.get("event", "")),
        "payload": request.get("payload", []),
    }
    if error is not None:
        answer["error"] = dict(error)
    answer["result"] = result
    return answer


def _error(label: str, message: str, status: int = HTTPStatus.BAD_REQUEST) -> RestReply:
    return json_reply({"label": label, "message": message}, status)
