"""End to end: frames from the fake exchange through unmodified ccxt.pro (Binance) or the
exporter's own WebSocket client (Gate, a venue ccxt.pro does not stream) and the real collector
into the core (throughput, nothing lost), and from the fake exchange to ``/metrics`` served by
the real app and scraped by another process (latency)."""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Final

from aiohttp import web

from benchmarks.common import Result, ms, percentile
from exporter.app import Exporter, create_app
from exporter.collectors import make_collector
from exporter.config import Config, ExchangeConfig
from exporter.core import Core
from exporter.events import SIDES
from exporter.fakeexchange import DEFAULT_MARKETS, FakeExchange
from exporter.venues import VENUES

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from benchmarks.common import Size
    from exporter.config import Transport
    from exporter.events import Liquidation, Side
    from exporter.venues import Venue

VENUE: Final[Venue] = "binance"
NATIVE_VENUE: Final[Venue] = "gate"  # every liquidation, one all-market channel, native only
SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")
MARKETS = {m.symbol: m for m in DEFAULT_MARKETS}
TARGET_RATE = 5_000.0  # frames per second
TARGET_P99_SECONDS = 0.05


class TimedCore(Core):
    """The real core; also notes when each liquidation reached it (perf_counter seconds)."""

    def __init__(self, expected: int = 0) -> None:
        super().__init__(VENUES, time.time)
        self.arrivals: list[float] = []
        self.expected = expected
        self.all_in = asyncio.Event()  # set once ``expected`` liquidations arrived

    def record_liquidation(self, event: Liquidation) -> None:
        self.arrivals.append(time.perf_counter())
        super().record_liquidation(event)
        if len(self.arrivals) >= self.expected:
            self.all_in.set()


@asynccontextmanager
async def pipeline(
    core: Core, *, poll_seconds: float, venue: Venue = VENUE, transport: Transport = "ccxt"
) -> AsyncIterator[FakeExchange]:
    """A fake ``venue`` on loopback and the real collector feeding ``core``, subscribed."""
    fake = FakeExchange(venue)
    await fake.start()
    config = ExchangeConfig(
        name=venue,
        symbols=SYMBOLS,
        rest_url=fake.rest_url,
        ws_url=fake.ws_url,
        poll_interval_seconds=poll_seconds,
        transport=transport,
    )
    collector = make_collector(config, core, core.health, backfill_hours=0)
    task = asyncio.create_task(collector.run())
    try:
        await fake.wait_subscribed(SYMBOLS, timeout=20)
        yield fake
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        await fake.stop()


def frames(count: int, seed: int = 0) -> list[tuple[str, Side, float, float]]:
    """Distinct liquidations at each market's wire precision: (symbol, side, price, coins).

    Distinct because many share a millisecond here, and the collector drops a liquidation
    identical to one of the same millisecond as a re-sent frame (``exporter.dedup``)."""
    rng = random.Random(seed)
    out: dict[tuple[str, Side, float, float], None] = {}
    while len(out) < count:
        symbol = rng.choice(SYMBOLS)
        market = MARKETS[symbol]
        price = round(market.mark_price * rng.uniform(0.95, 1.05), market.tick_decimals)
        coins = round(float(market.contract_size) * rng.randint(1, 500), market.qty_decimals)
        out[symbol, rng.choice(SIDES), price, coins] = None
    return list(out)


async def publish_paced(
    fake: FakeExchange, items: list[tuple[str, Side, float, float]], rate: float
) -> list[float]:
    """Publish ``items`` one frame each at ``rate`` per second (in 1 ms ticks); the
    perf_counter time each was handed to the fake exchange."""
    sent: list[float] = []
    started = time.perf_counter()
    while len(sent) < len(items):
        due = min(len(items), int((time.perf_counter() - started) * rate) + 1)
        now_ms = int(time.time() * 1000)
        for symbol, side, price, coins in items[len(sent) : due]:
            fake.publish_liquidation(symbol, side, price, coins, now_ms)
            sent.append(time.perf_counter())
        await asyncio.sleep(0.001)
    return sent


async def throughput(
    count: int, rate: float, venue: Venue = VENUE
) -> tuple[int, float, float, float]:
    """(frames delivered, delivered per second, p99 and max seconds from send to core)."""
    core = TimedCore(count)
    items = frames(count)
    async with pipeline(core, poll_seconds=60.0, venue=venue) as fake:
        sent = await publish_paced(fake, items, rate)
        with suppress(TimeoutError):
            async with asyncio.timeout(10 + count / 1000):
                await core.all_in.wait()
        wire = [r for r in fake.sent if r.receivers]
    arrivals = core.arrivals
    delivered = len(arrivals)
    if delivered != count or len(wire) != count:
        return delivered, 0.0, float("inf"), float("inf")
    lags = [a - s for s, a in zip(sent, arrivals, strict=True)]
    per_second = (count - 1) / (arrivals[-1] - sent[0])
    return delivered, per_second, percentile(lags, 0.99), max(lags)


