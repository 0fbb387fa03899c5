"""What the metrics show of one coin's model: the emitted grid, clusters, at-risk USD, and the
model's "top" bins used to score it against realized liquidations."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from exporter.heatmap.grid import label_decimals
from exporter.heatmap.leverage import BAND_COUNT
from exporter.heatmap.model import LONG, SHORT, SUB, combine_bands

if TYPE_CHECKING:
    from exporter.events import Side
    from exporter.heatmap.model import CoinHeatmap

FloatArray = npt.NDArray[np.float64]
SIDE_NAMES: tuple[Side, Side] = ("long", "short")


@dataclass(frozen=True, slots=True)
class Cluster:
    side: Side
    rank: int
    price: float  # centre of the bin
    usd: float


class _Derived:
    """What a view computes from its coins on first use (a view never changes once built)."""

    __slots__ = ("at_risk", "banded", "clusters", "coins", "cumulative", "map_usd", "top", "usd")

    def __init__(self) -> None:
        self.banded: FloatArray | None = None
        self.coins: FloatArray | None = None
        self.map_usd: FloatArray | None = None
        self.cumulative: FloatArray | None = None
        self.usd: FloatArray | None = None
        self.clusters: tuple[Cluster, ...] | None = None
        self.at_risk: FloatArray | None = None
        self.top: dict[int, tuple[float, float]] = {}


@dataclass(frozen=True, slots=True, eq=False)
class CoinView:
    """One coin at one instant. ``usd[side, i]``: USD (coins x mark price) of estimated
    positions whose liquidation price lies in bin ``first_index + i`` of width ``step``.
    ``at_risk[side, k]``: USD liquidated by a move of ``moves[k]`` against that side.
    ``map_usd[side, band, i]``: the liquidation map, the same USD by leverage band in bins of
    ``map_step`` (``map_multiple`` bins), bin ``map_first + i``; ``cumulative[side, i]``: USD a
    move to that map bin would liquidate (longs: a fall to its lower edge; shorts: a rise to its
    upper edge). ``book_ratio[side]``: coins held by the side's positions / open interest.

    Building a view takes the model's state array (shared copy-on-write: the model copies it
    before its next change) and each market's scale; ``coins[side, j]`` (coins per fine
    bin ``j`` of the state array, whose bin 0 is fine bin ``base``) and from it ``usd``,
    ``clusters`` and ``at_risk`` are computed on first use. A scrape takes its views cheaply
    (no work per bin) and derives the figures while it renders.
    """

    coin: str
    price: float
    step: float
    first_index: int
    bin_count: int
    decimals: int
    moves: tuple[float, ...]
    top_fraction: float
    cluster_count: int
    state: FloatArray  # [market, side, band, j], stored coins: read only
    scales: FloatArray  # [market, side]
    base: int
    map_multiple: int
    map_first: int
    map_count: int
    open_interest: float  # coins, over the coin's markets
    _derived: _Derived = field(default_factory=_Derived, repr=False)

    @property
    def banded(self) -> FloatArray:
        """``[side, band, j]``: coins per fine bin and leverage band over all markets."""
        derived = self._derived
        if derived.banded is None:
            derived.banded = combine_bands(self.state, self.scales)
        return derived.banded

    @property
    def coins(self) -> FloatArray:
        derived = self._derived
        if derived.coins is None:
            derived.coins = self.banded.sum(axis=1)
        return derived.coins

    @property
    def map_step(self) -> float:
        return self.step * self.map_multiple

    @property
    def map_usd(self) -> FloatArray:
        derived = self._derived
        if derived.map_usd is None:
            width = SUB * self.map_multiple
            start = self.map_first * width - self.base
            stop = start + self.map_count * width
            chunks = self.banded[:, :, start:stop].reshape(2, BAND_COUNT, -1, width)
            derived.map_usd = chunks.sum(axis=3) * self.price
        return derived.map_usd

    @property
    def cumulative(self) -> FloatArray:
        derived = self._derived
        if derived.cumulative is None:
            width = SUB * self.map_multiple
            starts = (self.map_first + np.arange(self.map_count)) * width - self.base
            longs, shorts = self.coins
            # Longs at or above each bin's lower edge; shorts below each bin's upper edge, over
            # the whole state array (positions beyond the shown range count too).
            above = np.concatenate([np.cumsum(longs[::-1])[::-1], [0.0]])
            below = np.concatenate([[0.0], np.cumsum(shorts)])
            derived.cumulative = np.stack([above[starts], below[starts + width]]) * self.price
        return derived.cumulative

    @property
    def book_ratio(self) -> tuple[float, float]:
        """Each side's modelled coins over the open interest (0 while it is unknown)."""
        if not self.open_interest > 0:
            return (0.0, 0.0)
        totals = self.coins.sum(axis=1) / self.open_interest
        return (float(totals[LONG]), float(totals[SHORT]))

    @property
    def usd(self) -> FloatArray:
        derived = self._derived
        if derived.usd is None:
            start = self.first_index * SUB - self.base
            stop = (self.first_index + self.bin_count) * SUB - self.base
            derived.usd = self.coins[:, start:stop].reshape(2, -1, SUB).sum(axis=2) * self.price
        return derived.usd

    @property
    def clusters(self) -> tuple[Cluster, ...]:
        derived = self._derived
        if derived.clusters is None:
            derived.clusters = _clusters(
                self.usd, self.first_index, self.step, self.price, self.cluster_count
            )
        return derived.clusters

    @property
    def at_risk(self) -> FloatArray:
        derived = self._derived
        if derived.at_risk is None:
            derived.at_risk = _at_risk(self, self.moves)
        return derived.at_risk

    def fine_position(self, price: float) -> float:
        """``price`` in fine-bin coordinates of ``coins`` (fractional)."""
        return price / (self.step / SUB) - self.base

    def bin_of(self, price: float) -> int | None:
        """Index into ``usd`` of the bin holding ``price``; None outside the grid."""
        index = math.floor(price / self.step) - self.first_index
        return index if 0 <= index < self.bin_count else None

    def top_threshold(self, side: int) -> tuple[float, float]:
        """(smallest USD among the top bins, share of bins that are top) for ``side``."""
        cached = self._derived.top.get(side)
        if cached is None:
            values = self.usd[side]
            count = max(1, math.ceil(values.size * self.top_fraction))
            threshold = float(np.partition(values, values.size - count)[values.size - count])
            cached = self._derived.top[side] = (threshold, count / values.size)
        return cached

    def score(self, side: Side, price: float) -> tuple[bool, float]:
        """Did a liquidation at ``price`` fall in one of the model's top bins of its side?
        Also returns the share of bins a uniform guess would have to pick for the same odds."""
        side_index = LONG if side == "long" else SHORT
        threshold, share = self.top_threshold(side_index)
        index = self.bin_of(price)
        if index is None:
            return False, share
        value = float(self.usd[side_index, index])
        return value > 0 and value >= threshold, share


