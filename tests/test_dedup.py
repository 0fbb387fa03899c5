"""The de-duplication window: same liquidation once, memory bounded by count and by time."""

from __future__ import annotations

from typing import Any

from exporter.dedup import RecentLiquidations, entry_key
from tests.conftest import FakeClock, make_liquidation


def seen_before(
    recent: RecentLiquidations, clock: FakeClock, occurrence: int = 0, **kw: Any
) -> bool:
    event = make_liquidation(clock, **kw)
    return recent.is_duplicate(entry_key(event), occurrence, event.timestamp_ms)


def test_a_repeated_liquidation_is_a_duplicate(clock: FakeClock) -> None:
    recent = RecentLiquidations()
    assert not seen_before(recent, clock)
    assert seen_before(recent, clock)  # equal fields: the same liquidation
    assert not seen_before(recent, clock, side="short")
    assert not seen_before(recent, clock, price=80_000.1)
    assert not seen_before(recent, clock, quantity=0.25)
    assert not seen_before(recent, clock, symbol="ETH/USDT:USDT", coin="ETH")


def test_identical_entries_of_one_frame_are_told_apart_by_occurrence(clock: FakeClock) -> None:
    recent = RecentLiquidations()
    # One frame with the same fill twice: both count.
    assert not seen_before(recent, clock, occurrence=0)
    assert not seen_before(recent, clock, occurrence=1)
    # The same frame re-sent after a reconnect: both skipped.
    assert seen_before(recent, clock, occurrence=0)
    assert seen_before(recent, clock, occurrence=1)


def test_memory_is_bounded_by_count_and_time(clock: FakeClock) -> None:
    recent = RecentLiquidations(capacity=100, horizon_ms=60_000)
    start = int(clock.now * 1000)
    for i in range(1000):
        seen_before(recent, clock, timestamp_ms=start + i)
    assert len(recent) == 100
    late = start + 61_000 + 999
    seen_before(recent, clock, timestamp_ms=late)
    assert len(recent) == 1  # everything more than a minute older than the newest is forgotten
    assert seen_before(recent, clock, timestamp_ms=late)
