"""dYdX v4 perpetuals: REST through ccxt ``dydx`` (the indexer), the stream through our own
client on the indexer WebSocket (ccxt.pro has no liquidation watch for dYdX).

dYdX has no liquidation channel: ``v4_trades`` (one subscription per market) carries every
trade, and only those of ``type`` ``LIQUIDATED`` are entries; the others are left out, not
rejected. ``DELEVERAGED`` trades are not counted either: they close a bankrupt position against
offsetting accounts, and also settle every position of a delisted market, and the public trade
does not tell the two apart (other venues' liquidation feeds carry no deleveraging either).
``size`` is in the base coin, ``price`` in USD, ``createdAt`` an ISO-8601 time. The
``subscribed`` acknowledgement carries the market's PAST trades: it is the ack, never data.
The server pings every 30 s (aiohttp answers); we ping it as often.

The indexer allows 32 ``v4_trades`` subscriptions per connection (``V4_TRADES_CHANNEL_LIMIT``,
v4-chain indexer/services/socks/src/config.ts) and refuses the rest: ``symbols: all`` means
the 32 markets of the largest open interest (in USD), until the stream can spread over several
connections.

Open interest (base coin) and oracle price of every market: one ``/v4/perpetualMarkets`` call
per poll, against the indexer's 100 requests per 10 s per IP. The 5-minute candles carry
``startingOpenInterest``, but ccxt's ``fetch_ohlcv`` drops it and ccxt has no open-interest
history for dYdX: no backfill (``HISTORY`` None).

Funding comes in the same listing, at no extra request (``nextFundingRate``,
https://docs.dydx.xyz/types/perpetual_market; https://docs.dydx.xyz/indexer-client/http):
the indexer's estimate of the rate the coming funding tick pays, the average of the hour's
premium samples, each turned to a rate per hour, plus the market's default hourly rate
(v4-chain indexer: ender/src/handlers/funding-handler.ts ``funding8HourValuePpmTo1HourRate``,
packages/redis/src/caches/next-funding-cache.ts). Funding is paid every hour on the hour (the
chain's ``funding-tick`` epoch: ``duration`` 3600 s, ``next_tick`` 0, in the genesis
``epochs``), a rule that is in no response: the next funding time is the next whole hour of
the indexer's clock (the answer's ``Date`` header; none without one). No prediction beyond
it is published. The oracle price, the only price dYdX has, is already the mark price
(positions are marked at it): it is not repeated as an index price, whose basis to the mark
would be zero by construction.
"""

from __future__ import annotations

import math
from email.utils import parsedate_to_datetime
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Final

from exporter.collectors import fields
from exporter.collectors.intake import FrameItem, RawEntry, RawLiquidation
from exporter.collectors.venue import (
    ContextFields,
    FrameKind,
    NativeFeed,
    OpenInterestFields,
    OpenInterestItem,
    RawOpenInterest,
    VenueAdapter,
)
from exporter.events import InvalidEventError, Reason, Side

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping, Sequence

    from exporter.collectors.ccxt_types import CcxtExchange
    from exporter.collectors.history import HistoryLimits
    from exporter.venues import Venue

TRADES_CHANNEL: Final = "v4_trades"
LIQUIDATED: Final = "LIQUIDATED"
# Frames that are neither data nor an answer to a subscription: the greeting on connect, the
# answer to an unsubscribe or to an application-level ping.
CONTROL_TYPES: Final = frozenset({"connected", "unsubscribed", "pong"})
# Funding is paid at every whole hour (see the module docstring).
FUNDING_INTERVAL_MS: Final = 3_600_000


def _open_interest_fields(info: Mapping[str, Any]) -> OpenInterestFields:
    """``openInterest`` is in the base coin; the oracle price is dYdX's mark price. The
    listing has no per-market time."""
    return (
        fields.number(info, "openInterest"),
        None,
        fields.number(info, "oraclePrice"),
        None,
    )


