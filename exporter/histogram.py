"""Liquidation order size distribution, as a cumulative Prometheus histogram per key."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

import numpy as np
import numpy.typing as npt

K = TypeVar("K", bound=Hashable)

# Upper bounds in USD; +Inf is implicit. Decades from a retail stop-out to a whale.
SIZE_BUCKETS_USD: Final[tuple[float, ...]] = (100.0, 1e3, 1e4, 1e5, 1e6, 1e7)


@dataclass(frozen=True, slots=True)
class HistogramCounts(Generic[K]):
    """``cumulative[i, b]``: orders of ``keys[i]`` with size <= ``bounds[b]`` (last is +Inf)."""

    keys: tuple[K, ...]
    bounds: tuple[float, ...]
    cumulative: npt.NDArray[np.int64]
    sums: npt.NDArray[np.float64]


class SizeHistogram(Generic[K]):
    """Counts orders into fixed USD buckets; ``le`` semantics (a value on a bound counts in it)."""

    def __init__(self, bounds: Sequence[float] = SIZE_BUCKETS_USD) -> None:
        edges = np.asarray(bounds, dtype=np.float64)
        if edges.ndim != 1 or edges.size == 0 or np.any(np.diff(edges) <= 0):
            raise ValueError("bounds must be a non-empty, strictly increasing sequence")
        self._bounds = edges
        self._bound_list = edges.tolist()
        self._rows: dict[K, int] = {}
        # Per-event updates are plain Python (a numpy scalar update costs ~10x more);
        # counts() turns them into arrays once per scrape.
        self._counts: list[list[int]] = []
        self._sums: list[float] = []

    def observe(self, key: K, usd: float) -> None:
        row = self._rows.get(key)
        if row is None:
            row = len(self._rows)
            self._rows[key] = row
            self._counts.append([0] * (len(self._bound_list) + 1))
            self._sums.append(0.0)
        # bisect_left: the first bound >= usd, so usd == bound lands in that bound's bucket.
        self._counts[row][bisect_left(self._bound_list, usd)] += 1
        self._sums[row] += usd

    def counts(self) -> HistogramCounts[K]:
        bounds = (*self._bound_list, float("inf"))
        counts = np.array(self._counts, dtype=np.int64).reshape(-1, len(bounds))
        return HistogramCounts(
            tuple(self._rows),
            bounds,
            np.cumsum(counts, axis=1),
            np.array(self._sums, dtype=np.float64),
        )
