"""Heatmap update and backfill: the vectorised model against the per-position loop
(``benchmarks.heatmap_loop``) on the same readings."""

from __future__ import annotations

import copy
import csv
import gc
import statistics
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from benchmarks.common import Result, median_ratio, ms, timed_without_gc
from benchmarks.heatmap_loop import LoopHeatmap
from exporter.events import MarketHistory
from exporter.heatmap import HeatmapBook, HeatmapParams
from exporter.heatmap.model import CoinHeatmap

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy.typing as npt

    from benchmarks.common import Size

    FloatArray = npt.NDArray[np.float64]
    Stepper = CoinHeatmap | LoopHeatmap

MARKET = "binance:BTC/USDT:USDT"
CANDLE_SECONDS = 300
T0 = 1_780_000_000.0
TARGET_STEP_SECONDS = 0.002
TARGET_STEP_SPEEDUP = 50.0
TARGET_BACKFILL_SECONDS = 0.2
STEPS_PER_RUN = 10  # consecutive readings per timed run: openings and closings alike


class Readings:
    """Open interest (coins) and 5-minute candles of one market, oldest first."""

    def __init__(
        self, close: FloatArray, low: FloatArray, high: FloatArray, oi: FloatArray
    ) -> None:
        self.close, self.low, self.high, self.oi = close, low, high, oi

    def __len__(self) -> int:
        return len(self.close)

    def head(self, count: int) -> Readings:
        return Readings(self.close[:count], self.low[:count], self.high[:count], self.oi[:count])

    def step(self, i: int) -> dict[str, float]:
        """Keyword arguments of ``update`` for reading ``i``."""
        return {
            "time_s": T0 + CANDLE_SECONDS * i,
            "open_interest": float(self.oi[i]),
            "price": float(self.close[i]),
            "low": float(self.low[i]),
            "high": float(self.high[i]),
        }


def synthetic(steps: int, seed: int = 1) -> Readings:
    """A week-like path that leaves many positions standing: 0.2 % moves per 5 minutes (about
    BTC's), wicks, open interest growing 0.05 % a step with noise."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, steps)))
    previous = np.r_[close[0], close[:-1]]
    wick = np.abs(rng.normal(0, 0.001, steps))
    low = np.minimum(close, previous) * (1 - wick)
    high = np.maximum(close, previous) * (1 + wick)
    oi = 1e6 * np.exp(np.cumsum(rng.normal(0.0005, 0.002, steps)))
    return Readings(close, low, high, oi)


def btc_month(steps: int) -> Readings:
    """The real Binance BTCUSDT 5-minute path of June 2026 shipped with the fake exchange
    (about 15 days), continued by a rescaled copy of itself up to ``steps`` readings."""
    data = resources.files("exporter.fakeexchange") / "data"
    path = next(p for p in data.iterdir() if p.name.endswith(".csv"))
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    close = np.array([float(r["close"]) for r in rows])
    low = np.array([float(r["low"]) for r in rows])
    high = np.array([float(r["high"]) for r in rows])
    oi = np.array([float(r["open_interest_usd"]) for r in rows]) / close
    parts = [(close, low, high, oi)]
    while sum(len(p[0]) for p in parts) < steps:
        last = parts[-1]
        price_scale, oi_scale = last[0][-1] / close[0], last[3][-1] / oi[0]
        parts.append((close * price_scale, low * price_scale, high * price_scale, oi * oi_scale))
    joined = [np.concatenate([p[k] for p in parts])[:steps] for k in range(4)]
    return Readings(*joined)


def same_bins(model: CoinHeatmap, loop: LoopHeatmap) -> float:
    """Largest difference between the two books' coins per fine bin, relative to the largest
    bin; raises if the loop holds positions the model's grid does not."""
    coins = model.actual_coins()
    from_loop = np.zeros_like(coins)
    for (side, absolute), amount in loop.coins_by_bin().items():
        from_loop[side, absolute - model.base] += amount
    return float(np.abs(from_loop - coins).max() / max(coins.max(), 1e-300))