# Another process scrapes /metrics back to back (keep-alive) and prints, per response, when it
# arrived (CLOCK_MONOTONIC, the clock of perf_counter in every process) and the liquidations
# it counted. argv: port, seconds.
SCRAPER = """
import http.client, json, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
connection = http.client.HTTPConnection("127.0.0.1", port)
seen = []
end = time.perf_counter() + seconds
while time.perf_counter() < end:
    connection.request("GET", "/metrics")
    body = connection.getresponse().read().decode()
    arrived = time.perf_counter()
    total = 0.0
    for line in body.splitlines():
        if line.startswith("cryptoliq_liquidations_total{"):
            total += float(line.rsplit(" ", 1)[1])
    seen.append((arrived, total))
print(json.dumps(seen))
"""


async def latency(count: int) -> tuple[list[float], list[float], int]:
    """Seconds from a frame's send to its first appearance in a scraped /metrics, and to its
    arrival in the core; and the number of scrapes. Frames go one at a time, 5 to 30 ms apart
    (random, so they fall anywhere within a scrape)."""
    core = TimedCore()
    rng = random.Random(1)
    items = frames(count, seed=1)
    async with pipeline(core, poll_seconds=1.0) as fake:
        runner = web.AppRunner(create_app(Exporter(config=Config(), core=core)), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            await asyncio.sleep(1.5)  # the first open-interest poll: heatmaps in the scrapes
            duration = count * 0.0175 + 2.0
            scraper = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                SCRAPER,
                str(runner.addresses[0][1]),
                str(duration),
                stdout=asyncio.subprocess.PIPE,
            )
            await asyncio.sleep(0.5)
            sent: list[float] = []
            for symbol, side, price, coins in items:
                now_ms = int(time.time() * 1000)
                fake.publish_liquidation(symbol, side, price, coins, now_ms)
                sent.append(time.perf_counter())
                await asyncio.sleep(rng.uniform(0.005, 0.03))
            out, _ = await scraper.communicate()
        finally:
            await runner.cleanup()
    seen: list[tuple[float, float]] = json.loads(out)
    visible: list[float] = []
    for arrived, total in seen:
        while len(visible) < min(int(total), count):
            visible.append(arrived)
    if len(visible) < count:
        raise RuntimeError(f"only {len(visible)} of {count} frames ever showed in /metrics")
    to_metrics = [v - s for s, v in zip(sent, visible, strict=True)]
    to_core = [a - s for s, a in zip(sent, core.arrivals, strict=True)]
    return to_metrics, to_core, len(seen)


def run(size: Size) -> list[Result]:
    count = 1_000 if size.smoke else 30_000
    runs = 1 if size.smoke else 3
    paced = [asyncio.run(throughput(count, TARGET_RATE)) for _ in range(runs)]
    delivered = min(p[0] for p in paced)
    rate = statistics.median(p[1] for p in paced)
    p99 = statistics.median(p[2] for p in paced)
    burst = [asyncio.run(throughput(count, 50_000.0)) for _ in range(runs)]
    capacity = statistics.median(b[1] for b in burst)
    lost = count - min(b[0] for b in burst)
    native_paced = [asyncio.run(throughput(count, TARGET_RATE, NATIVE_VENUE)) for _ in range(runs)]
    native_delivered = min(p[0] for p in native_paced)
    native_rate = statistics.median(p[1] for p in native_paced)
    native_p99 = statistics.median(p[2] for p in native_paced)
    native_burst = [asyncio.run(throughput(count, 50_000.0, NATIVE_VENUE)) for _ in range(runs)]
    native_capacity = statistics.median(b[1] for b in native_burst)
    native_lost = count - min(b[0] for b in native_burst)
    to_metrics, to_core, scrapes = asyncio.run(latency(40 if size.smoke else 400))
    metrics_p50, metrics_p99 = percentile(to_metrics, 0.5), percentile(to_metrics, 0.99)
    return [
        Result(
            what="ingest, end to end",
            workload=f"{count:,} Binance forceOrder frames at 5,000/s: fake exchange -> "
            "ccxt.pro -> collector -> core, one process",
            baseline="",
            measured=f"{rate:,.0f} frames/s, {count - delivered} lost, send-to-core p99 "
            f"{ms(p99)}; flat out: {capacity:,.0f} frames/s, {lost} lost",
            ratio="",
            target=">= 5k frames/s, none lost",
            passed=delivered == count and rate >= 0.98 * TARGET_RATE and lost == 0,
        ),
        Result(
            what="ingest, end to end, native client",
            workload=f"{count:,} Gate futures.public_liquidates frames at 5,000/s: fake "
            "exchange -> the exporter's aiohttp WebSocket client -> collector -> core",
            baseline="",
            measured=f"{native_rate:,.0f} frames/s, {count - native_delivered} lost, "
            f"send-to-core p99 {ms(native_p99)}; flat out: {native_capacity:,.0f} frames/s, "
            f"{native_lost} lost",
            ratio="",
            target=">= 5k frames/s, none lost",
            passed=native_delivered == count
            and native_rate >= 0.98 * TARGET_RATE
            and native_lost == 0,
        ),
        Result(
            what="latency",
            workload=f"{len(to_metrics)} frames 5-30 ms apart; another process scrapes "
            f"/metrics back to back ({scrapes} scrapes)",
            baseline="",
            measured=f"frame sent -> in /metrics: p50 {ms(metrics_p50)}, "
            f"p99 {ms(metrics_p99)} (-> core: p99 {ms(percentile(to_core, 0.99))})",
            ratio="",
            target="p99 < 50 ms",
            passed=metrics_p99 < TARGET_P99_SECONDS,
        ),
    ]
