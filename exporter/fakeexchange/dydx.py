"""dYdX v4 indexer wire format (ccxt class `dydx` for REST; liquidations only on the native
client).

REST under /v4 (`/v4/perpetualMarkets`: every market with its open interest in the base coin,
its oracle price and its next funding rate); errors as `{"errors":[{"msg":...}]}`. WebSocket
/v4/ws: a `connected` greeting, `{"type":"subscribe","channel":"v4_trades","id":"BTC-USD"}`
answered `subscribed` with the market's PAST trades (a limit trade and a liquidation, as the
last 100 trades of the real indexer hold), then `channel_data` frames of `contents.trades`,
newest first. Every liquidation is a trade of `type` `LIQUIDATED` whose `side` is the
liquidation order's (SELL: a long was closed). Markets are `<COIN>-USD`, ccxt's
`<COIN>/USDC:USDC`. The real indexer caps a connection at 32 `v4_trades` subscriptions; the
fake does not count them.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
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
    decimal_str,
    group_by_symbol,
    json_reply,
    loads_object,
    plain_error,
    stable_id,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from exporter.fakeexchange.markets import FakeMarket

_CHANNEL: Final = "v4_trades"
_VERSION: Final = "2.4.0"
_QUOTE: Final = "USD"
_SETTLE: Final = "USDC"
_BLOCK_HEIGHT: Final = 105_810_227
_PAST_TRADES_AT: Final = ("2024-08-04T07:34:50.628Z", "2024-08-04T07:34:49.102Z")
"""Times of the past trades an acknowledgement carries: long before any test's frames."""
_SIDES: Final[dict[Side, str]] = {"long": "SELL", "short": "BUY"}


def _step(value: float, step: str) -> Decimal:
    """``value`` rounded to a multiple of ``step``, at least one step."""
    quantum = Decimal(step)
    units = (Decimal(decimal_str(value)) / quantum).to_integral_value(rounding=ROUND_HALF_EVEN)
    return max(units, Decimal(1)) * quantum


def _plain(value: Decimal) -> str:
    """The indexer's decimal strings: no exponent, no trailing zeros ("60397", "0.002")."""
    return format(value.normalize(), "f")