MIX = HeatmapParams(leverage_model="mix")
DENSITY = HeatmapParams()  # the default: the log-normal leverage density


def warm(readings: Readings, params: HeatmapParams) -> tuple[CoinHeatmap, LoopHeatmap]:
    first = float(readings.close[0])
    model, loop = CoinHeatmap("C", params, first), LoopHeatmap("C", params, first)
    for i in range(len(readings)):
        model.update(MARKET, **readings.step(i))
        loop.update(MARKET, **readings.step(i))
    return model, loop


def warm_model(readings: Readings, params: HeatmapParams) -> CoinHeatmap:
    model = CoinHeatmap("C", params, float(readings.close[0]))
    for i in range(len(readings)):
        model.update(MARKET, **readings.step(i))
    return model


class StepTimes:
    """Mean seconds per step of a baseline and a measured set of books over the same
    ``STEPS_PER_RUN`` readings, on fresh copies every run; medians over runs, and the median
    ratio per step by whether the open interest rose (an opening) or fell (a closing)."""

    def __init__(
        self,
        baseline: Callable[[], Sequence[Stepper]],
        measured: Callable[[], Sequence[Stepper]],
        readings: Readings,
        first: int,
        runs: int,
    ) -> None:
        steps = [readings.step(i) for i in range(first, first + STEPS_PER_RUN)]
        opening = [bool(readings.oi[i] > readings.oi[i - 1]) for i in range(first, len(readings))]
        base_times, times, ratios = [], [], []
        self.by_kind: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(runs):
            # Each side steps through all readings on its own, so neither evicts the other's
            # working set from the caches between steps (the loop's is a million objects).
            per_step = [_time_each(make(), steps) for make in (baseline, measured)]
            for base_step, model_step, opens in zip(*per_step, opening, strict=False):
                self.by_kind[opens].append(base_step / model_step)
            base_run, run = sum(per_step[0]), sum(per_step[1])
            base_times.append(base_run / len(steps))
            times.append(run / len(steps))
            ratios.append(base_run / run)
        self.base, self.fast, self.ratio = (
            statistics.median(x) for x in (base_times, times, ratios)
        )

    def kinds(self) -> str:
        return ", ".join(
            f"{name} {statistics.median(self.by_kind[key]):.1f}x"
            for key, name in ((True, "openings"), (False, "closings"))
            if self.by_kind[key]
        )


def bench_step(size: Size) -> Result:
    """The five-point mix against the per-position loop that follows the same rules."""
    coins = 10 if size.smoke else 100
    history = 400 if size.smoke else 2016  # a week of 5-minute readings
    readings = synthetic(history + STEPS_PER_RUN)
    model, loop = warm(readings.head(history), MIX)
    difference = same_bins(model, loop)
    positions = loop.position_count()
    occupied = int(np.count_nonzero(model.actual_coins()))
    timing = StepTimes(
        lambda: [loop.copy() for _ in range(coins)],
        lambda: [copy.deepcopy(model) for _ in range(coins)],
        readings,
        history,
        size.runs,
    )
    return Result(
        what="heatmap update, five-point mix",
        workload=f"one OI step of each of {coins} coins (mean of {STEPS_PER_RUN} consecutive "
        f"steps); per coin {positions:,} positions in {occupied} fine bins (2 sides, "
        "5 leverages) left by a week of 5-min readings",
        baseline=f"per-position loop: {ms(timing.base)}",
        measured=ms(timing.fast),
        ratio=f"{timing.ratio:.0f}x",
        target="< 2 ms, >= 50x",
        passed=timing.fast < TARGET_STEP_SECONDS and timing.ratio >= TARGET_STEP_SPEEDUP,
        notes=(
            (
                "heatmap update: after the same readings the loop and the model hold the same "
                f"coins per bin (largest difference {difference:.1e} of the largest bin)"
            ),
            (
                f"heatmap update: median ratio per step: {timing.kinds()}; the garbage "
                "collector is off while either side is timed (collections of the loop's "
                "position objects would dominate its time)"
            ),
        ),
    )


