"""Bybit v5 linear wire format (ccxt class `bybit`).

REST under /v5/market with the `{"retCode","retMsg","result",...}` envelope; WebSocket
/v5/public/linear with `{"op":"subscribe","args":["allLiquidation.BTCUSDT"]}` and an
application-level `{"op":"ping"}` keepalive.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, Final

from exporter.fakeexchange.protocol import (
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
    fixed_str,
    floor_to_step,
    group_by_symbol,
    json_reply,
    loads_object,
    plain_error,
    text_reply,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from exporter.fakeexchange.markets import FakeMarket

_TOPIC_PREFIX: Final = "allLiquidation."
_LEGACY_TOPIC_PREFIX: Final = "liquidation."
_PUSH_LAG_MS: Final = 400
"""Frame `ts` trails the newest `T` by ~0.4 s in recorded frames (500 ms push cycle)."""
_LAUNCH_MS: Final = "1585526400000"
_FUNDING_PERIOD_MS: Final = 8 * 3_600_000
_KNOWN_CATEGORIES: Final = frozenset({"spot", "linear", "inverse", "option"})


class BybitProtocol(VenueProtocol):
    """Bybit linear: one `allLiquidation.<ID>` topic per symbol, several rows per frame."""

    venue: ClassVar[str] = "bybit"
    ccxt_id: ClassVar[str] = "bybit"
    ws_paths: ClassVar[tuple[str, ...]] = ("/v5/public/linear",)

    def market_id(self, market: FakeMarket) -> str:
        """Bybit ids are base+quote, e.g. BTCUSDT."""
        return f"{market.base}{market.quote}"

    def ccxt_config(self, rest_url: str, ws_url: str) -> dict[str, Any]:
        """Overrides from EXCHANGES.md; only linear markets, so load_markets is two requests."""
        return {
            "urls": {
                "api": {
                    "public": rest_url,
                    "ws": {"public": {"linear": f"{ws_url}/v5/public/linear"}},
                },
            },
            "options": {"fetchMarkets": {"types": ["linear"]}},
        }

    # --- REST ---------------------------------------------------------------------------

    def rest_routes(self) -> Mapping[str, RestHandler]:
        """Instruments (load_markets), tickers (OI and mark price of every symbol), time."""
        return {
            "/v5/market/instruments-info": self._instruments,
            "/v5/market/tickers": self._tickers,
            "/v5/market/time": _server_time,
        }

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
            category == "linear"
            and ctx.query.get("status", "Trading") == "Trading"
            and not ctx.query.get("cursor")
        )
        quotes = self._filter(ctx) if listed else []
        rows = [self._instrument(q.market) for q in quotes]
        result = {"category": category, "list": rows, "nextPageCursor": ""}
        return json_reply(_envelope(ctx.now_ms, result))

    def _instrument(self, m: FakeMarket) -> dict[str, Any]:
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
                "maxLeverage": f"{m.max_leverage:.2f}",
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
            "fundingInterval": 480,
            "settleCoin": m.quote,
            "copyTrading": "both",
            "upperFundingRate": "0.005",
            "lowerFundingRate": "-0.005",
            "isPreListing": False,
            "preListingInfo": None,
            "displayName": "",
        }

    def _tickers(self, ctx: RestContext) -> RestReply:
        category = ctx.query.get("category", "")
        if category not in _KNOWN_CATEGORIES:
            return _params_error(ctx.now_ms, "params error: Category is invalid")
        quotes = self._filter(ctx) if category == "linear" else []
        if ctx.query.get("symbol") and not quotes:
            return _params_error(ctx.now_ms, "Not supported symbols")
        rows = [self._ticker(q, ctx.now_ms) for q in quotes]
        return json_reply(_envelope(ctx.now_ms, {"category": category, "list": rows}))

    def _ticker(self, quote: Quote, now_ms: int) -> dict[str, Any]:
        m, state = quote.market, quote.state
        mark = state.mark_price
        tick = float(m.tick_size)

        def price(value: float) -> str:
            return fixed_str(round(value, m.price_decimals), m.price_decimals)

        next_funding = (now_ms // _FUNDING_PERIOD_MS + 1) * _FUNDING_PERIOD_MS
        return {
            "symbol": self.market_id(m),
            "lastPrice": price(mark),
            "indexPrice": price(mark * 0.9998),
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
            "fundingRate": "0.0001",
            "nextFundingTime": str(next_funding),
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
        }

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
                keys.add(market.symbol)
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
                "v": fixed_str(liq.coins, m.qty_decimals),
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
        return Frame(compact(frame), m.symbol, tuple(group))

    def decode(self, text: str) -> list[Liquidation]:
        """allLiquidation rows, and the retired single-row `liquidation.<ID>` topic."""
        message = loads_object(text)
        if message is None:
            return []
        topic = str(message.get("topic", ""))
        data = message.get("data")
        if topic.startswith(_TOPIC_PREFIX) and isinstance(data, list):
            rows = [(r.get("s"), r.get("S"), r.get("p"), r.get("v"), r.get("T")) for r in data]
        elif topic.startswith(_LEGACY_TOPIC_PREFIX) and isinstance(data, dict):
            rows = [
                (
                    data.get("symbol"),
                    data.get("side"),
                    data.get("price"),
                    data.get("size"),
                    data.get("updatedTime"),
                )
            ]
        else:
            return []
        out = []
        for market_id, side, price, size, ts in rows:
            market = self.by_id.get(str(market_id))
            if market is not None:
                position: Side = "long" if side == "Buy" else "short"
                out.append(Liquidation(market.symbol, position, float(price), float(size), int(ts)))
        return out


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
