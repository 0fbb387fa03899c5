"""Capacity: what one exporter's ``/metrics`` costs as venues and symbols grow, for the
capacity model in docs/scaling.md (``python -m benchmarks.capacity``).

Each case (3 / 8 / 15 venues x 10 / 100 / all symbols per venue) runs in a child process that
imports what the exporter imports (ccxt.pro included), builds a ``Core`` of synthetic markets
with every family populated (both sides liquidated in the last hour, open interest, funding
with every field, the three long/short ratios; heatmaps of ``HEATMAP_COINS`` coins), then
measures the real fast writer on OpenMetrics (what Prometheus asks for first): series per
family group, render (snapshot + body) wall and CPU time, gzip of the body, RSS, and
prometheus_client's rendering of the same snapshot as the baseline. Series are counted by the
writer itself (``cryptoliq_scrape_series``), never computed here, so a change of the heatmap
grid shows in the next run.

``--tsdb SECONDS`` instead serves the 3 x all and 15 x all cores with the real app to real
Prometheus and VictoriaMetrics (Debian's binaries) scraping every 15 s: their memory per series
and the scrape durations they record.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from benchmarks.common import Result, machine, markdown, ms, rss_bytes
from exporter.venues import DEFAULT_VENUES, VENUES, exchange_label

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from benchmarks.common import Size
    from exporter.core import Core
    from exporter.metrics import AnyFamily

# "symbols: all": perpetual markets each venue lists (ccxt ``load_markets`` of the venue's
# module), rounded; live counts drift by a few percent a month. ~1,250 on the three default
# venues, ~2,960 on all 13, as the issue and prometheus.yml assume. Two venues beyond the 13
# stand for venues not added yet, at a mid-sized venue's count.
ALL_MARKETS: Final[dict[str, int]] = {
    "binance": 500,  # USD-M perpetuals, USDT and USDC
    "bybit": 500,  # linear perpetuals
    "okx": 250,  # swaps
    "binance_coinm": 35,  # COIN-M perpetuals
    "bybit_inverse": 15,
    "gate": 550,  # USDT futures
    "htx": 200,  # USDT swaps
    "bitget": 450,  # USDT futures
    "deribit": 15,  # inverse and USDC linear perpetuals
    "dydx": 32,  # the collector's cap (MAX_MARKETS): the 32 of the largest open interest
    "kraken": 250,  # PF_ and PI_ perpetuals
    "bitfinex": 40,
    "bitmex": 120,
    "venue14": 250,
    "venue15": 250,
}
VENUE_ORDER: Final = (*VENUES, "venue14", "venue15")
VENUE_COUNTS: Final = (3, 8, 15)
SYMBOL_COUNTS: Final[tuple[int | None, ...]] = (10, 100, None)  # None: all
# top:10, the default, keeps up to ceil(1.5 x 10) = 15 coins' heatmaps (hysteresis): the
# worst case, listed outright so that every case has it (fewer coins, fewer heatmaps).
HEATMAP_COINS: Final = 15
SCRAPE_INTERVAL_SECONDS: Final = 15.0  # provisioning/prometheus/prometheus.yml
SCRAPE_TIMEOUT_SECONDS: Final = 10.0  # Prometheus' default scrape_timeout
# Series Prometheus adds per target and scrape (up, scrape_duration_seconds,
# scrape_samples_scraped, scrape_samples_post_metric_relabeling, scrape_series_added).
SCRAPE_SERIES_PER_TARGET: Final = 5
OI_STEPS: Final = 30  # readings per heatmap market that build its coin's heatmap
OPENMETRICS: Final = "application/openmetrics-text;version=1.0.0"
T0: Final = 1_791_565_600.0
COIN_LABEL: Final = re.compile(r'[{,]coin="([^"]*)"')
Group = Literal["market", "heatmap", "exchange", "fixed"]
GROUPS: Final[tuple[Group, ...]] = ("market", "heatmap", "exchange", "fixed")


@dataclass(frozen=True, slots=True)
class Case:
    venues: int
    symbols: int | None  # per venue, capped at its count; None: all its markets

    @property
    def name(self) -> str:
        return f"{self.venues} x {'all' if self.symbols is None else self.symbols}"

    def markets(self) -> dict[str, int]:
        """Markets per venue: the first ``venues`` of ``VENUE_ORDER`` (the three default
        venues first)."""
        chosen = VENUE_ORDER[: self.venues]
        assert chosen[:3] == DEFAULT_VENUES
        return {v: min(ALL_MARKETS[v], self.symbols or ALL_MARKETS[v]) for v in chosen}


def group_of(family: AnyFamily) -> Group:
    """Which unit a family's series grow with, from its labels: a market (``symbol``; the
    size histogram's exchange x coin x side is one market per coin and exchange), a heatmap
    coin (``coin`` without ``exchange``), an ``exchange`` label (health; ``task`` is one per
    exchange's collector; a venue's second feed shares its exchange's), or nothing (fixed)."""
    labels = family.labels
    if "symbol" in labels or labels == ("exchange", "coin", "side"):
        return "market"
    if "coin" in labels:
        return "heatmap"
    if "exchange" in labels or labels == ("task",):
        return "exchange"
    return "fixed"


class ManualClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def coin_name(index: int) -> str:
    return f"C{index:03d}"


def build(case: Case, seed: int = 0) -> Core:
    """A core of the case's markets, every family populated. Market ``i`` of every venue is
    coin ``i`` (the large coins are listed everywhere); the first ``HEATMAP_COINS`` coins
    have heatmaps, built from ``OI_STEPS`` readings of each of their markets."""
    from exporter.core import Core  # noqa: PLC0415 - the child measures its own imports
    from exporter.events import (  # noqa: PLC0415
        POSITIONING_SOURCES,
        Liquidation,
        LongShortRatio,
        MarketContext,
        OpenInterest,
    )
    from exporter.health import Stream  # noqa: PLC0415
    from exporter.heatmap.selection import HeatmapCoins  # noqa: PLC0415

    rng = random.Random(seed)
    clock = ManualClock(T0)
    markets = case.markets()
    coins = max(markets.values())
    core = Core(
        tuple(markets),
        clock,
        heatmap_coins=HeatmapCoins(coins=tuple(coin_name(i) for i in range(HEATMAP_COINS))),
    )
    price = [10 ** rng.uniform(-3, 5) for _ in range(coins)]
    interest = [5e7 / p for p in price]
    for step in range(OI_STEPS):  # heatmap coins: a walk with growing open interest
        at_ms = int((T0 - (OI_STEPS - step) * 300) * 1000)
        for i in range(min(HEATMAP_COINS, coins)):
            price[i] *= math.exp(rng.gauss(0, 0.004))
            interest[i] *= math.exp(rng.gauss(0.002, 0.01))
            for venue, count in markets.items():
                if i < count:
                    symbol = f"{coin_name(i)}/USDT:USDT"
                    oi = interest[i]
                    core.record_open_interest(
                        OpenInterest(
                            venue, symbol, coin_name(i), oi, oi * price[i], price[i], at_ms, at_ms
                        )
                    )
    now_ms = int(T0 * 1000)
    for venue, count in markets.items():
        for i in range(count):
            coin, symbol, mark = coin_name(i), f"{coin_name(i)}/USDT:USDT", price[i]
            if i >= HEATMAP_COINS:
                oi = interest[i]
                core.record_open_interest(
                    OpenInterest(venue, symbol, coin, oi, oi * mark, mark, now_ms, now_ms)
                )
            core.record_market_context(
                MarketContext(
                    venue,
                    symbol,
                    coin,
                    index_price=mark * 0.9997,
                    funding_rate=1e-4,
                    predicted_funding_rate=1.2e-4,
                    next_funding_ms=now_ms + 3_600_000,
                    funding_interval_s=28_800.0,
                    timestamp_ms=now_ms,
                    received_ms=now_ms,
                )
            )
            for source in POSITIONING_SOURCES:
                core.record_long_short(
                    LongShortRatio(venue, symbol, coin, source, "5m", 1.1, now_ms, now_ms)
                )
            for side in ("long", "short"):
                quantity = rng.lognormvariate(9, 2) / mark
                when = now_ms - rng.randrange(1, 3_000_000)
                core.record_liquidation(
                    Liquidation(
                        venue, symbol, coin, side, mark, quantity, quantity * mark, when, now_ms
                    )
                )
    for venue in markets:  # every stream answered and up
        for stream in Stream:
            core.health.message(venue, stream)
            core.health.mark_up(venue, stream)
    core.health.set_task_count(4 * len(markets))  # as the app does at each scrape
    return core


def measure(case: Case, runs: int, baseline_runs: int) -> dict[str, object]:
    """Build the case, render it ``runs`` times (the fast writer) and ``baseline_runs`` times
    (prometheus_client); RSS in bytes, times in seconds."""
    import ccxt.pro  # noqa: F401, PLC0415 - the exporter's footprint, imported in the child only

    import exporter.app  # noqa: F401, PLC0415
    from exporter import metrics  # noqa: PLC0415
    from exporter.exposition import Exposition, negotiate, reference_body  # noqa: PLC0415

    gc.collect()
    rss_empty = rss_bytes()
    started = time.perf_counter()
    core = build(case)
    build_seconds = time.perf_counter() - started
    gc.collect()
    rss_core = rss_bytes()
    exposition = Exposition()
    body, _ = exposition.render(core.snapshot(), OPENMETRICS, None)  # fills the label caches
    body, _ = exposition.render(core.snapshot(), OPENMETRICS, 0.0)  # with its own counts
    gc.collect()
    rss_rendered = rss_bytes()
    counts = dict(exposition.series or {})
    groups = dict.fromkeys(GROUPS, 0)
    for family in metrics.FAMILIES:
        groups[group_of(family)] += counts[family.exposed_name]
    walls, cpus, zips = [], [], []
    last = None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        body, _ = exposition.render(core.snapshot(), OPENMETRICS, last)
        last = time.perf_counter() - wall
        walls.append(last)
        cpus.append(time.process_time() - cpu)
        began = time.process_time()
        packed = zlib.compressobj(-1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # aiohttp's gzip
        gzipped = packed.compress(body) + packed.flush()
        zips.append(time.process_time() - began)
    negotiated = negotiate(OPENMETRICS)
    baselines = []
    for _ in range(baseline_runs):
        began = time.perf_counter()
        reference_body(core.snapshot(), negotiated, last, series=counts)
        baselines.append(time.perf_counter() - began)
    heatmap_names = tuple(f.exposed_name for f in metrics.FAMILIES if group_of(f) == "heatmap")
    per_coin: dict[str, int] = {}
    for line in body.decode().splitlines():
        if line.startswith(heatmap_names) and (found := COIN_LABEL.search(line)):
            per_coin[found[1]] = per_coin.get(found[1], 0) + 1
    markets = case.markets()
    return {
        "case": case.name,
        "venues": case.venues,
        "symbols": "all" if case.symbols is None else case.symbols,
        "markets": sum(markets.values()),
        "markets_per_venue": markets,
        # Binance COIN-M and Bybit inverse share their exchange's label, and its health series.
        "exchanges": len({exchange_label(v) for v in markets}),
        "heatmaps": len(core.heatmap.coins),
        "coins": max(markets.values()),
        "series": sum(counts.values()),
        "process_series": sum(
            1 for line in body.decode().splitlines() if line.startswith(("process_", "python_"))
        ),
        "groups": groups,
        "families": counts,
        "heatmap_series_per_coin": per_coin,
        "body_bytes": len(body),
        "gzip_bytes": len(gzipped),
        "build_seconds": build_seconds,
        "render_seconds": statistics.median(walls),
        "render_cpu_seconds": statistics.median(cpus),
        "gzip_cpu_seconds": statistics.median(zips),
        "baseline_seconds": statistics.median(baselines) if baselines else None,
        "rss_empty": rss_empty,
        "rss_core": rss_core,
        "rss_rendered": rss_rendered,
    }


def run_case(case: Case, runs: int, baseline_runs: int) -> dict[str, object]:
    """``measure`` in a child process: each case's RSS starts from a fresh interpreter."""
    done = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [
            sys.executable,
            "-m",
            "benchmarks.capacity",
            "--child",
            str(case.venues),
            "all" if case.symbols is None else str(case.symbols),
            str(runs),
            str(baseline_runs),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, object] = json.loads(done.stdout)
    return figures


def cases(*, smoke: bool) -> list[Case]:
    if smoke:
        return [Case(3, 10), Case(3, 20)]
    return [Case(v, s) for v in VENUE_COUNTS for s in SYMBOL_COUNTS]


def model(results: Sequence[Mapping[str, object]]) -> dict[str, float]:
    """Per unit, from the largest case (series are exact per unit: the same in every case) and
    a least-squares fit of RSS and render time over all cases."""
    import numpy as np  # noqa: PLC0415

    largest = max(results, key=lambda r: _num(r, "series"))
    groups = largest["groups"]
    assert isinstance(groups, dict)
    per_market = groups["market"] / _num(largest, "markets")
    per_heatmap = groups["heatmap"] / max(1.0, _num(largest, "heatmaps"))
    per_coin = [n for r in results for n in _per_coin(r)]
    per_venue = groups["exchange"] / _num(largest, "exchanges")
    series = np.array([_num(r, "series") for r in results])
    rss = np.array([_num(r, "rss_rendered") - _num(r, "rss_empty") for r in results])
    render = np.array([_num(r, "render_seconds") for r in results])
    cpu = np.array([_num(r, "render_cpu_seconds") + _num(r, "gzip_cpu_seconds") for r in results])
    units = np.array(
        [[_num(r, "markets"), _num(r, "heatmaps"), 1.0] for r in results], dtype=np.float64
    )
    rss_fit = np.linalg.lstsq(units, rss, rcond=None)[0] if len(results) >= 3 else [0, 0, 0]
    return {
        "series_per_market": per_market,
        "series_per_heatmap_coin": per_heatmap,
        "series_per_exchange": per_venue,
        "series_fixed": float(groups["fixed"]),
        "heatmap_coin_min": float(min(per_coin, default=0)),
        "heatmap_coin_max": float(max(per_coin, default=0)),
        "render_seconds_per_10k_series": float(np.median(render / series) * 1e4),
        "cpu_seconds_per_10k_series": float(np.median(cpu / series) * 1e4),
        "rss_bytes_per_10k_series": float(np.median(rss / series) * 1e4),
        "rss_bytes_per_market": float(rss_fit[0]),
        "rss_bytes_per_heatmap_coin": float(rss_fit[1]),
    }


def _per_coin(figures: Mapping[str, object]) -> list[int]:
    counts = figures["heatmap_series_per_coin"]
    assert isinstance(counts, dict)
    return [int(n) for n in counts.values()]


def _num(figures: Mapping[str, object], key: str) -> float:
    value = figures[key]
    assert isinstance(value, int | float), key
    return float(value)


def samples_per_second(series: float) -> float:
    """Samples per second into the TSDB from one target at the default scrape interval."""
    return (series + SCRAPE_SERIES_PER_TARGET) / SCRAPE_INTERVAL_SECONDS


def table(results: Sequence[Mapping[str, object]]) -> str:
    """The capacity table (Markdown)."""
    header = (
        "venues x symbols",
        "markets",
        "heatmaps",
        "series",
        "samples/s at 15 s",
        "render (snapshot + body)",
        "CPU per scrape (render + gzip)",
        "body (gzip)",
        "RSS (delta over no markets)",
        "prometheus_client",
    )
    rows: list[tuple[str, ...]] = []
    mb = 1e6
    for r in results:
        baseline = r["baseline_seconds"]
        ratio = (
            f"{ms(float(baseline))} ({float(baseline) / _num(r, 'render_seconds'):.1f}x)"
            if isinstance(baseline, float)
            else "—"
        )
        rss_delta = _num(r, "rss_rendered") - _num(r, "rss_empty")
        rss = f"{_num(r, 'rss_rendered') / mb:.0f} MB ({rss_delta / mb:+.0f} MB)"
        rows.append(
            (
                str(r["case"]),
                f"{_num(r, 'markets'):,.0f}",
                f"{_num(r, 'heatmaps'):.0f}",
                f"{_num(r, 'series'):,.0f}",
                f"{samples_per_second(_num(r, 'series')):,.0f}",
                ms(_num(r, "render_seconds")),
                ms(_num(r, "render_cpu_seconds") + _num(r, "gzip_cpu_seconds")),
                f"{_num(r, 'body_bytes') / mb:.1f} MB ({_num(r, 'gzip_bytes') / mb:.2f} MB)",
                rss,
                ratio,
            )
        )
    return markdown(header, rows)


def summary(results: Sequence[Mapping[str, object]]) -> list[str]:
    """The per-unit model in a few lines."""
    unit = model(results)
    heatmap = (
        f"per heatmap coin {unit['series_per_heatmap_coin']:,.1f} "
        f"({unit['heatmap_coin_min']:,.0f} to {unit['heatmap_coin_max']:,.0f} by where the "
        "price sits in its bin-step zone)"
    )
    return [
        (
            f"series per market {unit['series_per_market']:.1f}, {heatmap}, per exchange "
            f"{unit['series_per_exchange']:.1f}, fixed {unit['series_fixed']:.0f} (plus "
            f"process_/python_ {_num(results[0], 'process_series'):.0f})"
        ),
        (
            f"per 10k series: render {ms(unit['render_seconds_per_10k_series'])}, CPU (render + "
            f"gzip) {ms(unit['cpu_seconds_per_10k_series'])}, RSS "
            f"{unit['rss_bytes_per_10k_series'] / 1e6:.1f} MB; RSS fit over the cases: "
            f"{unit['rss_bytes_per_market'] / 1e3:.1f} kB per market, "
            f"{unit['rss_bytes_per_heatmap_coin'] / 1e6:.2f} MB per heatmap coin"
        ),
        (
            f"heatmaps: {HEATMAP_COINS} coins listed (top:10 holds at most 15); every market "
            "liquidated on both sides within the hour, funding with every field, three long/short "
            "ratios: the most series a market has"
        ),
        "markets per venue for 'all': " + ", ".join(f"{v} {n}" for v, n in ALL_MARKETS.items()),
    ]


def run(size: Size) -> list[Result]:
    """The registry's entry: one row per case."""
    runs = size.runs
    results = [
        run_case(case, runs, 1 if size.smoke else min(3, runs)) for case in cases(smoke=size.smoke)
    ]
    notes = tuple(f"capacity: {line}" for line in summary(results)[:2])
    rows: list[Result] = []
    for r in results:
        baseline = r["baseline_seconds"]
        render = _num(r, "render_seconds")
        rows.append(
            Result(
                what=f"capacity, {r['case']}",
                workload=f"{_num(r, 'markets'):,.0f} markets, {_num(r, 'heatmaps'):.0f} "
                f"heatmaps: {_num(r, 'series'):,.0f} series, "
                f"{samples_per_second(_num(r, 'series')):,.0f} samples/s at 15 s",
                baseline=f"prometheus_client: {ms(float(baseline))}"
                if isinstance(baseline, float)
                else "",
                measured=f"render {ms(render)}, CPU with gzip "
                f"{ms(_num(r, 'render_cpu_seconds') + _num(r, 'gzip_cpu_seconds'))}, RSS "
                f"{_num(r, 'rss_rendered') / 1e6:.0f} MB",
                ratio=f"{float(baseline) / render:.1f}x" if isinstance(baseline, float) else "",
                target=f"render < {SCRAPE_TIMEOUT_SECONDS / 10:g} s",
                passed=render < SCRAPE_TIMEOUT_SECONDS / 10,
                notes=notes if not rows else (),
            )
        )
    return rows


# --- the time series databases: real Prometheus and VictoriaMetrics scraping the real app ------

TSDB_READY_SECONDS: Final = 30.0
TSDB_SAMPLE_SECONDS: Final = 5.0  # RSS sampled this often during a run
VM_MAX_SCRAPE_SIZE: Final = "64MiB"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
            text: str = response.read().decode()
            return text
    except OSError:
        return None


def _query(base: str, expression: str) -> float | None:
    """One scalar from a Prometheus-API instant query (the first series), None without."""
    text = _get(f"{base}/api/v1/query?query={urllib.parse.quote(expression)}")
    if text is None:
        return None
    result = json.loads(text)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


async def _tsdbs(case: Case, seconds: float, workdir: Path) -> dict[str, object]:
    """Serve the case's core with the real app; Prometheus and VictoriaMetrics (single node,
    scraping itself) each scrape it every 15 s for ``seconds``; their RSS over their RSS
    before the first scrape, the series they hold and the scrape durations they record."""
    from aiohttp import web  # noqa: PLC0415

    from exporter.app import Exporter, create_app  # noqa: PLC0415
    from exporter.config import Config  # noqa: PLC0415

    core = build(case)
    port, prometheus_port, vm_port = _free_port(), _free_port(), _free_port()
    config = workdir / "scrape.yml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "global": {"scrape_interval": "15s", "scrape_timeout": "10s"},
                "scrape_configs": [
                    {
                        "job_name": "cryptoliq",
                        "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
                    }
                ],
            }
        )
    )
    commands = {
        "prometheus": [
            shutil.which("prometheus") or "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'prometheus'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
        "victoriametrics": [
            shutil.which("victoria-metrics") or "victoria-metrics",
            f"-storageDataPath={workdir / 'vm'}",
            f"-httpListenAddr=127.0.0.1:{vm_port}",
            f"-promscrape.config={config}",
            "-retentionPeriod=1d",
            # The default, 16 MiB, rejects the larger bodies here (~110 bytes per series).
            f"-promscrape.maxScrapeSize={VM_MAX_SCRAPE_SIZE}",
        ],
    }
    bases = {
        "prometheus": f"http://127.0.0.1:{prometheus_port}",
        "victoriametrics": f"http://127.0.0.1:{vm_port}",
    }
    ready = {"prometheus": "/-/ready", "victoriametrics": "/health"}
    processes = {
        name: await asyncio.create_subprocess_exec(
            *command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for name, command in commands.items()
    }
    runner: web.AppRunner | None = None
    try:
        deadline = time.monotonic() + TSDB_READY_SECONDS
        for name, base in bases.items():
            while _get(base + ready[name]) is None:
                if time.monotonic() > deadline or processes[name].returncode is not None:
                    raise RuntimeError(f"{name} did not become ready")
                await asyncio.sleep(0.2)
        idle = {name: rss_bytes(process.pid) for name, process in processes.items()}
        exporter = Exporter(config=Config(), core=core)
        runner = web.AppRunner(create_app(exporter), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        samples: dict[str, list[int]] = {name: [] for name in processes}
        renders: list[float] = []
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            await asyncio.sleep(TSDB_SAMPLE_SECONDS)
            for name, process in processes.items():
                samples[name].append(rss_bytes(process.pid))
            if exporter.last_render_seconds is not None:
                renders.append(exporter.last_render_seconds)
        job = '{job="cryptoliq"}'
        figures: dict[str, object] = {
            "case": case.name,
            "seconds": seconds,
            "exporter_render_seconds_max": max(renders, default=0.0),
        }
        for name, base in bases.items():
            figures[name] = {
                "rss_idle": idle[name],
                "rss_end": samples[name][-1],
                "rss_peak": max(samples[name]),
                "series": _query(base, f"count({job})"),
                "scrapes": _query(base, f"count_over_time(up{job}[1h])"),
                "up": _query(base, f"min_over_time(up{job}[1h])"),
                "samples_scraped": _query(base, f"scrape_samples_scraped{job}"),
                "scrape_seconds_max": _query(
                    base, f"max_over_time(scrape_duration_seconds{job}[1h])"
                ),
                "scrape_seconds_last": _query(base, f"scrape_duration_seconds{job}"),
            }
        return figures
    finally:
        if runner is not None:
            await runner.cleanup()
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                await asyncio.wait_for(process.wait(), timeout=30)
            except TimeoutError:
                process.kill()
                await process.wait()


def tsdb_run(case: Case, seconds: float) -> dict[str, object]:
    """``_tsdbs`` in a scratch directory."""
    with tempfile.TemporaryDirectory(prefix="capacity-tsdb-") as workdir:
        return asyncio.run(_tsdbs(case, seconds, Path(workdir)))


def tsdb_table(runs: Sequence[Mapping[str, object]]) -> str:
    header = (
        "venues x symbols",
        "TSDB",
        "series held",
        "scrapes",
        "scrape duration (max)",
        "RSS idle -> end (peak)",
        "per series",
    )
    rows: list[tuple[str, ...]] = []
    mb = 1e6
    for run in runs:
        for name in ("prometheus", "victoriametrics"):
            tsdb = run[name]
            assert isinstance(tsdb, dict)
            series = float(tsdb["series"] or 0)
            grown = tsdb["rss_end"] - tsdb["rss_idle"]
            rows.append(
                (
                    str(run["case"]),
                    name,
                    f"{series:,.0f}",
                    f"{float(tsdb['scrapes'] or 0):.0f} (up min {tsdb['up']})",
                    ms(float(tsdb["scrape_seconds_max"] or 0)),
                    (
                        f"{tsdb['rss_idle'] / mb:.0f} -> {tsdb['rss_end'] / mb:.0f} MB "
                        f"({tsdb['rss_peak'] / mb:.0f} MB)"
                    ),
                    f"{grown / series / 1e3:.1f} kB" if series else "—",
                )
            )
    return markdown(header, rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.capacity", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="two small cases, one run each")
    parser.add_argument("--runs", type=int, default=7, help="renders per median (default 7)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument(
        "--tsdb",
        type=float,
        metavar="SECONDS",
        help="instead: the real app served to real Prometheus and VictoriaMetrics (Debian "
        "packages) scraping every 15 s for SECONDS, for the 3 x all and 15 x all cases",
    )
    args = parser.parse_args(argv)
    if args.tsdb:
        tsdb_runs = []
        for case in (Case(3, None), Case(15, None)):
            print(f"tsdb {case.name} ...", file=sys.stderr, flush=True)
            tsdb_runs.append(tsdb_run(case, args.tsdb))
        print(tsdb_table(tsdb_runs))
        print()
        print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        print(machine())
        if args.json:
            args.json.write_text(json.dumps({"tsdb": tsdb_runs}, indent=2) + "\n")
        return 0
    if args.child:
        venues, symbols, runs, baseline_runs = args.child
        case = Case(int(venues), None if symbols == "all" else int(symbols))
        print(json.dumps(measure(case, int(runs), int(baseline_runs))))
        return 0
    runs = 1 if args.smoke else args.runs
    results = []
    for case in cases(smoke=args.smoke):
        print(f"capacity {case.name} ...", file=sys.stderr, flush=True)
        results.append(run_case(case, runs, 1 if args.smoke else min(3, runs)))
    about = machine()
    print(table(results))
    print()
    for line in summary(results):
        print(f"- {line}")
    print()
    print(f"runs per median: {runs}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(about)
    if args.json:
        args.json.write_text(
            json.dumps({"cases": results, "model": model(results), "machine": about}, indent=2)
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
