"""Scrape: the full ``/metrics`` body of a heatmap-dominated core, against prometheus_client
``Gauge``s holding the same series, and event-loop stalls while the real app serves it."""

from __future__ import annotations

import asyncio
import gc
import json
import math
import random
import statistics
import sys
import time
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Gauge,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.common import Result, median_ratio, ms, percentile, timed
from exporter.app import Exporter, create_app
from exporter.config import Config
from exporter.core import Core
from exporter.events import Liquidation, OpenInterest
from exporter.exposition import Exposition
from exporter.heatmap.views import build_view
from exporter.metrics import SnapshotCollector
from exporter.venues import DEFAULT_VENUES

if TYPE_CHECKING:
    from benchmarks.common import Size
    from exporter.core import Snapshot
    from exporter.events import Side

# The three default venues: the workload the README figures were measured with.
EXCHANGES = DEFAULT_VENUES
T0 = 1_791_565_600.0
STEP_SECONDS = 300.0
OI_STEPS = 30  # readings per market that build each coin's heatmap
LIQUIDATED_COINS = 10  # coins whose markets also carry liquidations (windows, counters, sizes)
TARGET_SCRAPE_SECONDS = 0.1
TARGET_SPEEDUP = 3.0
TARGET_STALL_SECONDS = 0.02


class ManualClock:
    """A clock the benchmark sets: heatmaps and windows see the time it says."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def coin_series(core: Core, coin: str, price: float) -> int:
    """Series one coin's heatmap adds to a scrape: the heatmap and its width, the liquidation
    map (3 bands per side), its cumulative curves and width, clusters, at-risk, book ratios."""
    view = build_view(core.heatmap.coins[coin], price)
    heatmap = 2 * view.bin_count + 1
    liquidation_map = 2 * 3 * view.map_count + 2 * view.map_count + 1
    return heatmap + liquidation_map + 2 * len(view.clusters) + 2 * len(view.moves) + 2


def build_core(series: int, seed: int = 0) -> tuple[Core, ManualClock]:
    """A core whose scrape has about ``series`` series, nearly all ``cryptoliq_heatmap_usd``:
    coins priced from 0.001 to 100,000 USD on three exchanges, each with a heatmap built from
    ``OI_STEPS`` readings per market of a random walk with growing open interest, and the first
    ``LIQUIDATED_COINS`` coins' markets with liquidations over the last day."""
    rng = random.Random(seed)
    clock = ManualClock(T0)
    core = Core(EXCHANGES, clock)
    coins = [_add_coin(core, rng, index) for index in range(LIQUIDATED_COINS)]
    now_ms = int(T0 * 1000)
    for coin, price in coins:
        for _ in range(200):
            quantity = rng.lognormvariate(0, 2) * 1000 / price
            at = price * (1 + rng.uniform(-0.05, 0.05))
            when = now_ms - int(rng.uniform(0, 86_000) * 1000)
            side: Side = rng.choice(("long", "short"))
            exchange = rng.choice(EXCHANGES)
            symbol = f"{coin}/USDT:USDT"
            core.record_liquidation(
                Liquidation(exchange, symbol, coin, side, at, quantity, quantity * at, when, now_ms)
            )
    body, _ = Exposition().render(core.snapshot(), None, None)
    total, _ = count_series(body.decode())
    while total < series:
        coin, price = _add_coin(core, rng, len(coins))
        coins.append((coin, price))
        total += coin_series(core, coin, price) + 3 * len(EXCHANGES)
    return core, clock


def _add_coin(core: Core, rng: random.Random, index: int) -> tuple[str, float]:
    """A coin with its three markets' open-interest history: (name, last price)."""
    coin = f"C{index:03d}"
    price = 10 ** rng.uniform(-3, 5)
    oi = 5e7 / price
    for step in range(OI_STEPS):
        price *= math.exp(rng.gauss(0, 0.004))
        oi *= math.exp(rng.gauss(0.002, 0.01))
        at_ms = int((T0 - (OI_STEPS - step) * STEP_SECONDS) * 1000)
        for exchange in EXCHANGES:
            core.record_open_interest(
                OpenInterest(
                    exchange, f"{coin}/USDT:USDT", coin, oi, oi * price, price, at_ms, at_ms
                )
            )
    return coin, price


def gauge_registry(body: str) -> CollectorRegistry:
    """The baseline: every series of ``body`` as a labelled prometheus_client ``Gauge``
    (plus the same process and platform collectors), as a naive exporter would hold them."""
    registry = CollectorRegistry(auto_describe=False)
    gauges: dict[str, Gauge] = {}
    for family in text_string_to_metric_families(body):
        if family.name.startswith(("process_", "python_")):
            continue
        for sample in family.samples:
            gauge = gauges.get(sample.name)
            if gauge is None:
                gauge = Gauge(
                    sample.name,
                    family.documentation,
                    labelnames=sorted(sample.labels),
                    registry=registry,
                )
                gauges[sample.name] = gauge
            (gauge.labels(**sample.labels) if sample.labels else gauge).set(sample.value)
    registry.register(ProcessCollector(registry=None))
    registry.register(PlatformCollector(registry=None))
    return registry


