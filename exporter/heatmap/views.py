"""What the metrics show of one coin's model: the emitted grid, clusters, at-risk USD, and the
model's "top" bins used to score it against realized liquidations."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from exporter.heatmap.grid import SUB, cell_of, label_decimals, window_bounds
from exporter.heatmap.leverage import BAND_COUNT
from exporter.heatmap.model import LONG, SHORT, combine_bands

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

    __slots__ = (
        "at_risk",
        "clusters",
        "coins",
        "cumulative",
        "map_usd",
        "per_market",
        "top",
        "usd",
        "usd_by_bin",
    )

    def __init__(self) -> None:
        self.per_market: FloatArray | None = None
        self.coins: FloatArray | None = None
        self.usd_by_bin: FloatArray | None = None
        self.map_usd: FloatArray | None = None
        self.cumulative: FloatArray | None = None
        self.usd: FloatArray | None = None
        self.clusters: tuple[Cluster, ...] | None = None
        self.at_risk: FloatArray | None = None
        self.top: dict[int, tuple[float, float]] = {}


@dataclass(frozen=True, slots=True, eq=False)
class CoinView:
    """One coin at one instant. ``usd[side, i]``: USD (each market's coins x that market's
    mark price) of estimated positions whose liquidation price lies in bin ``first_index + i``
    of width ``step``. Every USD figure is a sum over markets of what each market alone gives
    (its own coins, its own price), so replicas holding different markets add up to it.
    ``at_risk[side, k]``: USD liquidated by a move of ``moves[k]`` against that side (of each
    market's own mark price).
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
    prices: FloatArray  # [market]: each market's mark price at its last reading
    base: int
    map_multiple: int
    map_first: int
    map_count: int
    open_interest: float  # coins, over the coin's markets
    _derived: _Derived = field(default_factory=_Derived, repr=False)

    @property
    def usd_scales(self) -> FloatArray:
        """``[market, side]``: what turns a market's stored coins into USD at its own price."""
        scaled: FloatArray = self.scales * self.prices[:, None]
        return scaled

    @property
    def per_market(self) -> FloatArray:
        """``[market, side, j]``: stored coins per fine bin over the bands: the one pass over
        the whole state array that the figures below share."""
        derived = self._derived
        if derived.per_market is None:
            derived.per_market = self.state.sum(axis=2)
        return derived.per_market

    @property
    def coins(self) -> FloatArray:
        """``[side, j]``: coins per fine bin over all markets and bands."""
        derived = self._derived
        if derived.coins is None:
            derived.coins = np.einsum("msj,ms->sj", self.per_market, self.scales)
        return derived.coins

    @property
    def positions(self) -> FloatArray:
        """``[side]``: coins held by each side's modelled positions over all markets."""
        totals: FloatArray = (self.per_market.sum(axis=2) * self.scales).sum(axis=0)
        return totals

    @property
    def usd_by_bin(self) -> FloatArray:
        """``[side, j]``: USD per fine bin over all markets and bands."""
        derived = self._derived
        if derived.usd_by_bin is None:
            derived.usd_by_bin = np.einsum("msj,ms->sj", self.per_market, self.usd_scales)
        return derived.usd_by_bin

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
            # By band: a pass over the map's range of the state array only.
            banded = combine_bands(self.state[..., start:stop], self.usd_scales)
            derived.map_usd = banded.reshape(2, BAND_COUNT, -1, width).sum(axis=3)
        return derived.map_usd

    @property
    def cumulative(self) -> FloatArray:
        derived = self._derived
        if derived.cumulative is None:
            width = SUB * self.map_multiple
            starts = (self.map_first + np.arange(self.map_count)) * width - self.base
            longs, shorts = self.usd_by_bin
            # Longs at or above each bin's lower edge; shorts below each bin's upper edge, over
            # the whole state array (positions beyond the shown range count too).
            above = np.concatenate([np.cumsum(longs[::-1])[::-1], [0.0]])
            below = np.concatenate([[0.0], np.cumsum(shorts)])
            derived.cumulative = np.stack([above[starts], below[starts + width]])
        return derived.cumulative

    @property
    def book_ratio(self) -> tuple[float, float]:
        """Each side's modelled coins over the open interest (0 while it is unknown)."""
        if not self.open_interest > 0:
            return (0.0, 0.0)
        totals = self.positions / self.open_interest
        return (float(totals[LONG]), float(totals[SHORT]))

    @property
    def usd(self) -> FloatArray:
        derived = self._derived
        if derived.usd is None:
            start = self.first_index * SUB - self.base
            stop = (self.first_index + self.bin_count) * SUB - self.base
            derived.usd = self.usd_by_bin[:, start:stop].reshape(2, -1, SUB).sum(axis=2)
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
    """The emitted grid around the lattice cell of ``price`` (grid.py), the coin's mark price
    now: contiguous bins, zeros included; clusters take their sides from ``price`` too."""
    params = heatmap.params
    step = heatmap.step
    low, high = window_bounds(cell_of(price), params.range_fraction)
    first = math.floor(low / step)
    last = math.floor(high / step)
    # Keep the grid inside the state array (it always is unless the range was configured
    # wider than the array holds).
    first = max(first, -(-heatmap.base // SUB))
    last = min(last, (heatmap.base + heatmap.bins) // SUB - 1)
    multiple = params.map_bin_multiple
    map_step = step * multiple
    map_first = max(math.floor(low / map_step), -(-heatmap.base // (SUB * multiple)))
    map_last = min(
        math.floor(high / map_step), (heatmap.base + heatmap.bins) // (SUB * multiple) - 1
    )
    open_interest = sum(b.open_interest or 0.0 for b in heatmap.markets.values())
    state, scales = heatmap.share()
    # A market without a reading yet holds nothing; its price is never used.
    prices = np.array([b.price or 0.0 for b in heatmap.markets.values()], dtype=np.float64)
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
        prices=prices,
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
    """USD liquidated if each market's price moved by each of ``moves`` against each side.

    Each market moves from its own mark price, so the figure is a sum over markets. Within the
    fine bin where the move ends, positions count in proportion to the part of the bin crossed
    (uniform within a bin, a quarter of an emitted bin wide). Vectorised over markets and moves.
    """
    if view.state.shape[0] == 0:
        return np.zeros((2, len(moves)))
    # [market, side, j]: USD per fine bin, and its running sum from bin 0 (a leading zero).
    usd = view.per_market * view.usd_scales[:, :, None]
    bins = usd.shape[2]
    cumulative = np.concatenate([np.zeros((*usd.shape[:2], 1)), np.cumsum(usd, axis=2)], axis=2)
    rows = np.arange(usd.shape[0])[:, None]  # [market, 1]: broadcast over the moves
    fine = view.step / SUB
    factors = np.asarray(moves, dtype=np.float64)[None, :]
    prices = view.prices[:, None]
    # Longs at or above each fall's end: bins above it, plus part of the bin it ends in.
    x = np.clip(prices * (1 - factors) / fine - view.base, 0.0, float(bins))
    j = np.minimum(np.floor(x).astype(np.intp), bins - 1)
    longs = cumulative[rows, LONG, bins] - cumulative[rows, LONG, j + 1]
    longs += np.where(x < bins, usd[rows, LONG, j] * (j + 1 - x), 0.0)
    # Shorts at or below each rise's end.
    x = np.clip(prices * (1 + factors) / fine - view.base, 0.0, float(bins))
    j = np.minimum(np.floor(x).astype(np.intp), bins - 1)
    shorts = np.where(
        x >= bins,
        cumulative[rows, SHORT, bins],
        cumulative[rows, SHORT, j] + usd[rows, SHORT, j] * (x - j),
    )
    result: FloatArray = np.stack([longs.sum(axis=0), shorts.sum(axis=0)])
    return result
