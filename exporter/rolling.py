"""Rolling liquidation totals over 5m, 1h, 4h, 12h and 24h windows.

Each key (exchange, symbol, coin, side) owns one row of fixed-size numpy ring buffers of time
buckets, so memory depends on the number of keys, never on the event rate. Two tiers keep memory
small: 10-second buckets for the 5m and 1h windows, 60-second buckets for 4h, 12h and 24h (a 24h
window in 10 s buckets would cost 4.8x more memory for no visible difference).

Window semantics (what the brute-force test recomputes): at time ``now`` a window of ``n``
buckets of ``b`` seconds holds the events whose bucket ``floor(t / b)`` lies in
``(floor(now / b) - n, floor(now / b)]``. The newest bucket is partial, so a window spans between
``(n - 1) * b`` and ``n * b`` seconds. An event stamped in the future counts in the current
bucket; one older than the longest horizon is dropped and counted.

Per event: O(1) (one bucket and one running sum per window). Per query: O(1) for USD and order
counts (running sums); the largest order is a vectorised max over the window's buckets, across
all keys at once. USD is accumulated as integer milli-USD so running sums never drift.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

import numpy as np
import numpy.typing as npt

K = TypeVar("K", bound=Hashable)

# Integer units for USD sums: 1e-3 USD, exact to the tenth of a cent, overflow-free below 9e15 USD.
USD_SCALE: Final = 1000
INITIAL_ROWS: Final = 16


@dataclass(frozen=True, slots=True)
class Window:
    """One reported window: label value, length in seconds and the bucket size it is read from."""

    name: str
    seconds: int
    bucket_seconds: int

    @property
    def buckets(self) -> int:
        return self.seconds // self.bucket_seconds


def default_windows(
    fine_bucket_seconds: int = 10, coarse_bucket_seconds: int = 60
) -> tuple[Window, ...]:
    """The windows of the metric contract: label values 5m, 1h, 4h, 12h, 24h."""
    return (
        Window("5m", 300, fine_bucket_seconds),
        Window("1h", 3600, fine_bucket_seconds),
        Window("4h", 4 * 3600, coarse_bucket_seconds),
        Window("12h", 12 * 3600, coarse_bucket_seconds),
        Window("24h", 24 * 3600, coarse_bucket_seconds),
    )


class _Tier:
    """Ring buffers of one bucket size, shared by the windows that read from it.

    ``usd[row, slot]``: milli-USD (int64); ``orders[row, slot]``: count (int64);
    ``largest[row, slot]``: USD of the largest order (float64); slot = bucket % slots.
    ``sums_usd[row, w]`` / ``sums_orders[row, w]``: running totals of window ``w`` of this tier.
    """

    def __init__(self, bucket_seconds: int, window_buckets: Sequence[int], rows: int) -> None:
        self.bucket_seconds = bucket_seconds
        self.window_buckets = np.asarray(window_buckets, dtype=np.int64)
        self.slots = int(self.window_buckets.max())
        self.current: int | None = None
        self.usd = np.zeros((rows, self.slots), dtype=np.int64)
        self.orders = np.zeros((rows, self.slots), dtype=np.int64)
        self.largest = np.zeros((rows, self.slots), dtype=np.float64)
        self.sums_usd = np.zeros((rows, len(window_buckets)), dtype=np.int64)
        self.sums_orders = np.zeros((rows, len(window_buckets)), dtype=np.int64)

    def grow(self, rows: int) -> None:
        for name in ("usd", "orders", "largest", "sums_usd", "sums_orders"):
            old: npt.NDArray[np.generic] = getattr(self, name)
            new = np.zeros((rows, old.shape[1]), dtype=old.dtype)
            new[: old.shape[0]] = old
            setattr(self, name, new)

    def advance(self, bucket: int) -> None:
        """Move the newest bucket forward, expiring what leaves each window."""
        if self.current is None:
            self.current = bucket
            return
        if bucket <= self.current:
            return
        if bucket - self.current >= self.slots:
            for array in (self.usd, self.orders, self.largest, self.sums_usd, self.sums_orders):
                array.fill(0)
            self.current = bucket
            return
        for new_bucket in range(self.current + 1, bucket + 1):
            leaving = (new_bucket - self.window_buckets) % self.slots
            self.sums_usd -= self.usd[:, leaving]
            self.sums_orders -= self.orders[:, leaving]
            slot = new_bucket % self.slots
            self.usd[:, slot] = 0
            self.orders[:, slot] = 0
            self.largest[:, slot] = 0.0
        self.current = bucket

    def accepts(self, bucket: int) -> bool:
        """Whether ``bucket`` is still inside this tier's ring (future buckets count as now)."""
        return self.current is not None and self.current - bucket < self.slots

    def add(self, row: int, bucket: int, usd_units: int, usd: float) -> None:
        """Count one order in ``bucket``, which ``accepts`` has admitted."""
        assert self.current is not None  # noqa: S101 - advance() always runs first
        bucket = min(bucket, self.current)
        age = self.current - bucket
        slot = bucket % self.slots
        self.usd[row, slot] += usd_units
        self.orders[row, slot] += 1
        self.largest[row, slot] = max(self.largest[row, slot], usd)
        inside = age < self.window_buckets
        self.sums_usd[row, inside] += usd_units
        self.sums_orders[row, inside] += 1

    def largest_per_window(self, rows: int) -> npt.NDArray[np.float64]:
        """``[row, w]``: USD of the largest order in window ``w`` of this tier."""
        result = np.zeros((rows, len(self.window_buckets)), dtype=np.float64)
        if self.current is None or rows == 0:
            return result
        for w, n in enumerate(self.window_buckets):
            slots = (self.current - np.arange(n)) % self.slots
            result[:, w] = self.largest[:rows, slots].max(axis=1)
        return result


