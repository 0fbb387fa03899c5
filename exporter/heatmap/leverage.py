"""Where new positions' liquidation prices lie relative to their entry price: the leverage
assumption of the model turned into what an opening adds to each price bin, per leverage band.

Two forms. ``lognormal`` (the default) is a density over leverage; its cumulative distribution,
mapped through the liquidation formula to liquidation price / entry price, gives the exact share
of new positions in any price interval, so an opening fills every fine bin the density covers
(no bands of empty bins between leverages) at a cost of O(bins covered). ``mix`` is the former
five-point mix: point masses, ten scalar writes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from exporter.heatmap.params import LEVERAGE_BANDS, liquidation_factor

if TYPE_CHECKING:
    from exporter.heatmap.params import HeatmapParams

FloatArray = npt.NDArray[np.float64]
# Points of the tabulated distribution, uniform in log-leverage (2x-125x: 0.4 % apart in
# leverage); the cumulative distribution is interpolated linearly between them, which is within
# 1e-5 of the exact one.
TABLE_POINTS: Final = 1024
BAND_COUNT: Final = len(LEVERAGE_BANDS)
TABLE_MARGIN: Final = 0.02  # factor range the tables run on beyond the density, each way


def band_of(leverage: float) -> int:
    """Index into ``LEVERAGE_BANDS`` of the band holding ``leverage``."""
    return next(i for i, (_, top) in enumerate(LEVERAGE_BANDS) if leverage <= top)


@dataclass(frozen=True, slots=True)
class Density:
    """Both sides' shares of new positions by liquidation factor (LP / EP): with ``x`` a factor,
    ``table[round((x - origin) / spacing)]`` is the long share below ``x`` (0 to 1) where longs
    liquidate (below the entry price), and 1 plus the short share below ``x`` (1 to 2) where
    shorts do (above it). One table for both sides: an opening of both reads it once.

    Segment ``i``: the bins whose lower edge has a value below ``uppers[i]`` (and at or above
    the previous segment's) belong to side and leverage band ``rows[i]`` (longs from low
    leverage up, shorts from high leverage up: ascending factor).

    A lookup in a table fine enough (entries a quarter of the finest fine bin apart) replaces
    interpolation: the opening is the model's hot path, and a lookup is half the cost of
    ``np.interp``; the table (about 100 kB) stays in cache."""

    table: FloatArray
    spacing: float
    origin: float  # the factor of table[0]
    uppers: FloatArray  # the segments' upper values, for one searchsorted
    rows: tuple[tuple[int, int], ...]  # the segments' (side, band)
    # The factor range of each side's density: [side] (lowest, highest).
    ranges: tuple[tuple[float, float], tuple[float, float]]


@dataclass(frozen=True, slots=True)
class Kernel:
    """One coin's leverage assumption: ``density`` for ``lognormal``, ``points[side]``
    (liquidation factor, weight, band) for ``mix``. Immutable and shared by every coin of the
    same maintenance margin rate, copies included (``__deepcopy__``)."""

    density: Density | None
    points: tuple[tuple[tuple[float, float, int], ...], ...]

    def __deepcopy__(self, memo: dict[int, object]) -> Kernel:
        return self


def kernel_of(params: HeatmapParams, coin: str) -> Kernel:
    """The kernel of ``coin``; coins with the same maintenance margin rate share one."""
    if params.leverage_model == "mix":
        return _mix_kernel(params, params.mmr_of(coin))
    top = params.max_leverage_of(coin)
    # The coin's cap may fall below the configured lowest leverage: then half the cap, not
    # less than 1x.
    bottom = params.leverage_min if params.leverage_min < top else max(1.0, top / 2)
    return _density_kernel(
        params.leverage_median,
        params.leverage_sigma,
        bottom,
        top,
        params.mmr_of(coin),
        params.bin_fraction / 32,
    )


def _mix_kernel(params: HeatmapParams, mmr: float) -> Kernel:
    leverages = params.leverages()
    weights = params.weights().tolist()
    bands = [band_of(float(x)) for x in leverages]
    points = tuple(
        tuple(zip(liquidation_factor(leverages, mmr, side).tolist(), weights, bands, strict=True))
        for side in (0, 1)
    )
    return Kernel(None, points)


@functools.lru_cache(maxsize=32)
def _density_kernel(  # noqa: PLR0917 - positional: the cache key is the argument tuple
    median: float, sigma: float, bottom: float, top: float, mmr: float, spacing: float
) -> Kernel:
    log_leverage = np.linspace(math.log(bottom), math.log(top), TABLE_POINTS)
    z = (log_leverage - math.log(median)) / sigma
    pdf = np.exp(-0.5 * z * z)
    # Cumulative by the trapezoid rule in log-leverage, normalised to end at 1.
    steps = 0.5 * (pdf[1:] + pdf[:-1]) * np.diff(log_leverage)
    cdf = np.concatenate([[0.0], np.cumsum(steps)])
    cdf /= cdf[-1]
    leverage = np.exp(log_leverage)
    cuts = [math.log(min(max(t, bottom), top)) for _, t in LEVERAGE_BANDS[:-1]]
    at_cuts = np.interp(cuts, log_leverage, cdf).tolist()  # cumulative at the band edges
    # Longs: factor rises with leverage. Shorts: it falls, so reversed their share below x is
    # 1 - cdf, offset by 1 to follow the longs' in one table.
    long_factors = liquidation_factor(leverage, mmr, 0)
    short_factors = liquidation_factor(leverage, mmr, 1)[::-1]
    factors = np.concatenate([long_factors, short_factors])
    shares = np.concatenate([cdf, 2.0 - cdf[::-1]])
    origin = float(factors[0]) - TABLE_MARGIN
    count = math.ceil((float(factors[-1]) + TABLE_MARGIN - origin) / spacing) + 1
    table = np.interp(origin + spacing * np.arange(count), factors, shares)
    table.flags.writeable = False  # shared by every coin of this kernel
    bands = range(BAND_COUNT)
    uppers = [*at_cuts, 1.0, *(2.0 - c for c in reversed(at_cuts)), 3.0]
    rows = tuple((0, b) for b in bands) + tuple((1, b) for b in reversed(bands))
    ranges = (
        (float(long_factors[0]), float(long_factors[-1])),
        (float(short_factors[0]), float(short_factors[-1])),
    )
    return Kernel(Density(table, spacing, origin, np.array(uppers), rows, ranges), ())
