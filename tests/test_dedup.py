"""The de-duplication window: same liquidation once, memory bounded by count and by time."""

from __future__ import annotations

from exporter.dedup import RecentLiquidations
from tests.conftest import FakeClock, make_liquidation


def test_a_repeated_liquidation_is_a_duplicate(clock: FakeClock) -> None:
    recent = RecentLiquidations()
    event = make_liquidation(clock)
    assert not recent.is_duplicate(event)
    assert recent.is_duplicate(make_liquidation(clock))  # equal fields: the same liquidation
    assert not recent.is_duplicate(make_liquidation(clock, side="short"))
    assert not recent.is_duplicate(make_liquidation(clock, price=80_000.1))
    assert not recent.is_duplicate(make_liquidation(clock, exchange="okx"))


def test_memory_is_bounded_by_count_and_time(clock: FakeClock) -> None:
    recent = RecentLiquidations(capacity=100, horizon_ms=60_000)
    start = int(clock.now * 1000)
    for i in range(1000):
        recent.is_duplicate(make_liquidation(clock, timestamp_ms=start + i))
    assert len(recent) == 100
    late = make_liquidation(clock, timestamp_ms=start + 61_000 + 999)
    recent.is_duplicate(late)
    assert len(recent) == 1  # everything more than a minute older than the newest is forgotten
    assert recent.is_duplicate(late)
