"""Where a collector's events go (the core, or a test's recorder)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from exporter.events import (
        Liquidation,
        LongShortRatio,
        MarketContext,
        MarketHistory,
        OpenInterest,
    )


class EventSink(Protocol):
    def record_liquidation(self, event: Liquidation) -> None: ...

    def record_open_interest(self, event: OpenInterest) -> None: ...

    def record_market_context(self, event: MarketContext) -> None: ...

    def record_long_short(self, event: LongShortRatio) -> None: ...

    def wants_history(self, coin: str) -> bool | None:
        """Whether the coin's history is wanted (False: skip it, no request spent; None: not
        known yet, ask again shortly)."""
        ...

    def expect_history(self, exchange: str, symbol: str, coin: str) -> None:
        """A backfill of this market is under way: its live readings wait for its past."""
        ...

    def record_history(self, history: MarketHistory) -> None: ...

    def end_history(self, exchange: str, symbol: str) -> None:
        """No (more) history is coming for this market: live readings go straight in."""
        ...