@dataclass(frozen=True, slots=True)
class WindowTotals(Generic[K]):
    """A consistent copy of every key's window totals.

    ``usd[i, w]`` (USD), ``orders[i, w]`` (count) and ``largest[i, w]`` (USD) belong to
    ``keys[i]`` and ``windows[w]``.
    """

    keys: tuple[K, ...]
    windows: tuple[Window, ...]
    usd: npt.NDArray[np.float64]
    orders: npt.NDArray[np.int64]
    largest: npt.NDArray[np.float64]


class RollingTotals(Generic[K]):
    """Windowed USD totals, order counts and largest orders per key, against an injected clock."""

    def __init__(
        self,
        clock: Callable[[], float],
        windows: Sequence[Window] | None = None,
    ) -> None:
        self._clock = clock
        self.windows = tuple(windows if windows is not None else default_windows())
        if not self.windows:
            raise ValueError("at least one window is required")
        for window in self.windows:
            if window.seconds % window.bucket_seconds or window.buckets < 1:
                raise ValueError(f"window {window.name} is not a whole number of buckets")
        self._rows: dict[K, int] = {}
        self._keys: list[K] = []
        self._capacity = INITIAL_ROWS
        bucket_sizes = sorted({w.bucket_seconds for w in self.windows})
        # (tier, indices of self.windows it serves), in tier order.
        self._tiers: list[tuple[_Tier, list[int]]] = []
        for size in bucket_sizes:
            served = [i for i, w in enumerate(self.windows) if w.bucket_seconds == size]
            tier = _Tier(size, [self.windows[i].buckets for i in served], self._capacity)
            self._tiers.append((tier, served))
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def horizon_seconds(self) -> int:
        """Events older than this (relative to the clock) are dropped."""
        return max(t.slots * t.bucket_seconds for t, _ in self._tiers)

    def _advance(self) -> float:
        now = self._clock()
        for tier, _ in self._tiers:
            tier.advance(int(now // tier.bucket_seconds))
        return now

    def _row(self, key: K) -> int:
        row = self._rows.get(key)
        if row is None:
            row = len(self._keys)
            if row == self._capacity:
                self._capacity *= 2
                for tier, _ in self._tiers:
                    tier.grow(self._capacity)
            self._rows[key] = row
            self._keys.append(key)
        return row

    def add(self, key: K, timestamp_s: float, usd: float) -> bool:
        """Count one order of ``usd`` at ``timestamp_s``; False (and counted) when too old."""
        self._advance()
        buckets = [int(timestamp_s // tier.bucket_seconds) for tier, _ in self._tiers]
        if not any(tier.accepts(b) for (tier, _), b in zip(self._tiers, buckets, strict=True)):
            self.dropped += 1
            return False
        row = self._row(key)
        usd_units = round(usd * USD_SCALE)
        for (tier, _), bucket in zip(self._tiers, buckets, strict=True):
            if tier.accepts(bucket):
                tier.add(row, bucket, usd_units, usd)
        return True

    def totals(self) -> WindowTotals[K]:
        """Window totals of every key as of the clock's now."""
        self._advance()
        rows = len(self._keys)
        usd = np.zeros((rows, len(self.windows)), dtype=np.float64)
        orders = np.zeros((rows, len(self.windows)), dtype=np.int64)
        largest = np.zeros((rows, len(self.windows)), dtype=np.float64)
        for tier, served in self._tiers:
            usd[:, served] = tier.sums_usd[:rows] / USD_SCALE
            orders[:, served] = tier.sums_orders[:rows]
            largest[:, served] = tier.largest_per_window(rows)
        return WindowTotals(tuple(self._keys), self.windows, usd, orders, largest)
