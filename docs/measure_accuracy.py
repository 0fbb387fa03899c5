"""The accuracy table of docs/heatmap-model.md: the model (or the simulation's own positions,
``--truth``) scored against the market simulation's liquidations.

    python docs/measure_accuracy.py --seeds 0 1 2                  # the default model
    python docs/measure_accuracy.py --seeds 2 --leverage-median 50
    python docs/measure_accuracy.py --seeds 0 1 2 --truth

Seeds below 2 run two simulated days, seed 2 one and a half (as tests/test_heatmap_accuracy.py);
the figures are over the last 24 h. Each seed takes a few minutes.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from exporter.fakeexchange.simulation import MarketSimulation, MarketState
from exporter.fakeexchange.typed import liquidation_event, open_interest_events
from exporter.heatmap import HeatmapBook, HeatmapParams
from exporter.heatmap.grid import cell_of, window_bounds, zone_of, zone_step

FloatArray = npt.NDArray[np.float64]
POLL_SECONDS = 15
TEST_SEED = 2  # tests/test_heatmap_accuracy.py's, over 1.5 days
DAY_POLLS = 86_400 // POLL_SECONDS


def days_of(seed: int) -> float:
    return 1.5 if seed == TEST_SEED else 2.0


def model_scores(seed: int, params: HeatmapParams) -> dict[str, tuple[float, float]]:
    """(hit ratio, lift) per coin of the model over the last 24 h."""
    simulation = MarketSimulation(seed=seed)
    book = HeatmapBook(params, lambda: simulation.now_ms / 1000.0)
    for _ in range(int(days_of(seed) * DAY_POLLS)):
        for liq in simulation.step(POLL_SECONDS):
            book.score(liquidation_event(liq, simulation.now_ms))
        for reading in open_interest_events(simulation):
            book.observe_open_interest(reading)
    return {coin: (a.hit_ratio, a.lift) for coin, a in sorted(book.accuracy().items())}


def truth_scores(seed: int, params: HeatmapParams) -> dict[str, tuple[float, float]]:
    """The same score with the simulation's true positions as the map, on the model's grid
    (bin width from the same rule, mark price +- the same range), taken before each step."""
    simulation = MarketSimulation(seed=seed)
    polls = int(days_of(seed) * DAY_POLLS)
    totals: dict[str, list[float]] = {}  # coin -> [hit USD, all USD, uniform USD]
    for poll in range(polls):
        scoring = poll >= polls - DAY_POLLS
        maps: dict[tuple[str, str], tuple[FloatArray, FloatArray, float, float]] = {}
        if scoring:
            for state in simulation.market_states():
                for side in ("long", "short"):
                    if (state.coin, side) not in maps:
                        maps[state.coin, side] = _true_map(simulation, state, side, params)
        for liq in simulation.step(POLL_SECONDS):
            if not scoring:
                continue
            edges, usd, threshold, share = maps[liq.coin, liq.side]
            i = int(np.searchsorted(edges, liq.price, side="right")) - 1
            hit = 0 <= i < usd.size and usd[i] > 0 and usd[i] >= threshold
            entry = totals.setdefault(liq.coin, [0.0, 0.0, 0.0])
            entry[0] += liq.usd if hit else 0.0
            entry[1] += liq.usd
            entry[2] += liq.usd * share
    return {c: (h / a, h / u) for c, (h, a, u) in sorted(totals.items()) if a > 0}


def _true_map(
    simulation: MarketSimulation, state: MarketState, side: str, params: HeatmapParams
) -> tuple[FloatArray, FloatArray, float, float]:
    """(bin edges, true USD per bin, the top decile's smallest USD, its share of bins)."""
    price, coin = state.mark_price, state.coin
    step = zone_step(zone_of(price), params.bin_fraction)  # the model's grid (grid.py)
    low, high = window_bounds(cell_of(price), params.range_fraction)
    first = math.floor(low / step)
    last = math.floor(high / step)
    edges = np.arange(first, last + 2, dtype=np.float64) * step
    liquidation_prices, usd = simulation.true_positions(coin, side)
    binned = np.asarray(np.histogram(liquidation_prices, bins=edges, weights=usd)[0], np.float64)
    count = max(1, math.ceil(binned.size * params.top_fraction))
    threshold = float(np.partition(binned, binned.size - count)[binned.size - count])
    return edges, binned, threshold, count / binned.size


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--truth", action="store_true", help="score the true positions instead")
    parser.add_argument("--leverage", choices=("lognormal", "mix"), default="lognormal")
    parser.add_argument("--leverage-median", type=float)
    parser.add_argument("--leverage-sigma", type=float)
    parser.add_argument("--half-life-hours", type=float)
    args = parser.parse_args()
    params = replace(HeatmapParams(), leverage_model=args.leverage)
    for name in ("leverage_median", "leverage_sigma", "half_life_hours"):
        if getattr(args, name) is not None:
            params = replace(params, **{name: getattr(args, name)})
    for seed in args.seeds:
        scores = (truth_scores if args.truth else model_scores)(seed, params)
        cells = ", ".join(f"{c} {hit:.2f} / {lift:.1f}" for c, (hit, lift) in scores.items())
        sys.stdout.write(f"seed {seed}: hit ratio / lift: {cells}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