def build_view(heatmap: CoinHeatmap, price: float) -> CoinView:
    """The emitted grid around ``price``: contiguous bins, zeros included."""
    params = heatmap.params
    step = heatmap.step
    first = math.floor(price * (1 - params.range_fraction) / step)
    last = math.floor(price * (1 + params.range_fraction) / step)
    # Keep the grid inside the state array (it always is unless the range was configured
    # wider than the array holds).
    first = max(first, -(-heatmap.base // SUB))
    last = min(last, (heatmap.base + heatmap.bins) // SUB - 1)
    multiple = params.map_bin_multiple
    map_step = step * multiple
    map_first = max(
        math.floor(price * (1 - params.range_fraction) / map_step),
        -(-heatmap.base // (SUB * multiple)),
    )
    map_last = min(
        math.floor(price * (1 + params.range_fraction) / map_step),
        (heatmap.base + heatmap.bins) // (SUB * multiple) - 1,
    )
    open_interest = sum(b.open_interest or 0.0 for b in heatmap.markets.values())
    state, scales = heatmap.share()
    return CoinView(
        coin=heatmap.coin,
        price=price,
        step=step,
        first_index=first,
        bin_count=last + 1 - first,
        decimals=label_decimals(step),
        moves=params.at_risk_moves,
        top_fraction=params.top_fraction,
        cluster_count=params.clusters,
        state=state,
        scales=scales,
        base=heatmap.base,
        map_multiple=multiple,
        map_first=map_first,
        map_count=map_last + 1 - map_first,
        open_interest=open_interest,
    )


def _clusters(
    usd: FloatArray, first: int, step: float, price: float, count: int
) -> tuple[Cluster, ...]:
    """The ``count`` largest non-empty bins per side: long ones at or below the price (longs are
    liquidated on a fall), short ones at or above it."""
    edges = (first + np.arange(usd.shape[1])) * step
    result: list[Cluster] = []
    for side, mask in ((LONG, edges < price), (SHORT, edges + step > price)):
        values = np.where(mask, usd[side], 0.0)
        order = np.argsort(values)[::-1][:count]
        top = values[order]
        centres = (edges[order] + step / 2).tolist()
        name = SIDE_NAMES[side]
        for rank, (value, centre) in enumerate(zip(top.tolist(), centres, strict=True), start=1):
            if not value > 0:
                break  # sorted: every later value is zero too
            result.append(Cluster(name, rank, centre, value))
    return tuple(result)


def _at_risk(view: CoinView, moves: tuple[float, ...]) -> FloatArray:
    """USD liquidated if price moved by each of ``moves`` against each side.

    Within the fine bin where the move ends, positions count in proportion to the part of the
    bin crossed (uniform within a bin, a quarter of an emitted bin wide).
    """
    coins, price = view.coins, view.price
    bins = coins.shape[1]
    cumulative = np.concatenate([np.zeros((2, 1)), np.cumsum(coins, axis=1)], axis=1)
    longs, shorts = coins
    long_cumulative, short_cumulative = cumulative
    long_total = long_cumulative[bins]
    result = np.zeros((2, len(moves)))
    for k, move in enumerate(moves):
        # Longs at or above the fall's end: bins above it, plus part of the bin it ends in.
        x = min(max(view.fine_position(price * (1 - move)), 0.0), float(bins))
        j = min(math.floor(x), bins - 1)
        risk = long_total - long_cumulative[j + 1]
        result[LONG, k] = risk + (longs[j] * (j + 1 - x) if x < bins else 0.0)
        # Shorts at or below the rise's end.
        x = min(max(view.fine_position(price * (1 + move)), 0.0), float(bins))
        j = min(math.floor(x), bins - 1)
        if x >= bins:
            result[SHORT, k] = short_cumulative[bins]
        else:
            result[SHORT, k] = short_cumulative[j] + shorts[j] * (x - j)
    return result * price