def count_series(body: str) -> tuple[int, int]:
    """(all series, cryptoliq_heatmap_usd series) of a text body."""
    lines = [line for line in body.splitlines() if line and not line.startswith("#")]
    heatmap = sum(1 for line in lines if line.startswith("cryptoliq_heatmap_usd{"))
    return len(lines), heatmap


def bench_body(series: int, size: Size) -> tuple[Result, Core]:
    core, _ = build_core(series)
    exposition = Exposition()
    body, _ = exposition.render(core.snapshot(), None, None)  # also fills the label caches
    total, heatmap = count_series(body.decode())
    registry = gauge_registry(body.decode())

    def measured() -> float:
        return timed(lambda: exposition.render(core.snapshot(), None, 0.01))

    def baseline() -> float:
        return timed(lambda: generate_latest(registry))

    base, fast, ratio = median_ratio(baseline, measured, size.runs)

    def old() -> float:
        return timed(lambda: _render_old(core.snapshot()))

    old_seconds = statistics.median(old() for _ in range(max(1, size.runs // 2)))
    passed = fast < TARGET_SCRAPE_SECONDS and ratio >= TARGET_SPEEDUP
    return (
        Result(
            what=f"scrape, {series / 1000:g}k series",
            workload=f"full /metrics body, {total:,} series ({heatmap:,} heatmap), "
            "snapshot + render",
            baseline=f"Gauges + generate_latest: {ms(base)}",
            measured=ms(fast),
            ratio=f"{ratio:.1f}x",
            target="< 100 ms (50k), >= 3x" if series >= 50_000 else ">= 3x",
            passed=passed if series >= 50_000 else ratio >= TARGET_SPEEDUP,
            notes=(
                (
                    f"scrape {total:,} series: the previous path (SnapshotCollector through "
                    f"prometheus_client) took {ms(old_seconds)}"
                ),
            ),
        ),
        core,
    )


def _render_old(snapshot: Snapshot) -> bytes:
    """The scrape path before exporter.exposition: prometheus_client families."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    registry.register(ProcessCollector(registry=None))
    registry.register(PlatformCollector(registry=None))
    return generate_latest(registry)


# A separate process scrapes, so that its own parsing and gunzipping never run on the loop
# being measured. argv: url, scrapes, pause seconds. Prints the seconds of each scrape.
SCRAPER = """
import gzip, json, sys, time, urllib.request
url, count, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
times = []
for _ in range(count):
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    started = time.perf_counter()
    with urllib.request.urlopen(request) as response:
        body = response.read()
    times.append(time.perf_counter() - started)
    gzip.decompress(body)
    time.sleep(pause)
print(json.dumps(times))
"""


async def _ticker(gaps: list[float], period: float = 0.001) -> None:
    """Sleeps ``period`` again and again; every overshoot is time the loop could not run."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(period)
        gaps.append(time.perf_counter() - started - period)


async def loop_stalls(core: Core, scrapes: int) -> tuple[float, float, float, float]:
    """(largest loop stall while idle, largest and p99 stall during scrapes, median scrape
    seconds) with the real app serving ``core`` and a separate process scraping it."""
    # Start from a collected heap: the set-up's garbage would otherwise be swept by the
    # first full collection, which stalls any Python process alike (20 ms for 50k objects).
    gc.collect()
    exporter = Exporter(config=Config(), core=core)
    runner = web.AppRunner(create_app(exporter), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        idle: list[float] = []
        ticker = asyncio.create_task(_ticker(idle))
        await asyncio.sleep(1.0)
        ticker.cancel()
        busy: list[float] = []
        scraper = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            SCRAPER,
            f"http://127.0.0.1:{port}/metrics",
            str(scrapes),
            "0.05",
            stdout=asyncio.subprocess.PIPE,
        )
        ticker = asyncio.create_task(_ticker(busy))
        out, _ = await scraper.communicate()
        ticker.cancel()
        times: list[float] = json.loads(out)
    finally:
        await runner.cleanup()
    return max(idle), max(busy), percentile(busy, 0.99), statistics.median(times)


def run(size: Size) -> list[Result]:
    sizes = (5_000, 10_000) if size.smoke else (10_000, 50_000)
    results: list[Result] = []
    core: Core | None = None
    for series in sizes:
        result, core = bench_body(series, size)
        results.append(result)
    assert core is not None
    idle, worst, p99, scrape_seconds = asyncio.run(loop_stalls(core, 5 if size.smoke else 20))
    results.append(
        Result(
            what="scrape, event loop",
            workload=f"{5 if size.smoke else 20} gzip scrapes of the largest body over HTTP "
            "from another process; a 1 ms ticker on the app's loop",
            baseline=f"idle loop: max stall {ms(idle)}",
            measured=f"max stall {ms(worst)} (p99 {ms(p99)}); scrape {ms(scrape_seconds)}",
            ratio="",
            target="never > 20 ms",
            passed=worst <= TARGET_STALL_SECONDS,
        )
    )
    return results
