"""Parameters of the liquidation-heatmap model; every assumption of the model is here."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

import numpy as np
import numpy.typing as npt

from exporter.heatmap.grid import ZONE_MARGIN, window_span

if TYPE_CHECKING:
    from collections.abc import Mapping

SideAttribution = Literal["both", "trend"]
SIDE_ATTRIBUTIONS: Final = ("both", "trend")
LeverageModel = Literal["lognormal", "mix"]
LEVERAGE_MODELS: Final = ("lognormal", "mix")

# The leverage bands of the liquidation map: (name, highest leverage in the band).
LEVERAGE_BANDS: Final[tuple[tuple[str, float], ...]] = (
    ("low", 10.0),
    ("mid", 50.0),
    ("high", math.inf),
)


# The default leverage density (``lognormal``), cut to 2x-125x. No venue publishes leverage: its
# liquidation distances (1 - LP/EP) match those of the project's market simulation's prior mix
# (most notional at 10x-25x, maintenance margin by leverage tier): median 2.6 %, which is 33x at
# BTC's first-tier MMR, and a spread of ln(distance) of 1.2 (docs/heatmap-model.md).
DEFAULT_LEVERAGE_MEDIAN: Final = 33.0
DEFAULT_LEVERAGE_SIGMA: Final = 1.2
DEFAULT_LEVERAGE_RANGE: Final = (2.0, 125.0)
# An assumed mix of the leverage new positions use (weights sum to 1). No exchange publishes
# it; this is the kind of mix public liquidation-map vendors describe. Used with ``mix``.
DEFAULT_LEVERAGE_MIX: Final[Mapping[float, float]] = {
    5: 0.15,
    10: 0.30,
    25: 0.25,
    50: 0.20,
    100: 0.10,
}
# Maintenance margin rate of the first (smallest-position) leverage tier, rounded, as the three
# exchanges publish it for these coins; most positions are in that tier. Binance's brackets need
# an API key, so the model ships these instead of fetching them.
DEFAULT_MMR: Final[Mapping[str, float]] = {"BTC": 0.004, "ETH": 0.005, "SOL": 0.005}
FALLBACK_MMR: Final = 0.01
DEFAULT_AT_RISK_MOVES: Final = (0.01, 0.02, 0.05, 0.10)


@dataclass(frozen=True, slots=True)
class HeatmapParams:
    """Model settings (see docs/heatmap-model.md for what each one does)."""

    leverage_model: LeverageModel = "lognormal"
    leverage_median: float = DEFAULT_LEVERAGE_MEDIAN
    leverage_sigma: float = DEFAULT_LEVERAGE_SIGMA
    leverage_min: float = DEFAULT_LEVERAGE_RANGE[0]
    leverage_max: float = DEFAULT_LEVERAGE_RANGE[1]
    leverage_mix: Mapping[float, float] = field(default_factory=lambda: dict(DEFAULT_LEVERAGE_MIX))
    mmr: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MMR))
    side_attribution: SideAttribution = "both"
    bin_fraction: float = 0.0025  # target bin width, as a fraction of price
    range_fraction: float = 0.15  # emitted grid: mark price +- this fraction
    half_life_hours: float = 12.0  # turnover: positions close (and reopen) at this half-life
    clusters: int = 5  # top-N clusters per side
    at_risk_moves: tuple[float, ...] = DEFAULT_AT_RISK_MOVES
    top_fraction: float = 0.10  # accuracy: share of bins counted as the model's "top" bins
    # Open interest unchanged for longer than this is taken as stale upstream data: neither it
    # nor the step when it moves again opens or closes positions.
    stale_after_seconds: float = 900.0
    map_bin_multiple: int = 2  # liquidation-map bin = this many heatmap bins

    def __post_init__(self) -> None:
        leverages = np.asarray(list(self.leverage_mix), dtype=np.float64)
        weights = np.asarray(list(self.leverage_mix.values()), dtype=np.float64)
        if leverages.size == 0 or np.any(leverages < 1) or np.any(weights < 0):
            raise ValueError("leverage_mix needs leverages >= 1 with non-negative weights")
        if not math.isclose(float(weights.sum()), 1.0, abs_tol=1e-6):
            raise ValueError(f"leverage_mix weights sum to {weights.sum():g}, not 1")
        if self.leverage_model not in LEVERAGE_MODELS:
            raise ValueError(f"leverage_model must be one of {LEVERAGE_MODELS}")
        if not 1 <= self.leverage_min < self.leverage_max <= 1000:
            raise ValueError("leverage_min and leverage_max need 1 <= min < max <= 1000")
        if not self.leverage_min <= self.leverage_median <= self.leverage_max:
            raise ValueError("leverage_median must lie within leverage_min and leverage_max")
        if not 0.05 <= self.leverage_sigma <= 3:
            raise ValueError("leverage_sigma must be within 0.05 and 3")
        if not self.stale_after_seconds > 0:
            raise ValueError("stale_after_seconds must be positive")
        if self.side_attribution not in SIDE_ATTRIBUTIONS:
            raise ValueError(f"side_attribution must be one of {SIDE_ATTRIBUTIONS}")
        if not 0.0005 <= self.bin_fraction <= 0.02:
            raise ValueError("bin_fraction must be within 0.0005 and 0.02")
        if not 0.01 <= self.range_fraction <= 0.5:
            raise ValueError("range_fraction must be within 0.01 and 0.5")
        if not self.half_life_hours > 0:
            raise ValueError("half_life_hours must be positive")
        if any(not 0 <= m < 0.5 for m in self.mmr.values()):
            raise ValueError("maintenance margin rates must be within 0 and 0.5")

    def leverages(self) -> npt.NDArray[np.float64]:
        return np.asarray(list(self.leverage_mix), dtype=np.float64)

    def weights(self) -> npt.NDArray[np.float64]:
        return np.asarray(list(self.leverage_mix.values()), dtype=np.float64)

    def mmr_of(self, coin: str) -> float:
        return float(self.mmr.get(coin, FALLBACK_MMR))

    def max_leverage_of(self, coin: str) -> float:
        """The highest leverage the density reaches for ``coin``: venues keep the maintenance
        margin at most half the initial margin (BTC 0.4 % at 125x), so 1 / (2 MMR) caps it."""
        mmr = self.mmr_of(coin)
        return self.leverage_max if mmr <= 0 else min(self.leverage_max, 1.0 / (2.0 * mmr))

    def _window_span(self) -> float:
        """The emitted window's width over the price, at most: ``range_fraction`` around the
        lattice cell holding the price (``grid.window_span()``)."""
        return window_span() * (1 + self.range_fraction) - (1 - self.range_fraction)

    def _finest_step(self) -> float:
        """The narrowest step over the price, as a fraction: a zone's step is at least
        ``bin_fraction`` x its lower edge, and a grid keeps it up to twice that edge plus
        ``ZONE_MARGIN`` (grid.py)."""
        return self.bin_fraction / (2 * (1 + ZONE_MARGIN))

    def max_bins_per_side(self) -> int:
        """The most price bins emitted per coin and side: the documented series bound."""
        return math.ceil(self._window_span() / self._finest_step()) + 2

    def max_map_bins_per_side(self) -> int:
        """The most liquidation-map bins emitted per coin, side and leverage band."""
        width = self._finest_step() * self.map_bin_multiple
        return math.ceil(self._window_span() / width) + 2


def liquidation_factor(
    leverage: npt.NDArray[np.float64], mmr: float, side: int
) -> npt.NDArray[np.float64]:
    """Liquidation price / entry price of an isolated-margin position (side 0 long, 1 short).

    The position is liquidated when its margin ``EP/L`` plus its profit equals the maintenance
    margin ``MMR x LP`` (the maintenance amount is 0 in the first tier): long
    ``(1 - 1/L) / (1 - MMR)``, short ``(1 + 1/L) / (1 + MMR)``.
    """
    inverse = 1.0 / leverage
    if side == 0:
        return (1.0 - inverse) / (1.0 - mmr)
    return (1.0 + inverse) / (1.0 + mmr)


def band_titles() -> dict[str, str]:
    """Each band's ``leverage`` label value and its range as people write it (≤10x, 10-50x,
    >50x): the dashboards' legends and the docs' pictures."""
    titles, low = {}, 0.0
    for name, high in LEVERAGE_BANDS:
        if not low:
            titles[name] = f"≤{high:g}x"
        elif math.isinf(high):
            titles[name] = f">{low:g}x"
        else:
            titles[name] = f"{low:g}-{high:g}x"
        low = high
    return titles
