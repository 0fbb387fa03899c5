"""Kraken Futures perpetuals wire format (ccxt class `krakenfutures`).

REST under /derivatives/api/v3 (`{"result":"success",...,"serverTime":...}`); WebSocket /ws/v1,
which greets with `{"event":"info","version":1}`, takes `{"event":"subscribe","feed":"trade",
"product_ids":[...]}`, answers `{"event":"subscribed",...}` and then a `trade_snapshot` of each
product's recent trades, and pushes every trade as its own `{"feed":"trade",...}` message.
Keepalive is WebSocket pings (the server's part is aiohttp's pong).

The shared market table's USDT perpetuals are listed here as the flexible `PF_` perpetuals
(`BTC/USD:USD`, qty in coins); `EXTRA_MARKETS` (quote "USD") are the inverse `PI_` perpetuals
of the recordings (`XRP/USD:XRP`, qty in whole USD contracts, `quantize` rounds to them).
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

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
    json_reply,
    loads_object,
    plain_error,
    stable_id,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

_FEED: Final = "trade"
_INVERSE_QUOTE: Final = "USD"
"""The quote that marks an `EXTRA_MARKETS` row as a `PI_` inverse perpetual."""
_BASE_IDS: Final = {"BTC": "XBT"}
_OPENING_DATE: Final = "2022-03-01T00:00:00.000Z"
_SIDES: Final[dict[Side, str]] = {"long": "sell", "short": "buy"}
_INVALID_PRODUCT: Final = "Invalid product id"
_INVALID_FEED: Final = "Invalid feed"
_JSON_ERROR: Final = "Json Error"


def _number(value: Decimal) -> int | float:
    """A JSON number as Kraken prints it: integral values without a fraction."""
    value = value.normalize()
    return int(value) if value == value.to_integral_value() else float(value)


def _decimal(value: float) -> Decimal:
    return Decimal(f"{value:.12g}")


def _iso(ms: int) -> str:
    """Kraken's `serverTime` / `lastTime`: ISO 8601 UTC with milliseconds."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _decimals(step: str) -> int:
    """Kraken's `contractValueTradePrecision`: decimals of the lot step (negative for tens)."""
    exponent = Decimal(step).normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) else 0


def _is_inverse(market: FakeMarket) -> bool:
    return market.quote == _INVERSE_QUOTE


