"""BitMEX wire format (no ccxt class in 4.5.90: the collector's own REST client).

REST `/api/v1/instrument/active` (markets, open interest in contracts, mark price, and from the
market state the funding rate, `indicativeFundingRate`, `fundingTimestamp` and `fundingInterval`
(ISO times; the interval as 2000-01-01 plus its length) and the index price as
`indicativeSettlePrice`, per BitMEX's instrument field definitions,
https://support.bitmex.com/hc/en-gb/articles/6206354894365; `columns` narrows the fields, the
keys always come); errors as `{"error":{"message","name"}}`. WebSocket
/realtime: a welcome on connect, `{"op":"subscribe","args":["liquidation:XBTUSD",...]}` answered
per topic by `{"success":true,"subscribe":...}` and the table's `partial`, text `ping` answered
`pong`.

The `liquidation` table is the book of open liquidation orders, without times: a liquidation is
sent as its order's `insert` (side of the ORDER: Buy closes a short; `leavesQty` in contracts),
followed by the order's `delete`. Linear contracts (XBTUSDT) are `1/underlyingToPositionMultiplier`
coins; XBTUSD is inverse, 1 USD a contract: quantities are rounded to whole contracts
(`quantize`), so the sent-frame log is what the wire carries.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, Final

from exporter.fakeexchange.markets import FakeMarket
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
    group_by_symbol,
    json_reply,
    plain_error,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

TABLE: Final = "liquidation"
PARTIAL_TYPES: Final = {
    "orderID": "guid",
    "symbol": "symbol",
    "side": "symbol",
    "price": "float",
    "leavesQty": "long",
}
LINEAR_CONTRACTS: Final = {"BTC": (1_000_000, 100), "ETH": (100_000, 1000), "XRP": (100, 100)}
"""(underlyingToPositionMultiplier, lotSize) of the USDT perpetuals, as BitMEX lists them;
other coins get 100 contracts per quantity step of the shared market table."""
SATOSHI: Final = 100_000_000
XBTUSD: Final = FakeMarket("BTC", "0.1", "1", "1", "100", 100, 82_000.0, 3_000.0, quote="USD")
"""BitMEX's inverse perpetual: 1 USD a contract, settled in XBT."""
INTERVAL_EPOCH_MS: Final = 946_684_800_000
"""2000-01-01T00:00Z: `fundingInterval` is this time plus the interval."""


