"""Rolling windows against a brute-force recomputation over randomized event streams."""

from __future__ import annotations

import random

import numpy as np
import pytest

from exporter.rolling import USD_SCALE, RollingTotals, Window, default_windows


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def brute_force(
    accepted: list[tuple[str, float, float, float]], now: float, window: Window
) -> dict[str, tuple[int, int, float]]:
    """(milli-USD, orders, largest) per key, straight from the window definition."""
    b, n = window.bucket_seconds, window.buckets
    newest = int(now // b)
    out: dict[str, tuple[int, int, float]] = {}
    for key, ts, usd, arrived in accepted:
        bucket = min(int(ts // b), int(arrived // b))  # a future stamp counts when it arrived
        if newest - n < bucket <= newest:
            units, orders, largest = out.get(key, (0, 0, 0.0))
            out[key] = (units + round(usd * USD_SCALE), orders + 1, max(largest, usd))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_windows_equal_brute_force_over_random_stream(seed: int) -> None:
    rng = random.Random(seed)
    clock = FakeClock(1_780_000_000.0 + rng.random() * 100)
    rolling: RollingTotals[str] = RollingTotals(clock)
    horizon = rolling.horizon_seconds
    keys = ["a", "b", "c", "d"]
    edges = [w.seconds for w in default_windows()]
    accepted: list[tuple[str, float, float, float]] = []
    dropped = 0
    for step in range(2500):
        # Mostly small steps, sometimes long gaps that expire whole windows.
        clock.now += rng.choice([0.0, 0.3, 1.7, 9.0, 45.0, 600.0, 3700.0, 20_000.0])
        key = rng.choice(keys)
        lateness = rng.choice(
            [
                0.0,
                2.0,
                -30.0,  # exchange clock ahead of ours
                rng.uniform(0, horizon * 1.05),
                rng.choice(edges) + rng.uniform(-15, 15),  # right at a window's edge
            ]
        )
        ts = clock.now - lateness - rng.random()
        usd = round(rng.lognormvariate(8, 2.5), 3)
        if rolling.add(key, ts, usd):
            accepted.append((key, ts, usd, clock.now))
        else:
            dropped += 1
            assert clock.now - ts > 3600  # only events older than every ring are dropped
        if step % 125 == 0:
            check(rolling, accepted, clock.now)
    check(rolling, accepted, clock.now)
    assert rolling.dropped == dropped > 0


def check(
    rolling: RollingTotals[str], accepted: list[tuple[str, float, float, float]], now: float
) -> None:
    totals = rolling.totals()
    for w, window in enumerate(totals.windows):
        expected = brute_force(accepted, now, window)
        for i, key in enumerate(totals.keys):
            units, orders, largest = expected.get(key, (0, 0, 0.0))
            assert round(totals.usd[i, w] * USD_SCALE) == units, (key, window.name)
            assert totals.orders[i, w] == orders, (key, window.name)
            assert totals.largest[i, w] == largest, (key, window.name)


def test_window_edges_and_expiry() -> None:
    clock = FakeClock(10_000.0)
    rolling: RollingTotals[str] = RollingTotals(clock)
    rolling.add("k", 10_000.0, 100.0)
    clock.now = 10_000.0 + 299.0  # same 5m window: bucket 1000 is in (1029 - 30, 1029]
    assert rolling.totals().usd[0, 0] == 100.0
    clock.now = 10_300.0  # bucket 1030: 1000 leaves the 5m window
    totals = rolling.totals()
    assert totals.usd[0].tolist() == [0.0, 100.0, 100.0, 100.0, 100.0]
    assert totals.largest[0].tolist() == [0.0, 100.0, 100.0, 100.0, 100.0]
    clock.now += 24 * 3600
    totals = rolling.totals()
    assert totals.usd[0].tolist() == [0.0] * 5
    assert totals.orders[0].tolist() == [0] * 5


def test_late_event_lands_in_its_own_bucket() -> None:
    clock = FakeClock(100_000.0)
    rolling: RollingTotals[str] = RollingTotals(clock)
    rolling.add("k", 100_000.0 - 2 * 3600, 50.0)  # two hours late: 4h/12h/24h only
    totals = rolling.totals()
    assert totals.usd[0].tolist() == [0.0, 0.0, 50.0, 50.0, 50.0]
    assert rolling.add("k", 100_000.0 - 25 * 3600, 1.0) is False
    assert rolling.dropped == 1


def test_memory_is_independent_of_event_rate() -> None:
    clock = FakeClock(1_000.0)
    rolling: RollingTotals[int] = RollingTotals(clock)
    rolling.add(0, 1_000.0, 1.0)
    size_before = sum(t.usd.nbytes for t, _ in rolling._tiers)
    for i in range(50_000):
        rolling.add(0, 1_000.0 + i * 0.01, 1.0)
    assert sum(t.usd.nbytes for t, _ in rolling._tiers) == size_before
    assert int(rolling.totals().orders[0, 0]) == 50_001


def test_windows_of_the_contract() -> None:
    assert [w.name for w in default_windows()] == ["5m", "1h", "4h", "12h", "24h"]
    with pytest.raises(ValueError, match="whole number"):
        RollingTotals(FakeClock(0.0), [Window("7s", 7, 10)])
    assert np.all(np.diff([w.seconds for w in default_windows()]) > 0)