def _context_fields(info: Mapping[str, Any], now_ms: int | None) -> ContextFields:
    """``nextFundingRate``: the rate per hour the coming tick pays, at the next whole hour
    after ``now_ms`` (the indexer's time; None: no next funding time)."""
    return ContextFields(
        funding_rate=fields.number(info, "nextFundingRate"),
        next_funding_ms=None
        if now_ms is None
        else (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS,
        funding_interval_s=FUNDING_INTERVAL_MS / 1000,
    )


def _response_time_ms(headers: Mapping[str, str] | None) -> int | None:
    """The time of an answer by its ``Date`` header (RFC 9110: "the date and time at which
    the message was originated", to the second); None without a readable one."""
    value = next(
        (v for k, v in (headers or {}).items() if k.lower() == "date" and isinstance(v, str)),
        None,
    )
    if value is None:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return (when - fields.EPOCH) // fields.MILLISECOND


def _trade_items(trade: object, market_id: str) -> list[FrameItem]:
    if not isinstance(trade, dict):
        return [InvalidEventError(Reason.WRONG_TYPE, f"trade {trade!r:.50}")]
    return [RawEntry(market_id, trade)] if trade.get("type") == LIQUIDATED else []


class DydxVenue(VenueAdapter):
    name: ClassVar[Venue] = "dydx"
    ccxt_class: ClassVar[str | None] = "dydx"
    CCXT_STREAMS: ClassVar[bool] = False
    HISTORY: ClassVar[HistoryLimits | None] = None
    # The indexer's Retry-After is msBeforeNext, in milliseconds (v4-chain indexer
    # comlink/src/lib/rate-limit.ts), not RFC 9110's seconds.
    RETRY_AFTER_UNIT: ClassVar[float] = 0.001
    # The indexer's cap of v4_trades subscriptions per connection (V4_TRADES_CHANNEL_LIMIT).
    MAX_MARKETS: ClassVar[int | None] = 32
    # The server sends a WebSocket ping every 30 s and drops a connection whose pong is 10 s
    # late; we ping as often (aiohttp's heartbeat) to notice a dead link.
    NATIVE: ClassVar[NativeFeed] = NativeFeed(
        default_root="wss://indexer.dydx.trade",
        path="/v4/ws",
        keepalive_seconds=30.0,
        all_markets_channel=False,
    )
    # ``side`` of a trade is the TAKER's order side (the indexer publishes a trade from the
    # taker's fill), and a LIQUIDATED trade's taker is the liquidation order ("LIQUIDATED is
    # the trade type for a fill with a liquidated taker order", v4-chain indexer/packages/
    # postgres/src/types/trade-types.ts; https://docs.dydx.xyz/indexer-client/websockets).
    # The forced order closes the position: SELL means a long was liquidated.
    SIDES: ClassVar[dict[str, Side]] = {"SELL": "long", "BUY": "short"}
    # The listing's funding rate, and the hourly schedule it is paid on.
    CONTEXT: ClassVar[frozenset[str]] = frozenset(
        {"funding_rate", "next_funding_ms", "funding_interval_s"}
    )
    FIXED_FUNDING_INTERVAL_S: ClassVar[float | None] = FUNDING_INTERVAL_MS / 1000

    @classmethod
    def url_overrides(cls, rest_url: str | None, ws_url: str | None) -> dict[str, Any]:
        """``rest_url`` is the indexer's root (``/v4`` is appended, as on indexer.dydx.trade)."""
        api: dict[str, Any] = {}
        if rest_url:
            api["indexer"] = rest_url + "/v4"
        if ws_url:
            api["ws"] = ws_url + cls.NATIVE.path
        return {"api": api} if api else {}

    @classmethod
    def coin_symbol(cls, coin: str) -> str:
        """ccxt's symbol of ``<COIN>-USD``: quoted and settled in USDC."""
        return f"{coin}/USDC:USDC"

    def listed_markets(self, exchange: CcxtExchange) -> list[str]:
        """The active markets of the largest open interest in USD, as many as one connection
        may subscribe to (``MAX_MARKETS``)."""
        active = [
            (symbol, market)
            for symbol, market in (exchange.markets or {}).items()
            if market.get("swap") and market.get("active") is not False
        ]
        active.sort(key=lambda item: -_open_interest_usd(item[1]))
        return [symbol for symbol, _ in active[: self.MAX_MARKETS]]

    # --- the liquidation stream -------------------------------------------------------------

    def classify_frame(self, message: object) -> FrameKind:
        if not isinstance(message, dict):
            return FrameKind.UNKNOWN
        kind = message.get("type")
        if kind in ("channel_data", "channel_batch_data"):
            return FrameKind.DATA if message.get("channel") == TRADES_CHANNEL else FrameKind.UNKNOWN
        if kind == "subscribed":
            return FrameKind.ACK  # its contents are past trades: not counted
        if kind == "error":
            return FrameKind.REJECT
        return FrameKind.CONTROL if kind in CONTROL_TYPES else FrameKind.UNKNOWN

    def split_frame(self, message: Any) -> Sequence[FrameItem]:
        """Every LIQUIDATED trade of ``contents.trades`` (a list of such contents in a batch);
        the market is the subscription's ``id``."""
        market_id = message.get("id")
        if not isinstance(market_id, str) or not market_id:
            return [InvalidEventError(Reason.MISSING_FIELD, f"id={market_id!r:.50}")]
        contents = message.get("contents")
        batch = contents if message.get("type") == "channel_batch_data" else [contents]
        if not isinstance(batch, list):
            return [InvalidEventError(Reason.WRONG_TYPE, f"contents={contents!r:.50}")]
        items: list[FrameItem] = []
        for content in batch:
            trades = content.get("trades") if isinstance(content, dict) else None
            if not isinstance(trades, list):
                items.append(InvalidEventError(Reason.WRONG_TYPE, f"trades={trades!r:.50}"))
                continue
            for trade in trades:
                items.extend(_trade_items(trade, market_id))
        return items

    def parse_entry(self, entry: Any) -> RawLiquidation:
        return RawLiquidation(
            side=fields.lookup(entry, "side", self.SIDES, Reason.INVALID_SIDE),
            price=fields.number(entry, "price"),
            amount=fields.number(entry, "size"),
            timestamp_ms=fields.iso_ms(entry, "createdAt"),
            entry_id=fields.entry_id(entry, "id"),
        )

    def watch_calls(
        self,
        exchange: CcxtExchange,  # noqa: ARG002 - ccxt.pro does not stream dYdX liquidations
        symbols: Sequence[str] | None,  # noqa: ARG002
    ) -> list[Callable[[], Coroutine[Any, Any, object]]]:
        return []

    def native_subscriptions(self, market_ids: Sequence[str] | None) -> list[dict[str, Any]]:
        """``{"type": "subscribe", "channel": "v4_trades", "id": "BTC-USD"}`` per market, each
        acknowledged by ``subscribed``. There is no all-market channel: ``market_ids`` is never
        None here."""
        return [
            {"type": "subscribe", "channel": TRADES_CHANNEL, "id": market_id}
            for market_id in market_ids or ()
        ]

    # --- open interest ---------------------------------------------------------------------

    async def read_open_interest(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[OpenInterestItem]:
        """Every market's reading from one ``/v4/perpetualMarkets`` listing."""
        api: Any = exchange  # ccxt's implicit endpoint methods are not in CcxtExchange
        response = await api.indexerGetPerpetualMarkets()
        now_ms = _response_time_ms(exchange.last_response_headers)
        listing = response.get("markets") if isinstance(response, dict) else None
        markets = exchange.markets or {}
        wanted = list(symbols) if symbols is not None else self.every_market(exchange)
        if not isinstance(listing, dict):
            return [InvalidEventError(Reason.MALFORMED, f"markets of {s}") for s in wanted]
        items: list[OpenInterestItem] = []
        for symbol in wanted:
            market = markets[symbol]
            info = listing.get(market["id"])
            if not isinstance(info, dict):
                items.append(InvalidEventError(Reason.MISSING_FIELD, f"no listing of {symbol}"))
                continue
            items.append(
                RawOpenInterest(
                    market,
                    partial(_open_interest_fields, info),
                    partial(_context_fields, info, now_ms),
                )
            )
        return items


def _open_interest_usd(market: Mapping[str, Any]) -> float:
    """Open interest x oracle price of a loaded market's listing; 0 where unreadable."""
    info = market.get("info")
    if not isinstance(info, dict):
        return 0.0
    try:
        usd = float(info["openInterest"]) * float(info["oraclePrice"])
    except (KeyError, TypeError, ValueError):
        return 0.0
    return usd if math.isfinite(usd) else 0.0
