"""Liquidation order size distribution, as a cumulative Prometheus histogram per key."""

from __future__ import annotations

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
        self._rows: dict[K, int] = {}
        self._counts = np.zeros((0, edges.size + 1), dtype=np.int64)
        self._sums = np.zeros(0, dtype=np.float64)

    def observe(self, key: K, usd: float) -> None:
        row = self._rows.get(key)
        if row is None:
            row = len(self._rows)
            self._rows[key] = row
            self._counts = np.vstack([self._counts, np.zeros((1, self._counts.shape[1]), np.int64)])
            self._sums = np.append(self._sums, 0.0)
        # side="left": the first bound >= usd, so usd == bound lands in that bound's bucket.
        self._counts[row, int(np.searchsorted(self._bounds, usd, side="left"))] += 1
        self._sums[row] += usd

    def counts(self) -> HistogramCounts[K]:
        bounds = (*self._bounds.tolist(), float("inf"))
        return HistogramCounts(
            tuple(self._rows), bounds, np.cumsum(self._counts, axis=1), self._sums.copy()
        )
