"""Memory: resident set size of an exporter-sized process after set-up, and its growth over an
accelerated run (a fake clock runs days of markets in minutes).

The measurement runs in a child process (``python -m benchmarks.memory``), so that nothing of
the other benchmarks counts; it imports everything the exporter imports (ccxt.pro included) and
feeds the core typed events directly: the fake exchanges list too few markets for 3 x 50.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import statistics
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import numpy as np

from benchmarks.common import Result, rss_bytes
from exporter.venues import DEFAULT_VENUES

if TYPE_CHECKING:
    from benchmarks.common import Size
    from exporter.events import Side

# The three default venues: the workload the README figures were measured with.
EXCHANGES = DEFAULT_VENUES
T0 = 1_791_565_600.0
POLL_SECONDS = 15  # open-interest poll of every market, staggered
SCRAPE_SECONDS = 15  # a Prometheus scrape interval (a full render)
LIQUIDATIONS_PER_SECOND = 4.0  # across all markets; the accelerated run keeps this rate
TARGET_RSS_BYTES = 200e6  # 200 MB
TARGET_GROWTH = 0.02


class ManualClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class _Market:
    """Typed events of 3 exchanges x ``coins`` markets into one core, on a fake clock."""

    def __init__(self, coins: int, clock: ManualClock) -> None:
        from exporter.config import DEFAULT_HEATMAP_COINS  # noqa: PLC0415 - the child only
        from exporter.core import Core  # noqa: PLC0415

        self.clock = clock
        # The shipped heatmap_coins (top:10): at most 15 of the coins get a heatmap.
        self.core = Core(EXCHANGES, clock, heatmap_coins=DEFAULT_HEATMAP_COINS)
        self.rng = random.Random(0)
        names = [f"C{i:02d}" for i in range(coins)]
        self.price = {c: 10 ** self.rng.uniform(-2, 4.7) for c in names}
        self.interest = {c: 3e7 / self.price[c] for c in names}
        self.markets = [(e, c) for c in names for e in EXCHANGES]

    def backfill(self, days: float, ending_s: float) -> None:
        """Each market's history, as the collectors replay at start-up."""
        from exporter.events import MarketHistory  # noqa: PLC0415

        steps = int(days * 288)
        start_ms = int((ending_s - steps * 300) * 1000)
        # The first poll comes before the history, as in the exporter: heatmap_coins ranks by it.
        self.clock.now = start_ms / 1000 - 300
        for market in self.markets:
            self.poll(*market)
        for exchange, coin in self.markets:
            noise = np.random.default_rng(self.rng.randrange(2**32)).normal(0, 2e-3, steps)
            walk = np.exp(np.cumsum(noise))
            close = self.price[coin] * walk / walk[-1]
            self.core.record_history(
                MarketHistory(
                    exchange,
                    f"{coin}/USDT:USDT",
                    coin,
                    start_ms + 300_000 * np.arange(steps, dtype=np.int64),
                    self.interest[coin] * (1 + 0.1 * np.sin(np.arange(steps) / 300)),
                    close * 0.998,
                    close * 1.002,
                    close,
                )
            )

    def poll(self, exchange: str, coin: str) -> None:
        from exporter.events import OpenInterest  # noqa: PLC0415

        self.price[coin] *= math.exp(self.rng.gauss(0, 5e-4))
        self.interest[coin] *= math.exp(self.rng.gauss(0, 1e-3))
        at_ms = int(self.clock.now * 1000)
        coins, price = self.interest[coin], self.price[coin]
        symbol = f"{coin}/USDT:USDT"
        self.core.record_open_interest(
            OpenInterest(exchange, symbol, coin, coins, coins * price, price, at_ms, at_ms)
        )

    def liquidate(self) -> None:
        from exporter.events import Liquidation  # noqa: PLC0415

        rng = self.rng
        exchange, coin = rng.choice(self.markets)
        at = self.price[coin] * (1 + rng.uniform(-0.01, 0.01))
        quantity = rng.lognormvariate(7, 2) / at
        at_ms = int(self.clock.now * 1000)
        side: Side = rng.choice(("long", "short"))
        self.core.record_liquidation(
            Liquidation(
                exchange,
                f"{coin}/USDT:USDT",
                coin,
                side,
                at,
                quantity,
                quantity * at,
                at_ms - rng.randrange(0, 5000),
                at_ms,
            )
        )

    def fill_windows(self, hours: float, ending_s: float, step_s: int = 60) -> None:
        """``hours`` of polls (every ``step_s``) and liquidations up to ``ending_s``."""
        self.clock.now = ending_s - hours * 3600
        while self.clock.now < ending_s:
            self.clock.now += step_s
            for market in self.markets:
                self.poll(*market)
            for _ in range(_poisson(self.rng, LIQUIDATIONS_PER_SECOND * step_s)):
                self.liquidate()

    def second(self, elapsed: int) -> None:
        """One simulated second: the polls due (staggered) and its liquidations."""
        self.clock.now += 1
        for i in range(elapsed % POLL_SECONDS, len(self.markets), POLL_SECONDS):
            self.poll(*self.markets[i])
        for _ in range(_poisson(self.rng, LIQUIDATIONS_PER_SECOND)):
            self.liquidate()