def _iso(ms: int) -> str:
    """BitMEX times: ISO 8601 with milliseconds and Z."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _error(status: int, message: str, name: str) -> RestReply:
    return json_reply({"error": {"message": message, "name": name}}, status)


class BitmexProtocol(VenueProtocol):
    """BitMEX perpetuals: the USDT ones of the shared table and XBTUSD (inverse)."""

    venue: ClassVar[str] = "bitmex"
    ccxt_id: ClassVar[str] = "bitmex"
    ws_paths: ClassVar[tuple[str, ...]] = ("/realtime",)
    EXTRA_MARKETS: ClassVar[tuple[FakeMarket, ...]] = (XBTUSD,)

    def market_id(self, market: FakeMarket) -> str:
        """BitMEX spells BTC XBT: XBTUSD, XBTUSDT, ETHUSDT."""
        base = "XBT" if market.base == "BTC" else market.base
        return f"{base}{market.quote}"

    def unified_symbol(self, market: FakeMarket) -> str:
        """USD-quoted perpetuals are inverse, settled in the coin: BTC/USD:BTC."""
        if market.quote == "USD":
            return f"{market.base}/USD:{market.base}"
        return market.symbol

    def ccxt_config(self, rest_url: str, ws_url: str) -> dict[str, Any]:
        """ccxt has no BitMEX class: the collector takes `rest_url` and `ws_url` directly."""
        del ws_url
        return {"urls": {"api": {"public": rest_url}}}

    @staticmethod
    def _inverse(market: FakeMarket) -> bool:
        return market.quote == "USD"

    @staticmethod
    def _linear_contracts(market: FakeMarket) -> tuple[int, int]:
        """(contracts per coin, lot size in contracts) of a USDT perpetual."""
        default = (100 * 10**market.qty_decimals, 100)
        return LINEAR_CONTRACTS.get(market.base, default)

    def _contracts(self, market: FakeMarket, coins: float, price: float) -> int:
        """Whole contracts of `coins` at `price` (at least one)."""
        if self._inverse(market):
            return max(1, round(coins * price))
        return max(1, round(coins * self._linear_contracts(market)[0]))

    def _coins(self, market: FakeMarket, contracts: int, price: float) -> float:
        if self._inverse(market):
            return contracts / price
        return contracts / self._linear_contracts(market)[0]

    def quantize(self, liquidation: Liquidation) -> Liquidation:
        """The coins of the whole contracts an order carries."""
        market = self.market(liquidation.symbol)
        contracts = self._contracts(market, liquidation.coins, liquidation.price)
        return replace(liquidation, coins=self._coins(market, contracts, liquidation.price))

    # --- REST ---------------------------------------------------------------------------

    def rest_routes(self) -> Mapping[str, RestHandler]:
        """Active instruments: markets, open interest, mark and index price and funding in one
        call."""
        return {"/api/v1/instrument/active": self._instruments}

    def rest_error(self, status: int) -> RestReply:
        """BitMEX's JSON errors for 429 and 503 (overload); a bare status page otherwise."""
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            return _error(status, "Rate limit exceeded, retry in 1 seconds.", "RateLimitError")
        if status == HTTPStatus.SERVICE_UNAVAILABLE:
            message = "The system is currently overloaded. Please try again later."
            return _error(status, message, "HTTPError")
        return plain_error(status)

    def _instruments(self, ctx: RestContext) -> RestReply:
        columns = ctx.query.get("columns")
        wanted: set[str] | None = None
        if columns:
            try:
                parsed = json.loads(columns)
            except ValueError:
                parsed = None
            if not isinstance(parsed, list):
                return _error(400, "columns must be a JSON array", "ValidationError")
            wanted = {str(c) for c in parsed} | {"symbol", "timestamp"}
        rows = [self._instrument(q, ctx.now_ms) for q in ctx.quotes]
        if wanted is not None:
            rows = [{k: v for k, v in row.items() if k in wanted} for row in rows]
        return json_reply(rows)

    def _instrument(self, quote: Quote, now_ms: int) -> dict[str, Any]:
        """The fields of BitMEX's instrument that a reader of markets, open interest, funding
        and index price needs."""
        m, state = quote.market, quote.state
        mark = round(state.mark_price, m.price_decimals)
        base = "XBT" if m.base == "BTC" else m.base
        if self._inverse(m):
            settle, multiplier, to_position, to_settle = "XBt", -SATOSHI, None, -SATOSHI
            lot, quote_to_settle = 100, None
            contracts = round(state.open_interest_coins * mark)
            open_value = round(contracts / mark * SATOSHI)
        else:
            settle, multiplier, to_settle, quote_to_settle = "USDt", 1, None, 1_000_000
            to_position, lot = self._linear_contracts(m)
            contracts = round(state.open_interest_coins * to_position)
            open_value = round(state.open_interest_coins * mark * 1_000_000)
        return {
            "symbol": self.market_id(m),
            "rootSymbol": base,
            "state": "Open",
            "typ": "FFWCSX",
            "listing": "2016-05-13T12:00:00.000Z",
            "front": "2016-05-13T12:00:00.000Z",
            "expiry": None,
            "settle": None,
            "positionCurrency": "USD" if self._inverse(m) else base,
            "underlying": base,
            "quoteCurrency": m.quote,
            "underlyingSymbol": f"{base}=",
            "reference": "BMEX",
            "referenceSymbol": f".B{base}",
            "maxOrderQty": 10_000_000,
            "maxPrice": 1_000_000,
            "lotSize": lot,
            "tickSize": float(m.tick_size),
            "multiplier": multiplier,
            "settlCurrency": settle,
            "underlyingToPositionMultiplier": to_position,
            "underlyingToSettleMultiplier": to_settle,
            "quoteToSettleMultiplier": quote_to_settle,
            "isQuanto": False,
            "isInverse": self._inverse(m),
            "initMargin": round(1 / m.max_leverage, 4),
            "maintMargin": 0.005,
            "fundingTimestamp": _iso(state.next_funding_ms(now_ms)),
            "fundingInterval": _iso(INTERVAL_EPOCH_MS + state.funding_interval_ms),
            "fundingRate": state.funding_rate,
            "indicativeFundingRate": state.predicted_funding_rate,
            "lastPrice": mark,
            "markMethod": "FairPrice",
            "markPrice": mark,
            "fairPrice": mark,
            "indicativeSettlePrice": round(state.index_price, m.price_decimals),
            "openInterest": contracts,
            "openValue": open_value,
            "timestamp": _iso(now_ms),
        }

    # --- WebSocket ----------------------------------------------------------------------

    def new_conn_id(self) -> str:
        return str(uuid.uuid4())

    def greeting(self, conn_id: str) -> list[str]:
        """The welcome every connection opens with."""
        del conn_id
        welcome = {
            "info": "Welcome to the BitMEX Realtime API.",
            "version": "2.0.0",
            "timestamp": _iso(1_731_456_000_000),
            "docs": "https://www.bitmex.com/app/wsAPI",
            "heartbeatEnabled": False,
            "limit": {"remaining": 59},
        }
        return [compact(welcome)]

    def parse(self, text: str) -> Inbound:
        """Text `ping`, or `op` subscribe/unsubscribe with `liquidation:<symbol>` topics."""
        if text == "ping":
            return PingRequest({})
        try:
            message = json.loads(text)
        except ValueError:
            return InvalidRequest(text)
        if not isinstance(message, dict):
            return InvalidRequest(text)
        op, args = message.get("op"), message.get("args")
        if op not in {"subscribe", "unsubscribe"} or not isinstance(args, list) or not args:
            return InvalidRequest(text)
        keys: set[str] = set()
        invalid: list[str] = []
        for topic in args:
            table, _, market_id = str(topic).partition(":")
            market = self.by_id.get(market_id) if table == TABLE else None
            if market is None:
                invalid.append(str(topic))
            else:
                keys.add(self.unified_symbol(market))
        return SubscribeRequest(op, frozenset(keys), tuple(invalid), message, text)

    def ack(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """Per topic: the success message, then (subscribing) the table's empty `partial`."""
        del conn_id
        answers = []
        for topic in request.message.get("args", []):
            answers.append(
                compact({"success": True, request.op: topic, "request": request.message})
            )
            if request.op == "subscribe":
                partial = {
                    "table": TABLE,
                    "action": "partial",
                    "keys": ["orderID"],
                    "types": PARTIAL_TYPES,
                    "filter": {},
                    "data": [],
                }
                answers.append(compact(partial))
        return answers

    def reject(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """Status 400 naming the first unknown topic (or the whole request)."""
        del conn_id
        what = request.invalid[0] if request.invalid else request.text
        error = {
            "status": 400,
            "error": f"Unknown or expired symbol: {what}",
            "meta": {},
            "request": request.message,
        }
        return [compact(error)]

    def invalid(self, request: InvalidRequest, conn_id: str) -> list[str]:
        del conn_id
        return [compact({"status": 400, "error": f"Unknown command: {request.text[:100]}"})]

    def pong(self, ping: PingRequest, conn_id: str) -> str:
        del ping, conn_id
        return "pong"

    def encode(self, liquidations: Sequence[Liquidation]) -> list[Frame]:
        """Per symbol: one `insert` of every order, then their `delete` (no liquidations)."""
        frames = []
        for group in group_by_symbol(liquidations):
            market = self.market(group[0].symbol)
            market_id = self.market_id(market)
            orders = [
                {
                    "orderID": str(uuid.uuid4()),
                    "symbol": market_id,
                    "side": "Sell" if liq.side == "long" else "Buy",
                    "price": liq.price,
                    "leavesQty": self._contracts(market, liq.coins, liq.price),
                }
                for liq in group
            ]
            insert = {"table": TABLE, "action": "insert", "data": orders}
            gone = [{"orderID": o["orderID"], "symbol": market_id} for o in orders]
            delete = {"table": TABLE, "action": "delete", "data": gone}
            frames.append(Frame(compact(insert), group[0].symbol, tuple(group)))
            frames.append(Frame(compact(delete), group[0].symbol, ()))
        return frames

    def decode(self, text: str) -> list[Liquidation]:
        """The orders of an `insert` (times are not on the wire: 0)."""
        try:
            message = json.loads(text)
        except ValueError:
            return []
        if not isinstance(message, dict) or message.get("action") != "insert":
            return []
        out = []
        for order in message.get("data") or []:
            market = self.by_id.get(str(order.get("symbol")))
            if market is None:
                continue
            side: Side = "long" if order.get("side") == "Sell" else "short"
            price = float(order["price"])
            coins = self._coins(market, int(order["leavesQty"]), price)
            out.append(Liquidation(self.unified_symbol(market), side, price, coins, 0))
        return out
