"""Liquidation order size distribution, as a cumulative Prometheus histogram per key, with the
latest sizeable order of each bucket kept as its exemplar (the live liquidation feed)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

K = TypeVar("K", bound=Hashable)

# Upper bounds in USD; +Inf is implicit. Decades from a retail stop-out to a whale.
SIZE_BUCKETS_USD: Final[tuple[float, ...]] = (100.0, 1e3, 1e4, 1e5, 1e6, 1e7)


class Exemplar(NamedTuple):
    """One observation shown beside its bucket: label pairs sorted by name, the observed value
    and its Unix time in seconds (OpenMetrics exemplars)."""

    labels: tuple[tuple[str, str], ...]
    value: float
    timestamp_s: float


@dataclass(frozen=True, slots=True)
class HistogramCounts(Generic[K]):
    """``cumulative[i, b]``: orders of ``keys[i]`` with size <= ``bounds[b]`` (last is +Inf);
    ``exemplars[i][b]``: the latest exemplar observed into bucket ``b`` of ``keys[i]``, if any."""

    keys: tuple[K, ...]
    bounds: tuple[float, ...]
    cumulative: npt.NDArray[np.int64]
    sums: npt.NDArray[np.float64]
    exemplars: tuple[tuple[Exemplar | None, ...], ...] = ()


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
        self._exemplars: list[list[Exemplar | None]] = []

    def observe(self, key: K, usd: float, exemplar: Exemplar | None = None) -> None:
        """Count ``usd`` in its bucket; ``exemplar`` replaces that bucket's exemplar unless that
        one is newer."""
        row = self._rows.get(key)
        if row is None:
            row = len(self._rows)
            self._rows[key] = row
            self._counts.append([0] * (len(self._bound_list) + 1))
            self._sums.append(0.0)
            self._exemplars.append([None] * (len(self._bound_list) + 1))
        # bisect_left: the first bound >= usd, so usd == bound lands in that bound's bucket.
        bucket = bisect_left(self._bound_list, usd)
        self._counts[row][bucket] += 1
        self._sums[row] += usd
        if exemplar is not None:
            current = self._exemplars[row][bucket]
            # Never an older one over a newer (two feeds of one exchange interleave): Prometheus
            # would drop it as out of order, and the newer one would be gone.
            if current is None or exemplar.timestamp_s >= current.timestamp_s:
                self._exemplars[row][bucket] = exemplar

    def counts(self) -> HistogramCounts[K]:
        bounds = (*self._bound_list, float("inf"))
        counts = np.array(self._counts, dtype=np.int64).reshape(-1, len(bounds))
        return HistogramCounts(
            tuple(self._rows),
            bounds,
            np.cumsum(counts, axis=1),
            np.array(self._sums, dtype=np.float64),
            tuple(map(tuple, self._exemplars)),
        )