def _iso(ts_ms: int) -> str:
    """``2024-08-22T23:59:59.851Z``."""
    when = datetime.fromtimestamp(ts_ms // 1000, UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{ts_ms % 1000:03d}Z"


class DydxProtocol(VenueProtocol):
    """dYdX v4: one `v4_trades` subscription per market."""

    venue: ClassVar[str] = "dydx"
    ccxt_id: ClassVar[str] = "dydx"
    ws_paths: ClassVar[tuple[str, ...]] = ("/v4/ws",)
    RETRY_AFTER_UNIT: ClassVar[float] = 0.001  # msBeforeNext (comlink rate-limit.ts)

    def __init__(self, markets: Sequence[FakeMarket], *, extra: bool = True) -> None:
        super().__init__(markets, extra=extra)
        # Every frame goes to every subscriber as one text: one counter and one connection id
        # for the fake's data frames, where the real indexer numbers them per connection.
        self._message_ids = itertools.count(1)
        self._data_connection = str(uuid.uuid4())

    def market_id(self, market: FakeMarket) -> str:
        return f"{market.base}-{_QUOTE}"

    def unified_symbol(self, market: FakeMarket) -> str:
        """ccxt quotes and settles dYdX markets in USDC."""
        return f"{market.base}/{_SETTLE}:{_SETTLE}"

    def quantize(self, liquidation: Liquidation) -> Liquidation:
        """Prices on the tick, sizes on the step: what a fill can be."""
        m = self.market(liquidation.symbol)
        price = _step(liquidation.price, m.tick_plain)
        size = _step(liquidation.coins, m.qty_step)
        return replace(liquidation, price=float(price), coins=float(size))

    def ccxt_config(self, rest_url: str, ws_url: str) -> dict[str, Any]:
        return {"urls": {"api": {"indexer": f"{rest_url}/v4", "ws": f"{ws_url}/v4/ws"}}}

    # --- REST ---------------------------------------------------------------------------

    def rest_routes(self) -> Mapping[str, RestHandler]:
        """Every market (load_markets, and the open-interest poll), the indexer's time."""
        return {
            "/v4/perpetualMarkets": self._perpetual_markets,
            "/v4/time": _time,
        }

    def rest_error(self, status: int) -> RestReply:
        """The indexer's JSON errors for 429 and 500; a bare page (its proxy) otherwise."""
        messages = {
            HTTPStatus.TOO_MANY_REQUESTS: "Too many requests",
            HTTPStatus.INTERNAL_SERVER_ERROR: "Internal Server Error",
        }
        if status in messages:
            return json_reply({"errors": [{"msg": messages[HTTPStatus(status)]}]}, status)
        return plain_error(status)

    def _perpetual_markets(self, ctx: RestContext) -> RestReply:
        """`{"markets": {ticker: market}}`, one ticker with ?ticker= (404 when unknown)."""
        ticker = ctx.query.get("ticker")
        quotes = [q for q in ctx.quotes if not ticker or self.market_id(q.market) == ticker]
        if ticker and not quotes:
            msg = f"{ticker} not found in markets of type PERPETUAL"
            return json_reply({"errors": [{"msg": msg}]}, HTTPStatus.NOT_FOUND)
        markets = {self.market_id(q.market): self._market(n, q) for n, q in enumerate(quotes)}
        return json_reply({"markets": markets})

    def _market(self, clob_pair_id: int, quote: Quote) -> dict[str, Any]:
        """A market as the indexer lists it (https://docs.dydx.xyz/types/perpetual_market):
        the oracle price is the state's mark (dYdX marks at it), ``nextFundingRate`` the
        state's rate (per hour on dYdX: the state's interval has nowhere to go)."""
        m, state = quote.market, quote.state
        oracle = _plain(Decimal(decimal_str(state.mark_price)))
        open_interest = _plain(Decimal(decimal_str(state.open_interest_coins)))
        initial = Decimal(1) / Decimal(m.max_leverage)
        return {
            "clobPairId": str(clob_pair_id),
            "ticker": self.market_id(m),
            "status": "ACTIVE",
            "oraclePrice": oracle,
            "priceChange24H": "0",
            "volume24H": _plain(Decimal(decimal_str(state.open_interest_coins * 0.1))),
            "trades24H": 9387,
            "nextFundingRate": _plain(Decimal(decimal_str(state.funding_rate))),
            "initialMarginFraction": _plain(initial),
            "maintenanceMarginFraction": _plain(initial * Decimal("0.6")),
            "openInterest": open_interest,
            "atomicResolution": -10,
            "quantumConversionExponent": -9,
            "tickSize": m.tick_plain,
            "stepSize": _plain(Decimal(m.qty_step)),
            "stepBaseQuantums": 1_000_000,
            "subticksPerTick": 100_000,
            "marketType": "CROSS",
            "openInterestLowerCap": "0",
            "openInterestUpperCap": "0",
            "baseOpenInterest": open_interest,
            "defaultFundingRate1H": "0",
        }

    # --- WebSocket ----------------------------------------------------------------------

    def greeting(self, conn_id: str) -> list[str]:
        return [compact({"type": "connected", "connection_id": conn_id, "message_id": 0})]

    def parse(self, text: str) -> Inbound:
        """`type` subscribe/unsubscribe with `channel` and `id`, or `type` ping."""
        message = loads_object(text)
        if message is None:
            return InvalidRequest(text)
        kind = message.get("type")
        if kind == "ping":
            return PingRequest(message)
        if kind not in ("subscribe", "unsubscribe") or not message.get("channel"):
            return InvalidRequest(text)
        market = self.by_id.get(str(message.get("id")))
        if message.get("channel") != _CHANNEL or market is None:
            topic = f"{message.get('channel')}-{message.get('id')}"
            return SubscribeRequest(kind, frozenset(), (topic,), message, text)
        keys = frozenset({self.unified_symbol(market)})
        return SubscribeRequest(kind, keys, (), message, text)

    def ack(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """`subscribed` with the market's past trades, or `unsubscribed`."""
        market_id = str(request.message.get("id"))
        if request.op == "unsubscribe":
            answer = {
                "type": "unsubscribed",
                "connection_id": conn_id,
                "message_id": next(self._message_ids),
                "channel": _CHANNEL,
                "id": market_id,
            }
            return [compact(answer)]
        market = self.by_id[market_id]
        past = [
            self._trade(market, "long", market.mark_price, float(market.qty_step), kind="LIMIT"),
            self._trade(
                market, "long", market.mark_price, float(market.qty_step), kind="LIQUIDATED"
            ),
        ]
        for trade, at in zip(past, _PAST_TRADES_AT, strict=True):
            trade["createdAt"] = at
        return [
            compact(
                {
                    "type": "subscribed",
                    "connection_id": conn_id,
                    "message_id": next(self._message_ids),
                    "channel": _CHANNEL,
                    "id": market_id,
                    "contents": {"trades": past},
                }
            )
        ]

    def reject(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """An unknown channel or market, as socks words them; a refused call: the
        per-connection subscription limit."""
        if request.invalid:
            channel, id_ = request.message.get("channel"), request.message.get("id")
            if channel != _CHANNEL:
                msg = f"Invalid channel: {channel}"
            else:
                msg = f"Invalid subscription id for channel: ({channel}-{id_})"
        else:
            msg = f"Per-connection subscription limit reached for {_CHANNEL} (limit=32)."
        return [self._error(msg, conn_id)]

    def invalid(self, request: InvalidRequest, conn_id: str) -> list[str]:
        message = loads_object(request.text)
        if message is None:
            return [self._error("Invalid message: could not parse", conn_id)]
        if message.get("type") in ("subscribe", "unsubscribe"):
            return [self._error("Invalid subscribe message: channel is required", conn_id)]
        return [self._error(f"Invalid message type: {message.get('type')}", conn_id)]

    def pong(self, ping: PingRequest, conn_id: str) -> str:
        answer: dict[str, Any] = {
            "type": "pong",
            "connection_id": conn_id,
            "message_id": next(self._message_ids),
        }
        if ping.message.get("id"):
            answer["id"] = ping.message["id"]
        return compact(answer)

    def _error(self, msg: str, conn_id: str) -> str:
        error = {
            "type": "error",
            "message": msg,
            "connection_id": conn_id,
            "message_id": next(self._message_ids),
        }
        return compact(error)

    def encode(self, liquidations: Sequence[Liquidation]) -> list[Frame]:
        """One `channel_data` frame per market, its trades newest first."""
        return [self._frame(group) for group in group_by_symbol(liquidations)]

    def _frame(self, group: Sequence[Liquidation]) -> Frame:
        m = self.market(group[0].symbol)
        trades = [
            self._trade(m, liq.side, liq.price, liq.coins, kind="LIQUIDATED", ts_ms=liq.ts_ms)
            for liq in reversed(group)
        ]
        frame = {
            "type": "channel_data",
            "connection_id": self._data_connection,
            "message_id": next(self._message_ids),
            "id": self.market_id(m),
            "channel": _CHANNEL,
            "version": _VERSION,
            "contents": {"trades": trades},
        }
        return Frame(compact(frame), self.unified_symbol(m), tuple(group))

    def _trade(
        self,
        m: FakeMarket,
        side: Side,
        price: float,
        coins: float,
        *,
        kind: str,
        ts_ms: int = 0,
    ) -> dict[str, Any]:
        """A trade as the indexer prints it (key order of a 2026 capture)."""
        number = stable_id(m.base, side, price, coins, kind, ts_ms, bits=32)
        return {
            "id": f"{_BLOCK_HEIGHT:08x}{2:08x}{number:08x}",
            "side": _SIDES[side],
            "size": _plain(_step(coins, m.qty_step)),
            "price": _plain(_step(price, m.tick_plain)),
            "type": kind,
            "createdAt": _iso(ts_ms),
            "createdAtHeight": str(_BLOCK_HEIGHT),
        }

    def decode(self, text: str) -> list[Liquidation]:
        """The LIQUIDATED trades of a `channel_data` frame (past trades of an ack are not)."""
        message = loads_object(text)
        if message is None or message.get("type") != "channel_data":
            return []
        market = self.by_id.get(str(message.get("id")))
        contents = message.get("contents")
        trades = contents.get("trades") if isinstance(contents, dict) else None
        if market is None or not isinstance(trades, list):
            return []
        symbol = self.unified_symbol(market)
        out = []
        for trade in trades:
            if trade.get("type") != "LIQUIDATED":
                continue
            position: Side = "long" if trade["side"] == "SELL" else "short"
            when = datetime.fromisoformat(trade["createdAt"])
            ts_ms = int(when.timestamp()) * 1000 + when.microsecond // 1000
            out.append(
                Liquidation(symbol, position, float(trade["price"]), float(trade["size"]), ts_ms)
            )
        return out


def _time(ctx: RestContext) -> RestReply:
    return json_reply({"iso": _iso(ctx.now_ms), "epoch": ctx.now_ms / 1000})
