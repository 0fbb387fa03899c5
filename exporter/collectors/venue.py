"""The per-venue contract: everything a venue module says, and nothing it does.

A venue module (binance.py, bybit.py, okx.py) subclasses ``VenueAdapter`` with data (names,
URLs, limits, units) and small pure parsers: how a frame is classified, how a data frame splits
into entries and an entry reads, what to subscribe to (through ccxt.pro or natively), how open
interest is read. The loops that use them live once in stream.py, poll.py and backfill.py.
See docs/adding-a-venue.md.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar

from exporter.events import InvalidEventError

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping, Sequence

    from exporter.collectors.ccxt_types import CcxtExchange, Market
    from exporter.collectors.history import HistoryLimits
    from exporter.collectors.intake import FrameItem, RawLiquidation
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
class RawOpenInterest:
    """One market's open-interest reading, not yet read: ``read()`` raises InvalidEventError."""

    market: Market
    read: Callable[[], OpenInterestFields]


# What a venue's open-interest read yields per market: a reading, or why one is missing.
OpenInterestItem = RawOpenInterest | InvalidEventError


@dataclass(frozen=True, slots=True)
class NativeFeed:
    """The liquidation stream as the exporter's own WebSocket client speaks it.

    ``path`` is appended to the WebSocket root (``ws_url``, or ``default_root``).
    ``keepalive`` is an application-level ping sent every ``keepalive_seconds`` (the venue
    answers it with a frame); None means WebSocket ping frames at that interval instead.
    ``all_markets_channel``: one subscription covers every market; without one, ``symbols:
    all`` subscribes to each market by its id.
    """

    default_root: str
    path: str
    keepalive_seconds: float
    all_markets_channel: bool
    keepalive: str | None = None

    def url(self, ws_url: str | None) -> str:
        return (ws_url or self.default_root) + self.path


class VenueAdapter(ABC):
    """One venue: data and pure parsers, no loops and no I/O of its own."""

    name: ClassVar[Venue]
    ccxt_class: ClassVar[str]
    # Sizes in contracts (x contractSize coins; USD for inverse contracts), not coins (OKX).
    quantity_in_contracts: ClassVar[bool] = False
    # How the venue serves 5-minute open-interest history and candles (the heatmap backfill).
    HISTORY: ClassVar[HistoryLimits]
    NATIVE: ClassVar[NativeFeed]
    # Whether ccxt.pro streams this venue's liquidations; where not, the native client always.
    CCXT_STREAMS: ClassVar[bool] = True

    # --- connecting -----------------------------------------------------------------------

    @classmethod
    @abstractmethod
    def url_overrides(cls, rest_url: str | None, ws_url: str | None) -> dict[str, Any]:
        """ccxt ``urls`` entries that point the exchange at other roots (testnet, proxy, fake)."""

    @classmethod
    def ccxt_options(cls) -> dict[str, Any]:
        return {}

    def every_market(self, exchange: CcxtExchange) -> list[str]:
        """What ``symbols: all`` covers: every active linear perpetual."""
        return [
            symbol
            for symbol, market in (exchange.markets or {}).items()
            if market.get("swap") and market.get("linear") and market.get("active") is not False
        ]

    # --- the liquidation stream -------------------------------------------------------------

    @abstractmethod
    def classify_frame(self, message: object) -> FrameKind: ...

    @abstractmethod
    def split_frame(self, message: Mapping[str, Any]) -> Sequence[FrameItem]:
        """Every liquidation of a data frame, in order; an element that is not one becomes an
        InvalidEventError in its place (a frame whose container is wrong, one)."""

    @abstractmethod
    def parse_entry(self, entry: Mapping[str, Any]) -> RawLiquidation:
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
