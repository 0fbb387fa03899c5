"""Parameters of the liquidation-heatmap model; every assumption of the model is here."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from collections.abc import Mapping

SideAttribution = Literal["both", "trend"]
SIDE_ATTRIBUTIONS: Final = ("both", "trend")

# An assumed mix of the leverage new positions use (weights sum to 1). No exchange publishes
# it; this is the kind of mix public liquidation-map vendors describe.
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

    leverage_mix: Mapping[float, float] = field(default_factory=lambda: dict(DEFAULT_LEVERAGE_MIX))
    mmr: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MMR))
    side_attribution: SideAttribution = "both"
    bin_fraction: float = 0.0025  # target bin width, as a fraction of price
    range_fraction: float = 0.15  # emitted grid: mark price +- this fraction
    half_life_hours: float = 72.0  # positions not seen closing decay with this half-life
    clusters: int = 5  # top-N clusters per side
    at_risk_moves: tuple[float, ...] = DEFAULT_AT_RISK_MOVES
    top_fraction: float = 0.10  # accuracy: share of bins counted as the model's "top" bins

    def __post_init__(self) -> None:
        leverages = np.asarray(list(self.leverage_mix), dtype=np.float64)
        weights = np.asarray(list(self.leverage_mix.values()), dtype=np.float64)
        if leverages.size == 0 or np.any(leverages < 1) or np.any(weights < 0):
            raise ValueError("leverage_mix needs leverages >= 1 with non-negative weights")
        if not math.isclose(float(weights.sum()), 1.0, abs_tol=1e-6):
            raise ValueError(f"leverage_mix weights sum to {weights.sum():g}, not 1")
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

    def liquidation_factors(self, coin: str) -> npt.NDArray[np.float64]:
        """``[side, leverage]``: liquidation price / entry price (side 0 long, 1 short).

        Isolated margin with maintenance margin rate ``mmr``: long ``1 - 1/L + mmr``,
        short ``1 + 1/L - mmr`` (the maintenance amount is 0 in the first tier).
        """
        inverse = 1.0 / self.leverages()
        mmr = self.mmr_of(coin)
        return np.stack([1.0 - inverse + mmr, 1.0 + inverse - mmr])

    def max_bins_per_side(self) -> int:
        """The most price bins emitted per coin and side: the documented series bound.

        The bin step stays within [0.5, 2] x the target while the grid spans 2 x range.
        """
        return math.ceil(2 * self.range_fraction / (0.5 * self.bin_fraction)) + 2
