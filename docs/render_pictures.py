"""Render the pictures of the liquidation heatmap and map shown in README.md and
docs/heatmap-model.md, from the demo's simulated market (Grafana itself cannot run in CI).

    python docs/render_pictures.py [--hours H] [--warmup H] [--seed S] [--out docs/images]

The demo's market simulation feeds the model as the exporter would (an open-interest reading per
market every 15 s, liquidations scored); after the warm-up, BTC's view is kept every 5 simulated
minutes. Writes ``heatmap.png`` (the model over time) and ``liquidation-map.png`` (the last view).
Needs matplotlib: ``pip install -e '.[docs]'``.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import matplotlib as mpl

mpl.use("Agg")  # no screen: before pyplot is imported

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.ticker import FuncFormatter

from exporter.fakeexchange.simulation import MarketSimulation
from exporter.fakeexchange.typed import liquidation_event, open_interest_events
from exporter.heatmap import HeatmapBook, HeatmapParams
from exporter.heatmap.model import LONG, SHORT
from exporter.heatmap.params import band_titles

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt
    from matplotlib.typing import RcKeyType

    from exporter.fakeexchange.simulation import SimLiquidation
    from exporter.heatmap.views import CoinView

    FloatArray = npt.NDArray[np.float64]

logger = logging.getLogger(__name__)

COIN = "BTC"
POLL_SECONDS = 15  # the exporter's default open-interest poll interval
FRAME_SECONDS = 300  # one heatmap column per 5 simulated minutes
# The heatmap shows the price's range +- this fraction (the grid reaches +- range_fraction, 15 %,
# whose far ends hold little): more pixels per bin where the bands are.
ZOOM = 0.10
SIZE = (14.0, 7.0)  # inches at DPI: 1400 x 700 px
DPI = 100
# Grafana's dark theme, whose named colours the dashboards use: liquidated longs red, shorts
# green, lighter to darker for the leverage bands low, mid, high (dashboards/
# liquidation_heatmap.py: LEVERAGE_SHADES + SIDE_COLORS, i.e. light-red, red, dark-red, ...).
SHADES = {"long": ("#FF7383", "#F2495C", "#C4162A"), "short": ("#96D98D", "#73BF69", "#37872D")}
BACKGROUND, PANEL, TEXT, GRID = "#111217", "#181B1F", "#CCCCDC", "#2C3235"
THEME: dict[RcKeyType, str] = {
    "figure.facecolor": BACKGROUND,
    "axes.facecolor": PANEL,
    "savefig.facecolor": BACKGROUND,
    "axes.edgecolor": GRID,
    "axes.labelcolor": TEXT,
    "text.color": TEXT,
    "xtick.color": TEXT,
    "ytick.color": TEXT,
    "grid.color": GRID,
    "legend.facecolor": PANEL,
    "legend.edgecolor": GRID,
}


class Frame(NamedTuple):
    """One kept view, reduced to what the heatmap draws: ``usd[i]`` (longs + shorts) is the USD
    of bin ``first_index + i`` of width ``step``."""

    hours: float  # since the end of the warm-up
    price: float
    step: float
    first_index: int
    usd: FloatArray


class Run(NamedTuple):
    frames: list[Frame]
    liquidations: list[tuple[float, SimLiquidation]]  # (hours, liquidation), COIN's only
    last: CoinView


def simulate(hours: float, warmup_hours: float, seed: int) -> Run:
    """Feed the model from the simulation (as tests/test_heatmap_accuracy.py does) and keep
    ``COIN``'s view every ``FRAME_SECONDS`` after ``warmup_hours``."""
    simulation = MarketSimulation(seed=seed)
    book = HeatmapBook(HeatmapParams(), lambda: simulation.now_ms / 1000.0)
    start_ms = simulation.now_ms + round(warmup_hours * 3_600_000)
    frames: list[Frame] = []
    liquidations: list[tuple[float, SimLiquidation]] = []
    view: CoinView | None = None
    for poll in range(1, int(hours * 3600 / POLL_SECONDS) + 1):
        for liq in simulation.step(POLL_SECONDS):
            book.score(liquidation_event(liq, simulation.now_ms))
            if liq.coin == COIN and liq.ts_ms >= start_ms:
                liquidations.append(((liq.ts_ms - start_ms) / 3_600_000, liq))
        for reading in open_interest_events(simulation):
            book.observe_open_interest(reading)
        if simulation.now_ms < start_ms or poll % (FRAME_SECONDS // POLL_SECONDS):
            continue
        view = next(v for v in book.snapshot().views if v.coin == COIN)
        hours_in = (simulation.now_ms - start_ms) / 3_600_000
        usd = view.usd.sum(axis=0)
        frames.append(Frame(hours_in, view.price, view.step, view.first_index, usd))
    if view is None:
        raise ValueError(f"{hours} h leave no {FRAME_SECONDS} s frame after the warm-up")
    return Run(frames, liquidations, view)


def common_axis(frames: Sequence[Frame]) -> tuple[FloatArray, FloatArray]:
    """The frames on one absolute price axis: (``edges[k]``, ``usd[k, frame]``), NaN where a
    frame's grid does not reach. Bins move with the price (and their width may change), so each
    cell takes the USD of the frame's bin holding its centre, rescaled to the common width."""
    step = min(f.step for f in frames)
    low = min(f.first_index * f.step for f in frames)
    high = max((f.first_index + f.usd.size) * f.step for f in frames)
    edges = np.arange(math.floor(low / step), math.ceil(high / step) + 1, dtype=np.float64) * step
    centres = edges[:-1] + step / 2
    usd = np.full((centres.size, len(frames)), np.nan)
    for column, frame in enumerate(frames):
        index = np.floor(centres / frame.step).astype(np.int64) - frame.first_index
        inside = (index >= 0) & (index < frame.usd.size)
        usd[inside, column] = frame.usd[index[inside]] * (step / frame.step)
    return edges, usd


def usd_label(value: float, _position: float | None = None) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"${value / size:g}{suffix}"
    return f"${value:g}"


def price_label(value: float, _position: float | None = None) -> str:
    return f"${value:,.0f}"


def draw_heatmap(run: Run, seed: int, path: Path) -> None:
    frames = run.frames
    edges, usd = common_axis(frames)
    hours = np.array([f.hours for f in frames])
    prices = [f.price for f in frames]
    # Each column covers the 5 minutes up to its snapshot.
    x_edges = np.concatenate([[hours[0] - FRAME_SECONDS / 3600], hours])
    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI, layout="constrained")
    # A linear colour scale (the Grafana panel's square-root one lifts the faint far bins, which
    # on a still picture hides the bands); the top 0.5 % of cells saturate so that one hot
    # cluster does not wash out the rest.
    norm = Normalize(vmin=0.0, vmax=float(np.nanpercentile(usd, 99.5)))
    mesh = ax.pcolormesh(x_edges, edges, usd, cmap="viridis", norm=norm, rasterized=True)
    ax.plot(hours, prices, color="white", linewidth=1.4, label="mark price")
    for side, color in (("long", SHADES["long"][1]), ("short", SHADES["short"][1])):
        dots = [(h, liq.price, liq.usd) for h, liq in run.liquidations if liq.side == side]
        if dots:
            x, y, size = np.array(dots).T
            ax.scatter(
                x,
                y,
                s=np.sqrt(size) / 12,
                color=color,
                alpha=0.7,
                linewidths=0,
                label=f"{side}s liquidated (bigger: more USD)",
            )
    ax.set_xlim(x_edges[0], x_edges[-1])
    # Only where every frame's grid reaches: no gaps at the edges.
    low = max(f.first_index * f.step for f in frames)
    high = min((f.first_index + f.usd.size) * f.step for f in frames)
    ax.set_ylim(max(low, min(prices) * (1 - ZOOM)), min(high, max(prices) * (1 + ZOOM)))
    ax.yaxis.set_major_formatter(FuncFormatter(price_label))
    ax.set_xlabel("simulated time (hours)")
    ax.set_ylabel(f"{COIN} price")
    ax.set_title(
        f"Liquidation heatmap model · {COIN} on the demo's simulated market (seed {seed}) · "
        f"USD per ${frames[-1].step:g} bin, longs + shorts"
    )
    ax.legend(loc="upper left", fontsize=9)
    colorbar = fig.colorbar(mesh, ax=ax, pad=0.01, format=FuncFormatter(usd_label))
    colorbar.set_label("estimated USD liquidated in the bin")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def draw_map(view: CoinView, seed: int, path: Path) -> None:
    step = view.map_step
    lefts = (view.map_first + np.arange(view.map_count)) * step
    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI, layout="constrained")
    bottom = np.zeros(view.map_count)
    for side, index in (("long", LONG), ("short", SHORT)):
        for band, (name, color) in enumerate(
            zip(band_titles().values(), SHADES[side], strict=True)
        ):
            usd = view.map_usd[index, band]
            ax.bar(
                lefts,
                usd,
                width=step,
                bottom=bottom,
                align="edge",
                color=color,
                edgecolor=PANEL,
                linewidth=0.3,
                label=f"{side}s {name}",
            )
            bottom = bottom + usd
    curves = ax.twinx()
    for side, index in (("long", LONG), ("short", SHORT)):
        where = "falls" if side == "long" else "rises"
        curves.plot(
            lefts + step / 2,
            view.cumulative[index],
            color=SHADES[side][0],
            linewidth=2,
            label=f"cumulative {side}s liquidated if the price {where} here",
        )
    curves.axvline(
        view.price,
        color="white",
        linestyle="--",
        linewidth=1.2,
        label=f"mark price {price_label(view.price)}",
    )
    # Headroom above the bars and curves for the legend.
    ax.set_ylim(0, float(bottom.max()) * 1.35)
    curves.set_ylim(0, float(view.cumulative.max()) * 1.35)
    for axis in (ax, curves):
        axis.yaxis.set_major_formatter(FuncFormatter(usd_label))
    ax.xaxis.set_major_formatter(FuncFormatter(price_label))
    ax.set_xlim(lefts[0], lefts[-1] + step)
    ax.grid(axis="y", linewidth=0.5)
    ax.set_axisbelow(True)
    ax.set_xlabel(f"{COIN} price (bins of ${step:g})")
    ax.set_ylabel("estimated USD liquidated in the bin")
    curves.set_ylabel("cumulative USD liquidated")
    ax.set_title(
        f"Liquidation map model · {COIN} on the demo's simulated market (seed {seed}) · "
        "by side and leverage"
    )
    # Three columns: the longs' bars, the shorts' bars, the lines.
    handles, labels = ax.get_legend_handles_labels()
    more_handles, more_labels = curves.get_legend_handles_labels()
    curves.legend(
        handles + more_handles, labels + more_labels, loc="upper center", fontsize=9, ncol=3
    )
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Render heatmap.png and liquidation-map.png.")
    parser.add_argument("--hours", type=float, default=36.0, help="simulated hours in all")
    parser.add_argument("--warmup", type=float, default=12.0, help="hours before the first frame")
    parser.add_argument("--seed", type=int, default=0, help="the simulation's seed (demo: 0)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "images")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run = simulate(args.hours, args.warmup, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    with plt.rc_context(THEME):
        draw_heatmap(run, args.seed, args.out / "heatmap.png")
        draw_map(run.last, args.seed, args.out / "liquidation-map.png")
    logger.info("wrote heatmap.png and liquidation-map.png to %s", args.out)


if __name__ == "__main__":
    main()
