"""The per-venue contract: everything a venue module says, and nothing it does.

A venue module (binance.py, gate.py, ...) subclasses ``VenueAdapter`` with data (names,
URLs, limits, units) and small pure parsers: how a frame is classified, how a data frame splits
into entries and an entry reads, what to subscribe to (through ccxt.pro or natively), how open
interest is read. The loops that use them live once in stream.py, poll.py and backfill.py.
See docs/adding-a-venue.md.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

import ccxt

from exporter.events import InvalidEventError, PositioningSource, Reason
from exporter.shard import WHOLE
from exporter.venues import exchange_label

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping, Sequence

    from exporter.collectors.ccxt_types import CcxtExchange, Market
    from exporter.collectors.history import HistoryLimits
    from exporter.collectors.intake import FrameItem, RawLiquidation
    from exporter.collectors.rest_exchange import RestExchange
    from exporter.shard import Shard
    from exporter.venues import Venue


class FrameKind(Enum):
    DATA = "data"
    ACK = "ack"
    REJECT = "reject"
    CONTROL = "control"  # pong and other keepalive or informational frames
    UNKNOWN = "unknown"  # none of the venue's shapes: counted as malformed


# (coins, USD or None to derive from the mark price, mark price, exchange time ms or None)
OpenInterestFields = tuple[float, float | None, float, int | None]


@dataclass(frozen=True, slots=True)
class ContextFields:
    """Funding and index price as a venue's open-interest call (or one beside it) gives them;
    None where it gives no such figure. Rates are fractions per funding interval."""

    index_price: float | None = None
    funding_rate: float | None = None
    predicted_funding_rate: float | None = None
    next_funding_ms: int | None = None
    funding_interval_s: float | None = None


# Every figure ``ContextFields`` holds: the ``CONTEXT`` of a venue that publishes them all.
EVERY_CONTEXT: Final = frozenset(f.name for f in fields(ContextFields))


@dataclass(frozen=True, slots=True)
class RawOpenInterest:
    """One market's open-interest reading, not yet read: ``read()`` raises InvalidEventError;
    ``context()``, where the venue has one, reads its funding and index price (on its own: a bad
    funding figure does not take the open interest with it)."""

    market: Market
    read: Callable[[], OpenInterestFields]
    context: Callable[[], ContextFields] | None = None


# What a venue's open-interest read yields per market: a reading, or why one is missing.
OpenInterestItem = RawOpenInterest | InvalidEventError

T = TypeVar("T")


async def context_answer(call: Awaitable[T], what: str) -> T | InvalidEventError:
    """The answer of a call made for the market context only (funding, index price). A failed
    one becomes the reason each market's context is missing, counted per market with the
    failure in the log, instead of failing the poll: the open interest stands."""
    try:
        return await call
    except ccxt.BaseError as exc:
        detail = f"{what} failed ({type(exc).__name__}: {exc})"
        return InvalidEventError(Reason.MISSING_FIELD, detail[:200])


@dataclass(frozen=True, slots=True)
class RawLongShort:
    """One long/short ratio of one market, not yet read: ``read()`` gives (ratio, time ms) or
    raises InvalidEventError."""

    market: Market
    source: PositioningSource
    read: Callable[[], tuple[float, int]]


# What a venue's positioning read yields: a ratio, or why one is missing.
PositioningItem = RawLongShort | InvalidEventError


@dataclass(frozen=True, slots=True)
class NativeFeed:
    """The liquidation stream as the exporter's own WebSocket client speaks it.

    ``path`` is appended to the WebSocket root (``ws_url``, or ``default_root``).
    ``keepalive`` is an application-level ping sent every ``keepalive_seconds`` (the venue
    answers it with a frame); None means WebSocket ping frames instead: by aiohttp's heartbeat
    (after that long without a frame), or, with ``ping_always``, every ``keepalive_seconds``
    whatever the traffic (Kraken Futures drops a client that has not pinged for 60 s).
    ``all_markets_channel``: one subscription covers every market; without one, ``symbols:
    all`` subscribes to each market by its id.
    """

    default_root: str
    path: str
    keepalive_seconds: float
    all_markets_channel: bool
    keepalive: str | None = None
    ping_always: bool = False

    def url(self, ws_url: str | None) -> str:
        return (ws_url or self.default_root) + self.path


class VenueAdapter(ABC):
    """One venue: data and pure parsers, no loops and no I/O of its own. An instance serves
    one collector, and the markets of its ``shard`` (``--shard``) only."""

    name: ClassVar[Venue]
    # Set from ``exporter.venues``: the ``exchange`` label (a second feed of one exchange, e.g.
    # Binance COIN-M, shares it).
    exchange: ClassVar[str]
    # ccxt's class for REST (and ccxt.pro for the stream); None where ccxt lacks the venue: a
    # RestExchange then serves markets from ``rest_markets`` and the adapter's REST calls.
    ccxt_class: ClassVar[str | None]
    # The REST root of a venue without ccxt (``rest_url`` overrides it).
    REST_ROOT: ClassVar[str] = ""
    # The most markets one connection may subscribe to (dYdX: 32); None: no limit.
    MAX_MARKETS: ClassVar[int | None] = None
    # Seconds per unit of the venue's Retry-After header (RFC 9110: seconds; dYdX: ms).
    RETRY_AFTER_UNIT: ClassVar[float] = 1.0
    # Sizes in contracts (x contractSize coins; USD for inverse contracts), not coins (OKX).
    quantity_in_contracts: ClassVar[bool] = False
    # How the venue serves 5-minute open-interest history and candles (the heatmap backfill);
    # None: it serves none, and the heatmap starts from live readings.
    HISTORY: ClassVar[HistoryLimits | None]
    NATIVE: ClassVar[NativeFeed]
    # Whether ccxt.pro streams this venue's liquidations; where not, the native client always.
    CCXT_STREAMS: ClassVar[bool] = True

    def __init__(self, shard: Shard = WHOLE) -> None:
        self.shard = shard

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """The label comes from the one venue list (``exporter.venues``)."""
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            cls.exchange = exchange_label(cls.name)

    # --- connecting -----------------------------------------------------------------------

    @classmethod
    @abstractmethod
    def url_overrides(cls, rest_url: str | None, ws_url: str | None) -> dict[str, Any]:
        """ccxt ``urls`` entries that point the exchange at other roots (testnet, proxy, fake)."""

    @classmethod
    def ccxt_options(cls) -> dict[str, Any]:
        return {}

    @classmethod
    def coin_symbol(cls, coin: str) -> str:
        """The market a bare coin of the configuration means here: the USDT perpetual."""
        return f"{coin}/USDT:USDT"

    @classmethod
    def market_of(cls, coin: str, listed: Collection[str]) -> str:
        """The market of ``coin`` among those ``listed``: the venue's main one, else its USDT
        perpetual (BitMEX lists ETH as a quanto contract, which is not covered, and ETHUSDT);
        the main one, unlisted, when neither is."""
        main = cls.coin_symbol(coin)
        usdt = VenueAdapter.coin_symbol(coin)
        return usdt if main not in listed and usdt in listed else main

    async def rest_markets(self, rest: RestExchange) -> dict[str, Market]:
        """Markets of a venue without ccxt (``ccxt_class`` None), shaped as ccxt's, by symbol."""
        del rest
        raise NotImplementedError(f"{self.name} loads its markets through ccxt")

    def every_market(self, exchange: CcxtExchange) -> list[str]:
        """What ``symbols: all`` covers in this replica: the listed markets its shard owns.
        Every caller (stream, polls, backfill, venue modules) asks here, so no other shard's
        market is subscribed, polled one by one or backfilled."""
        return [s for s in self.listed_markets(exchange) if self.owns(s)]

    def owns(self, symbol: str) -> bool:
        """Whether this replica's shard serves the market; hashed under the ``exchange`` label,
        so a series' own labels say which shard it comes from."""
        return self.shard.owns(self.exchange, symbol)

    def listed_markets(self, exchange: CcxtExchange) -> list[str]:
        """What ``symbols: all`` covers over all shards: every active linear perpetual."""
        return [
            symbol
            for symbol, market in (exchange.markets or {}).items()
            if market.get("swap") and market.get("linear") and market.get("active") is not False
        ]

    # --- the liquidation stream -------------------------------------------------------------

    @abstractmethod
    def classify_frame(self, message: object) -> FrameKind: ...

    def decode_binary(self, data: bytes) -> str:
        """The text of a binary frame (HTX gzips every frame); most venues send none."""
        del data
        raise ValueError("a binary frame")

    def reply(self, message: object) -> str | None:
        """What the native client sends back to a decoded frame: the answer to a venue's own
        ping (HTX, Deribit's ``test_request``); None for most frames."""
        del message
        return None

    @abstractmethod
    def split_frame(self, message: Any) -> Sequence[FrameItem]:
        """Every liquidation of a data frame, in order; an element that is not one becomes an
        InvalidEventError in its place (a frame whose container is wrong, one)."""

    @abstractmethod
    def parse_entry(self, entry: Any) -> RawLiquidation:
        """One entry's side, price, amount and time; raises InvalidEventError."""

    @abstractmethod
    def watch_calls(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[Callable[[], Coroutine[Any, Any, object]]]:
        """The ccxt.pro watch calls that together cover ``symbols`` (None: every market)."""

    def expected_acks(self, symbols: Sequence[str] | None) -> int:
        """Acknowledgements the ccxt.pro subscriptions of ``symbols`` bring."""
        del symbols  # one subscription for all, unless a venue says otherwise
        return 1

    @abstractmethod
    def native_subscriptions(self, market_ids: Sequence[str] | None) -> list[dict[str, Any]]:
        """The subscribe requests of the native client (each acknowledged once) for these
        markets (their venue ids; None: every market)."""

    @staticmethod
    def encode(request: Mapping[str, Any]) -> str:
        return json.dumps(request, separators=(",", ":"))

    # --- open interest ---------------------------------------------------------------------

    @abstractmethod
    async def read_open_interest(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[OpenInterestItem]:
        """Open interest and mark price of ``symbols`` (None: every market)."""

    def min_poll_interval(self, symbol_count: int) -> float:
        """The shortest poll interval that keeps within half the venue's REST budget."""
        del symbol_count  # venues that answer every market in one call have no per-symbol cost
        return 1.0

    # The ``ContextFields`` its open-interest readings carry (their ``context``): the market
    # context the venue publishes in the calls the poll makes. Empty: none.
    CONTEXT: ClassVar[frozenset[str]] = frozenset()
    # A funding interval the venue keeps for every market and states nowhere on the wire
    # (Deribit's continuous funding per 8 h, dYdX's and Kraken's hourly); None: read per market.
    FIXED_FUNDING_INTERVAL_S: ClassVar[float | None] = None

    # --- positioning (long/short ratios) ------------------------------------------------------

    # The ratios the venue publishes (empty: none, and no positioning poll runs) and the
    # statistics period asked for, as the ``period`` label shows it.
    POSITIONING: ClassVar[tuple[PositioningSource, ...]] = ()
    POSITIONING_PERIOD: ClassVar[str] = "5m"

    async def read_positioning(
        self, exchange: CcxtExchange, symbols: Sequence[str]
    ) -> list[PositioningItem]:
        """The latest ratio of each of ``POSITIONING`` for each of ``symbols``."""
        del exchange, symbols
        raise NotImplementedError(f"{self.name} publishes no long/short ratios")

    def min_positioning_interval(self, symbol_count: int) -> float:
        """The shortest positioning poll interval within half the venue's budget for them."""
        del symbol_count
        return 1.0
