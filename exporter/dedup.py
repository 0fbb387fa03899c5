"""A bounded memory of recent liquidations, so frames re-sent after a reconnect count once.

The key of a liquidation is (symbol, exchange time in ms, side, price, quantity, occurrence),
per exchange, where ``occurrence`` is how many identical entries came before it in the SAME
frame. Two identical entries inside one frame are two fills and both count; the same frame
delivered twice (a venue replaying its last push on resubscribe, or two overlapping
connections) yields the same keys and counts once. Two identical liquidations in different
frames are taken as one re-sent: on a venue that stamps milliseconds that does not happen.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exporter.events import Liquidation

# (symbol, exchange time ms, side, price, quantity)
EntryKey = tuple[str, int, str, float, float, str | None]

# Over the largest single frame seen (Bybit, ~14,000 entries in a cascade), so a re-sent frame
# of that size is still recognised whole. Keys are kept as 64-bit hashes: ~100 bytes each.
CAPACITY = 50_000
# A venue re-sends its latest push on resubscribe, seconds after the drop; five minutes of
# exchange time covers a slow reconnect and bounds the memory at high rates.
HORIZON_MS = 5 * 60_000


def entry_key(event: Liquidation, entry_id: str | None = None) -> EntryKey:
    """What identifies a liquidation within one exchange (before its occurrence in a frame):
    its fields, and the venue's id of the trade or position where the venue states one (two
    fills alike in every field but their trade id are two liquidations)."""
    return (event.symbol, event.timestamp_ms, event.side, event.price, event.quantity, entry_id)


class RecentLiquidations:
    """Remembers at most ``capacity`` liquidations and none older than ``horizon_ms``."""

    def __init__(self, capacity: int = CAPACITY, horizon_ms: int = HORIZON_MS) -> None:
        self._capacity = capacity
        self._horizon_ms = horizon_ms
        self._seen: OrderedDict[int, int] = OrderedDict()  # hash of the key -> exchange time ms

    def __len__(self) -> int:
        return len(self._seen)

    def is_duplicate(self, key: EntryKey, occurrence: int, timestamp_ms: int) -> bool:
        """True when this liquidation was seen before; otherwise remember it.

        A hash collision (about 1 in 2**64 per pair) would skip one liquidation as a duplicate.
        """
        digest = hash((key, occurrence))
        if digest in self._seen:
            return True
        self._seen[digest] = timestamp_ms
        oldest_allowed = timestamp_ms - self._horizon_ms
        seen = self._seen
        while len(seen) > self._capacity or next(iter(seen.values())) < oldest_allowed:
            seen.popitem(last=False)
        return False