def measure(
    seconds: float, coins: int, backfill_days: float, window_hours: float
) -> dict[str, object]:
    """Set up, then run for ``seconds`` of wall time; RSS figures in bytes."""
    import ccxt.pro  # noqa: PLC0415 - the exporter's footprint, imported inside the child

    import exporter.app  # noqa: F401, PLC0415
    from exporter.exposition import Exposition  # noqa: PLC0415

    libraries = [ccxt.pro.binanceusdm(), ccxt.pro.bybit(), ccxt.pro.okx()]
    clock = ManualClock(T0)
    market = _Market(coins, clock)
    market.backfill(backfill_days, T0 - window_hours * 3600)
    market.fill_windows(window_hours, T0)
    exposition = Exposition()
    exposition.render(market.core.snapshot(), None, None)
    gc.collect()
    after_setup = rss_bytes()

    # The accelerated run: one simulated second per step, as fast as the machine goes.
    samples: list[tuple[float, int]] = []
    started = time.perf_counter()
    next_sample = started
    simulated = 0
    last_render = None
    while (now := time.perf_counter()) - started < seconds:
        if now >= next_sample:
            samples.append((now - started, rss_bytes()))
            next_sample = now + max(0.5, seconds / 120)
        simulated += 1
        market.second(simulated)
        if simulated % SCRAPE_SECONDS == 0:
            began = time.perf_counter()
            exposition.render(market.core.snapshot(), None, last_render)
            last_render = time.perf_counter() - began
    samples.append((time.perf_counter() - started, rss_bytes()))
    text = exposition.render_snapshot(market.core.snapshot())
    del libraries
    return {
        "after_setup": after_setup,
        "samples": samples,
        "simulated_hours": simulated / 3600,
        "series": sum(1 for line in text.splitlines() if line and not line.startswith("#")),
        "heatmaps": len(market.core.heatmap.coins),
    }


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method; fine for a small mean."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def growth(samples: list[tuple[float, int]]) -> tuple[float, int, int]:
    """(growth ratio, reference RSS, final RSS): the median of the samples in the run's
    second tenth (caches warm) against the median of its last tenth."""
    duration = samples[-1][0]
    reference = [r for t, r in samples if 0.1 * duration <= t <= 0.2 * duration] or [samples[0][1]]
    final = [r for t, r in samples if t >= 0.9 * duration] or [samples[-1][1]]
    start, end = int(statistics.median(reference)), int(statistics.median(final))
    return end / start - 1, start, end


def run(size: Size) -> list[Result]:
    coins, days, hours = (10, 1.0, 2.0) if size.smoke else (50, 7.0, 24.0)
    done = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [
            sys.executable,
            "-m",
            "benchmarks.memory",
            "--seconds",
            str(size.memory_seconds),
            "--coins",
            str(coins),
            "--backfill-days",
            str(days),
            "--window-hours",
            str(hours),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(done.stdout)
    samples = [(float(t), int(r)) for t, r in figures["samples"]]
    ratio, start, end = growth(samples)
    peak = max(r for _, r in samples)
    mb = 1e6
    return [
        Result(
            what="memory",
            workload=f"3 exchanges x {coins} symbols, {hours:g} h of windows, heatmaps for "
            f"{figures['heatmaps']} coins (the default heatmap_coins: top:10; {days:g} days of "
            f"backfill each), {figures['series']:,.0f} series; "
            f"then {size.memory_seconds:g} s running {figures['simulated_hours']:,.0f} "
            "simulated hours (polls every 15 s, scrapes every 15 s)",
            baseline="",
            measured=f"RSS {figures['after_setup'] / mb:.0f} MB after set-up, "
            f"peak {peak / mb:.0f} MB; growth {ratio * 100:+.2f} % "
            f"({start / mb:.1f} -> {end / mb:.1f} MB)",
            ratio="",
            target="RSS < 200 MB, growth < 2 %",
            passed=peak < TARGET_RSS_BYTES and ratio < TARGET_GROWTH,
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--coins", type=int, default=50)
    parser.add_argument("--backfill-days", type=float, default=7.0)
    parser.add_argument("--window-hours", type=float, default=24.0)
    args = parser.parse_args()
    print(json.dumps(measure(args.seconds, args.coins, args.backfill_days, args.window_hours)))


if __name__ == "__main__":
    main()