def bench_density_step(size: Size) -> Result:
    """The default leverage density against the five-point mix, the same model otherwise:
    what filling every bin the density covers costs."""
    coins = 10 if size.smoke else 100
    history = 400 if size.smoke else 2016
    readings = synthetic(history + STEPS_PER_RUN)
    mix, density = (warm_model(readings.head(history), p) for p in (MIX, DENSITY))
    occupied = int(np.count_nonzero(density.actual_coins()))
    timing = StepTimes(
        lambda: [copy.deepcopy(mix) for _ in range(coins)],
        lambda: [copy.deepcopy(density) for _ in range(coins)],
        readings,
        history,
        size.runs,
    )
    return Result(
        what="heatmap update, leverage density (default)",
        workload=f"as above, the log-normal leverage density: {occupied} fine bins per coin "
        "(2 sides x 3 leverage bands)",
        baseline=f"five-point mix: {ms(timing.base)}",
        measured=ms(timing.fast),
        ratio=f"{timing.ratio:.2f}x",
        target="< 2 ms",
        passed=timing.fast < TARGET_STEP_SECONDS,
        notes=(f"heatmap update, density: median ratio per step: {timing.kinds()}",),
    )


def _time_each(books: Sequence[Stepper], steps: list[dict[str, float]]) -> list[float]:
    """Seconds each reading takes over all ``books``, in order."""
    gc.collect()  # the copies' garbage; the collector stays off while timing
    return [timed_without_gc(lambda: _step(books, step)) for step in steps]  # noqa: B023


def _step(books: Sequence[Stepper], reading: dict[str, float]) -> None:
    for book in books:
        book.update(MARKET, **reading)


def bench_backfill(size: Size) -> Result:
    steps = 864 if size.smoke else 8640  # 30 days of 5-minute readings
    readings = btc_month(steps)
    times = (T0 + CANDLE_SECONDS * np.arange(steps)) * 1000
    history = MarketHistory(
        "binance",
        "BTC/USDT:USDT",
        "BTC",
        times.astype(np.int64),
        readings.oi,
        readings.low,
        readings.high,
        readings.close,
    )
    end = float(times[-1]) / 1000

    def replay(params: HeatmapParams) -> Callable[[], float]:
        def measured() -> float:
            book = HeatmapBook(params, lambda: end)
            return timed_without_gc(lambda: book.replay(history))

        return measured

    def baseline() -> float:
        loop = LoopHeatmap("BTC", MIX, float(readings.close[0]))

        def run() -> None:
            for i in range(steps):
                loop.update(MARKET, **readings.step(i))

        return timed_without_gc(run)

    base_runs = max(1, min(size.runs, 3))
    base, mix, _ = median_ratio(baseline, replay(MIX), base_runs)
    mix = statistics.median([mix, *(replay(MIX)() for _ in range(size.runs - base_runs))])
    fast = statistics.median([replay(DENSITY)() for _ in range(size.runs)])
    return Result(
        what="backfill",
        workload=f"{steps:,} 5-min OI readings and candles of one coin "
        f"({steps / 288:.0f} days of BTCUSDT), HeatmapBook.replay, leverage density",
        baseline=f"per-position loop (five-point mix): {ms(base)}",
        measured=ms(fast),
        ratio=f"{base / fast:.0f}x",
        target="< 200 ms",
        passed=fast < TARGET_BACKFILL_SECONDS,
        notes=(
            (
                f"backfill: the model with the five-point mix replays it in {ms(mix)} "
                f"({base / mix:.0f}x the loop)"
            ),
        ),
    )


def run(size: Size) -> list[Result]:
    return [bench_step(size), bench_density_step(size), bench_backfill(size)]