class KrakenProtocol(VenueProtocol):
    """Kraken Futures: per-product `trade` feed, liquidations are trades of that type."""

    venue: ClassVar[str] = "kraken"
    ccxt_id: ClassVar[str] = "krakenfutures"
    ws_paths: ClassVar[tuple[str, ...]] = ("/ws/v1",)
    # The inverse perpetuals of tests/fixtures/ws/kraken_futures.jsonl (2020 prices).
    EXTRA_MARKETS: ClassVar[tuple[FakeMarket, ...]] = (
        FakeMarket("XRP", "0.0001", "1", "1", "1", 50, 0.18, 60_000_000.0, quote=_INVERSE_QUOTE),
        FakeMarket("ETH", "0.05", "1", "1", "1", 50, 230.0, 100_000.0, quote=_INVERSE_QUOTE),
    )

    def __init__(self, markets: Sequence[FakeMarket], *, extra: bool = True) -> None:
        super().__init__(markets, extra=extra)
        self._seq = itertools.count(1)

    def market_id(self, market: FakeMarket) -> str:
        """`PF_XBTUSD` (flexible) or `PI_XBTUSD` (inverse); Kraken's BTC is XBT."""
        prefix = "PI" if _is_inverse(market) else "PF"
        return f"{prefix}_{_BASE_IDS.get(market.base, market.base)}USD"

    def unified_symbol(self, market: FakeMarket) -> str:
        """ccxt's symbols: `BTC/USD:USD` for PF_, `BTC/USD:BTC` for PI_."""
        settle = market.base if _is_inverse(market) else "USD"
        return f"{market.base}/USD:{settle}"

    def ccxt_config(self, rest_url: str, ws_url: str) -> dict[str, Any]:
        del ws_url  # ccxt.pro does not stream Kraken liquidations: the native client does
        return {"urls": {"api": {"public": f"{rest_url}/derivatives/api/"}}}

    def quantize(self, liquidation: Liquidation) -> Liquidation:
        """PI_: whole USD contracts (at least one); PF_: coins on the lot step; prices on the
        tick."""
        m = self.market(liquidation.symbol)
        price = _decimal(liquidation.price).quantize(Decimal(m.tick_size).normalize())
        if _is_inverse(m):
            usd = (_decimal(liquidation.coins) * price).to_integral_value(ROUND_HALF_EVEN)
            coins = float(max(usd, Decimal(1)) / price)
        else:
            step = Decimal(m.qty_step)
            lots = (_decimal(liquidation.coins) / step).to_integral_value(ROUND_HALF_EVEN)
            coins = float(max(lots, Decimal(1)) * step)
        return Liquidation(
            liquidation.symbol, liquidation.side, float(price), coins, liquidation.ts_ms
        )

    def _qty(self, market: FakeMarket, liquidation: Liquidation) -> Decimal:
        """Contracts on the wire: USD for PI_, coins for PF_."""
        coins = _decimal(liquidation.coins)
        if _is_inverse(market):
            return (coins * _decimal(liquidation.price)).to_integral_value(ROUND_HALF_EVEN)
        return coins.quantize(Decimal(market.qty_step))

    # --- REST ---------------------------------------------------------------------------

    def rest_routes(self) -> Mapping[str, RestHandler]:
        """Instruments (load_markets) and tickers (open interest and mark of every one)."""
        return {
            "/derivatives/api/v3/instruments": self._instruments,
            "/derivatives/api/v3/tickers": self._tickers,
        }

    def rest_error(self, status: int) -> RestReply:
        """`apiLimitExceeded` for 429 (ccxt: DDoSProtection); bare pages otherwise."""
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            return json_reply({"result": "error", "error": "apiLimitExceeded"}, status)
        return plain_error(status)

    def _instruments(self, ctx: RestContext) -> RestReply:
        rows = [self._instrument(q.market) for q in ctx.quotes]
        rows.append({"symbol": "in_xbtusd", "type": "spot index", "tradeable": False})
        body = {"result": "success", "instruments": rows, "serverTime": _iso(ctx.now_ms)}
        return json_reply(body)

    def _instrument(self, m: FakeMarket) -> dict[str, Any]:
        levels = [
            {"contracts": 0, "initialMargin": 0.02, "maintenanceMargin": 0.01},
            {"contracts": 500000, "initialMargin": 0.04, "maintenanceMargin": 0.02},
        ]
        row: dict[str, Any] = {
            "symbol": self.market_id(m),
            "type": "futures_inverse" if _is_inverse(m) else "flexible_futures",
        }
        if _is_inverse(m):
            row["underlying"] = f"rr_{_BASE_IDS.get(m.base, m.base).lower()}usd"
        row |= {
            "tickSize": _number(Decimal(m.tick_size)),
            "contractSize": 1,
            "tradeable": True,
            "impactMidSize": 1,
            "maxPositionSize": 1000000,
            "openingDate": _OPENING_DATE,
            "marginLevels": levels,
            "fundingRateCoefficient": 8,
            "maxRelativeFundingRate": 0.001,
            "contractValueTradePrecision": 0 if _is_inverse(m) else _decimals(m.qty_step),
            "postOnly": False,
            "retailMarginLevels": levels,
            "category": "",
            "tags": [],
        }
        if not _is_inverse(m):
            row |= {"base": m.base, "quote": "USD", "pair": f"{m.base}:USD", "mtf": False}
        return row

    def _tickers(self, ctx: RestContext) -> RestReply:
        rows = [self._ticker(q, ctx.now_ms) for q in ctx.quotes]
        body = {"result": "success", "tickers": rows, "serverTime": _iso(ctx.now_ms)}
        return json_reply(body)

    def _ticker(self, quote: Quote, now_ms: int) -> dict[str, Any]:
        """A perpetual's ticker (https://docs.kraken.com/api/docs/futures-api/trading/
        get-tickers): the state's index price, and its rates as Kraken's absolute rates per
        contract and hour (the state's interval has nowhere to go: Kraken's is one hour),
        i.e. x index (USD per one-coin PF_ contract) or / index (coins per one-USD PI_
        contract)."""
        m, state = quote.market, quote.state
        mark = _decimal(state.mark_price)
        tick = Decimal(m.tick_size).normalize()
        coins = _decimal(state.open_interest_coins)
        contracts = (coins * mark).quantize(Decimal(1)) if _is_inverse(m) else coins

        def price(value: Decimal) -> int | float:
            return _number(value.quantize(tick))

        index = _number(_decimal(state.index_price))

        def absolute(rate: float) -> float:
            return rate / index if _is_inverse(m) else rate * index

        return {
            "tag": "perpetual",
            "pair": f"{_BASE_IDS.get(m.base, m.base)}:USD",
            "symbol": self.market_id(m),
            "markPrice": _number(mark),
            "bid": price(mark - tick),
            "bidSize": 1,
            "ask": price(mark + tick),
            "askSize": 1,
            "vol24h": _number(contracts * 3),
            "volumeQuote": _number((coins * 3 * mark).quantize(Decimal("0.01"))),
            "openInterest": _number(contracts),
            "open24h": price(mark * Decimal("0.98")),
            "high24h": price(mark * Decimal("1.03")),
            "low24h": price(mark * Decimal("0.97")),
            "last": price(mark),
            "lastTime": _iso(now_ms),
            "lastSize": 1,
            "suspended": False,
            "fundingRate": absolute(state.funding_rate),
            "fundingRatePrediction": absolute(state.predicted_funding_rate),
            "postOnly": False,
            "indexPrice": index,
        }

    # --- WebSocket ----------------------------------------------------------------------

    def greeting(self, conn_id: str) -> list[str]:
        del conn_id
        return [compact({"event": "info", "version": 1})]

    def parse(self, text: str) -> Inbound:
        """`event` subscribe/unsubscribe with `feed` and `product_ids`."""
        message = loads_object(text)
        if message is None or message.get("event") not in {"subscribe", "unsubscribe"}:
            return InvalidRequest(text)
        op: Literal["subscribe", "unsubscribe"] = (
            "subscribe" if message["event"] == "subscribe" else "unsubscribe"
        )
        ids = message.get("product_ids")
        if message.get("feed") != _FEED or not isinstance(ids, list) or not ids:
            return SubscribeRequest(op, frozenset(), (str(message.get("feed")),), message, text)
        keys: set[str] = set()
        invalid: list[str] = []
        for product in ids:
            market = self.by_id.get(product.upper()) if isinstance(product, str) else None
            if market is None:
                invalid.append(str(product))
            else:
                keys.add(self.unified_symbol(market))
        return SubscribeRequest(op, frozenset(keys), tuple(invalid), message, text)

    def ack(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """`subscribed` echoing the products, then each product's (here empty) snapshot."""
        del conn_id
        ids = request.message.get("product_ids", [])
        if request.op == "unsubscribe":
            return [compact({"event": "unsubscribed", "feed": _FEED, "product_ids": ids})]
        answer = compact({"event": "subscribed", "feed": _FEED, "product_ids": ids})
        snapshots = [
            compact({"feed": "trade_snapshot", "product_id": product, "trades": []})
            for product in ids
        ]
        return [answer, *snapshots]

    def reject(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """`Invalid feed` for another feed, else `Invalid product id`."""
        del conn_id
        message = _INVALID_PRODUCT if request.message.get("feed") == _FEED else _INVALID_FEED
        return [compact({"event": "error", "message": message})]

    def invalid(self, request: InvalidRequest, conn_id: str) -> list[str]:
        del request, conn_id
        return [compact({"event": "error", "message": _JSON_ERROR})]

    def pong(self, ping: PingRequest, conn_id: str) -> str:
        """Unused: keepalive is WebSocket pings, answered by the server itself."""
        del ping, conn_id
        return compact({"event": "error", "message": _JSON_ERROR})

    def encode(self, liquidations: Sequence[Liquidation]) -> list[Frame]:
        """Every trade is its own message (fields in the recorded order)."""
        return [self._frame(liq) for liq in liquidations]

    def _frame(self, liq: Liquidation) -> Frame:
        m = self.market(liq.symbol)
        trade = {
            "feed": _FEED,
            "product_id": self.market_id(m),
            "uid": str(uuid.UUID(int=stable_id(liq, bits=128))),
            "side": _SIDES[liq.side],
            "type": "liquidation",
            "seq": next(self._seq),
            "time": liq.ts_ms,
            "qty": _number(self._qty(m, liq)),
            "price": _number(_decimal(liq.price)),
        }
        return Frame(compact(trade), liq.symbol, (liq,))

    def decode(self, text: str) -> list[Liquidation]:
        """A liquidation trade of a listed product (PI_ qty is USD: coins at its price)."""
        message = loads_object(text)
        if message is None or message.get("feed") != _FEED or message.get("type") != "liquidation":
            return []
        market = self.by_id.get(str(message.get("product_id")))
        if market is None:
            return []
        price = float(message["price"])
        qty = float(message["qty"])
        coins = qty / price if _is_inverse(market) else qty
        side: Side = "long" if message.get("side") == "sell" else "short"
        return [Liquidation(self.unified_symbol(market), side, price, coins, int(message["time"]))]
