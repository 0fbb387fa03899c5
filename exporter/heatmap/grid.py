"""Price grids: "nice" bin steps chosen with hysteresis, and their label formatting."""

from __future__ import annotations

import math
from typing import Final

NICE_MANTISSAS: Final = (1.0, 2.0, 2.5, 5.0, 10.0)
# The step is kept while step / (bin_fraction * price) stays within these bounds.
HYSTERESIS: Final = (0.5, 2.0)


def nice_step(target: float) -> float:
    """The number of the form {1, 2, 2.5, 5} x 10^k nearest to ``target`` (in log terms)."""
    if not target > 0 or not math.isfinite(target):
        raise ValueError(f"target step must be positive, got {target!r}")
    exponent = math.floor(math.log10(target))
    scale = 10.0**exponent
    best = min(NICE_MANTISSAS, key=lambda m: abs(math.log(m * scale / target)))
    return float(f"{best * scale:.12g}")


def step_still_fits(step: float, price: float, bin_fraction: float) -> bool:
    """Whether ``step`` may stay: re-choosing it on every tick would reshuffle Grafana's rows."""
    ratio = step / (bin_fraction * price)
    return HYSTERESIS[0] <= ratio <= HYSTERESIS[1]


def label_decimals(step: float) -> int:
    """Decimals that print every multiple of ``step`` exactly (2.5 needs one more)."""
    decimals = max(0, -math.floor(math.log10(step)))
    return decimals + 1 if not math.isclose(round(step, decimals), step, rel_tol=1e-9) else decimals


def format_price(index: int, step: float, decimals: int) -> str:
    """The label of bin ``index``: its lower edge ``index * step`` as a plain decimal."""
    return f"{index * step:.{decimals}f}"
