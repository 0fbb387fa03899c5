"""The price grid every replica derives alike: bin steps from fixed price zones, the emitted
window from a fixed price lattice, and their label formatting.

Sharded replicas (``--shard``) each model part of a coin's markets; their maps add up by price
label only if they sit on the same bins. So as little as possible depends on a replica's own
history:

- **Step.** Price zones are octaves ``[2^z, 2^(z+1))``; zone ``z`` has the step
  ``nice_step(bin_fraction x 2^(z + 0.5))``, within [0.5, 2] x the target anywhere in the zone.
  Bin ``i`` covers ``[i x step, (i + 1) x step)``: origin 0. Changing the step re-bins every
  position of the coin, and a replica does it when its own readings say so; for the re-binning
  to happen at the same point of every market's history in every replica, the zone is taken
  only at the first reading of each hour (``ZONE_ALIGN_SECONDS``, by the readings' own time):
  between a market's last reading of one hour and its first of the next, whichever replica
  holds it. Replicas then differ only if their prices straddle a power of two at that moment,
  until the next hour. Within an hour the step stays, unless the price leaves the zone by more
  than ``ZONE_MARGIN`` (a crash: the series bound holds then too).
- **State array.** A zone's positions live on a fixed stretch of fine bins, from
  ``ARRAY_LOW`` x 2^z (the 2x longs of a price at the zone's margin below) up to where the
  window of a price at the top of the zone ends: the same bins in every replica, whatever its
  prices did, so positions beyond them are dropped alike everywhere.
- **Window.** The emitted bins cover ``range_fraction`` around the lattice cell holding the
  price, cells being 1/16 of an octave (~4.4 %), not around the price itself: replicas whose
  prices differ by the venues' spread emit the same bins unless a cell edge lies between their
  prices at that moment. The window holds no state.
"""

from __future__ import annotations

import math
from typing import Final

NICE_MANTISSAS: Final = (1.0, 2.0, 2.5, 5.0, 10.0)
ZONE_MARGIN: Final = 0.10
ZONE_ALIGN_SECONDS: Final = 3600.0
ARRAY_LOW: Final = 0.45
SUB: Final = 4  # fine bins per emitted bin: the model's resolution (sweeps act on fine bins)
WINDOW_CELLS_PER_OCTAVE: Final = 16


def nice_step(target: float) -> float:
    """The number of the form {1, 2, 2.5, 5} x 10^k nearest to ``target`` (in log terms)."""
    if not target > 0 or not math.isfinite(target):
        raise ValueError(f"target step must be positive, got {target!r}")
    exponent = math.floor(math.log10(target))
    scale = 10.0**exponent
    best = min(NICE_MANTISSAS, key=lambda m: abs(math.log(m * scale / target)))
    return float(f"{best * scale:.12g}")


def zone_of(price: float) -> int:
    """The octave holding ``price``: ``2^z <= price < 2^(z+1)``."""
    _, exponent = math.frexp(price)  # price = mantissa x 2^exponent, 0.5 <= mantissa < 1
    return exponent - 1


def zone_step(zone: int, bin_fraction: float) -> float:
    """The bin step of every price in ``zone``."""
    return nice_step(bin_fraction * math.ldexp(math.sqrt(2.0), zone))


def zone_holds(zone: int, price: float) -> bool:
    """Whether a grid of ``zone`` may stay at ``price`` (its octave, widened by the margin)."""
    return math.ldexp(1.0 - ZONE_MARGIN, zone) <= price < math.ldexp(1.0 + ZONE_MARGIN, zone + 1)


def _lattice(cell: int) -> float:
    """The lower edge of lattice cell ``cell``."""
    return math.pow(2.0, cell / WINDOW_CELLS_PER_OCTAVE)


def cell_of(price: float) -> int:
    """The window lattice cell holding ``price``: ``2^(c/16) <= price < 2^((c+1)/16)``."""
    return math.floor(math.log2(price) * WINDOW_CELLS_PER_OCTAVE)


def zone_array(zone: int, step: float) -> int:
    """The state array's first fine bin (``base``, in fine bins of ``step / SUB``) for
    ``zone``: ``ARRAY_LOW`` x 2^z, rounded down to a whole emitted bin."""
    return (math.floor(math.ldexp(ARRAY_LOW, zone) / (step / SUB)) // SUB) * SUB


def zone_bins(zone: int, step: float, range_fraction: float) -> int:
    """Fine bins of zone ``zone``'s state array: from ``ARRAY_LOW`` x 2^z to the window's top
    at the zone's top (a price at 2^(z+1), its cell, ``range_fraction`` above)."""
    top = 2 * window_span() * (1 + range_fraction)
    return SUB * math.ceil((top - ARRAY_LOW) * math.ldexp(1.0, zone) / step) + SUB


def window_bounds(cell: int, range_fraction: float) -> tuple[float, float]:
    """The prices the emitted window of a grid anchored at ``cell`` covers."""
    return _lattice(cell) * (1 - range_fraction), _lattice(cell + 1) * (1 + range_fraction)


def window_span() -> float:
    """A cell's upper edge over its lower edge (~1.044): how far the window's cell reaches
    above the lowest price it serves."""
    return _lattice(1)


def label_decimals(step: float) -> int:
    """Decimals that print every multiple of ``step`` exactly (2.5 needs one more)."""
    decimals = max(0, -math.floor(math.log10(step)))
    return decimals + 1 if not math.isclose(round(step, decimals), step, rel_tol=1e-9) else decimals


def format_price(index: int, step: float, decimals: int) -> str:
    """The label of bin ``index``: its lower edge ``index * step`` as a plain decimal."""
    return f"{index * step:.{decimals}f}"
