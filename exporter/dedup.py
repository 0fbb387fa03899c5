"""A bounded memory of recent liquidations, so frames re-sent after a reconnect count once.

Two genuine liquidations with the same exchange, symbol, millisecond, side, price and quantity
do not happen; the same frame delivered twice (a venue replaying its last push on resubscribe,
or two overlapping connections) does.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exporter.events import Liquidation

DedupKey = tuple[str, str, int, str, float, float]


class RecentLiquidations:
    """Remembers at most ``capacity`` liquidations and none older than ``horizon_ms``."""

    def __init__(self, capacity: int = 5_000, horizon_ms: int = 15 * 60_000) -> None:
        self._capacity = capacity
        self._horizon_ms = horizon_ms
        self._seen: OrderedDict[DedupKey, int] = OrderedDict()  # key -> exchange time ms

    def __len__(self) -> int:
        return len(self._seen)

    def is_duplicate(self, event: Liquidation) -> bool:
        """True when this liquidation was seen before; otherwise remember it."""
        key = (
            event.exchange,
            event.symbol,
            event.timestamp_ms,
            event.side,
            event.price,
            event.quantity,
        )
        if key in self._seen:
            return True
        self._seen[key] = event.timestamp_ms
        oldest_allowed = event.timestamp_ms - self._horizon_ms
        while self._seen and (
            len(self._seen) > self._capacity or next(iter(self._seen.values())) < oldest_allowed
        ):
            self._seen.popitem(last=False)
        return False
