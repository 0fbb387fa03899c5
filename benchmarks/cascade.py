"""A cascade, per venue, through the fake exchange, unmodified ccxt.pro and the real collector:
20,000 distinct frames back to back, then the largest single frames a venue sends (Bybit
14,000 entries, OKX 2,000 ``details``, a Binance combined-stream burst). Every entry must be
counted and ``cryptoliq_liquidations_lost_total`` stay 0; the rate is frames (or entries) from
the first one queued to the last one in the core."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from benchmarks.common import Result
from benchmarks.e2e import SYMBOLS, TimedCore, frames, pipeline

if TYPE_CHECKING:
    from collections.abc import Callable

    from benchmarks.common import Size
    from exporter.config import Transport
    from exporter.events import Side
    from exporter.fakeexchange import FakeExchange
    from exporter.venues import Venue

# Every venue through ccxt.pro, and one through the exporter's own WebSocket client.
RUNS: Final[tuple[tuple[Venue, Transport], ...]] = (
    ("binance", "ccxt"),
    ("bybit", "ccxt"),
    ("okx", "ccxt"),
    ("bybit", "native"),
)
CLIENTS: Final[dict[Transport, str]] = {"ccxt": "ccxt.pro", "native": "native aiohttp client"}
TARGET_FRAMES_PER_SECOND = 20_000.0
FRAMES = 20_000
BYBIT_ENTRIES = 14_000  # one allLiquidation frame, ~1 MB
OKX_DETAILS = 2_000  # one liquidation-orders frame, one data item
BINANCE_BURST = 2_000  # combined-stream frames ({"stream", "data"}) back to back


@dataclass(frozen=True, slots=True)
class Run:
    sent: int  # liquidations the fake exchange wrote to the collector's connection
    counted: int  # liquidations that reached the core
    lost: int  # cryptoliq_liquidations_lost_total, all reasons
    seconds: float  # first frame queued -> last liquidation in the core

    @property
    def complete(self) -> bool:
        return self.sent == self.counted and self.lost == 0

    @property
    def rate(self) -> float:
        return self.counted / self.seconds


async def delivered(core: TimedCore, fake: FakeExchange, queue: Callable[[], int]) -> Run:
    """Queue a burst with ``queue`` (returns the liquidations it sent), wait for the core to
    have them all (or 60 s), and measure."""
    started = time.perf_counter()
    core.expected = queue()
    with suppress(TimeoutError):
        async with asyncio.timeout(60):
            await core.all_in.wait()
    counted = len(core.arrivals)
    sent = sum(1 for row in fake.sent if row.receivers)
    lost = sum(core.health.snapshot().lost.values())
    seconds = (core.arrivals[-1] - started) if core.arrivals else float("inf")
    return Run(sent=sent, counted=counted, lost=lost, seconds=seconds)


def stamped(
    items: list[tuple[str, Side, float, float]],
) -> list[tuple[str, Side, float, float, int]]:
    now_ms = int(time.time() * 1000)
    return [(symbol, side, price, coins, now_ms) for symbol, side, price, coins in items]


async def back_to_back(venue: Venue, count: int, transport: Transport = "ccxt") -> Run:
    """``count`` frames of one liquidation each, encoded first, then all queued at once."""
    core = TimedCore()
    items = stamped(frames(count, seed=sum(map(ord, venue))))
    async with pipeline(core, poll_seconds=60.0, venue=venue, transport=transport) as fake:
        encoded = [frame for item in items for frame in fake.encode([item])]

        def queue() -> int:
            fake.publish_frames(encoded)
            return len(items)

        return await delivered(core, fake, queue)


async def big_frame(venue: Venue, count: int, transport: Transport = "ccxt") -> Run:
    """The venue's largest single push: Bybit ``count`` entries in one frame, OKX ``count``
    details in one data item, Binance ``count`` combined-stream frames back to back."""
    core = TimedCore()
    symbol = SYMBOLS[0]
    items = [item for item in frames(count * 4, seed=7) if item[0] == symbol][:count]
    if len(items) < count:
        raise RuntimeError(f"only {len(items)} distinct {symbol} liquidations")
    async with pipeline(core, poll_seconds=60.0, venue=venue, transport=transport) as fake:
        if venue == "binance":  # the !forceOrder@arr events in their combined-stream envelope
            texts = [
                json.dumps({"stream": "!forceOrder@arr", "data": json.loads(frame.text)})
                for item in stamped(items)
                for frame in fake.encode([item])
            ]
        else:
            (frame,) = fake.encode(stamped(items))  # one symbol: one push
            message = json.loads(frame.text)
            if venue == "okx":  # every detail in the first data item
                details = [d for entry in message["data"] for d in entry["details"]]
                message["data"] = [message["data"][0] | {"details": details}]
            texts = [json.dumps(message)]

        def queue() -> int:
            for text in texts:
                fake.queue_raw(text)
            return len(items)

        return await delivered(core, fake, queue)


BIG: Final = {
    "bybit": (BYBIT_ENTRIES, "one allLiquidation frame of {n:,} entries"),
    "okx": (OKX_DETAILS, "one liquidation-orders frame of {n:,} details"),
    "binance": (BINANCE_BURST, "{n:,} combined-stream frames back to back"),
}


def run(size: Size) -> list[Result]:
    scale = 20 if size.smoke else 1
    runs = 1 if size.smoke else 3
    results = []
    for venue, transport in RUNS:
        bursts = [asyncio.run(back_to_back(venue, FRAMES // scale, transport)) for _ in range(runs)]
        rate = statistics.median(b.rate for b in bursts)
        count, label = BIG[venue]
        count //= scale
        bigs = [asyncio.run(big_frame(venue, count, transport)) for _ in range(runs)]
        complete = all(b.complete for b in bursts + bigs)
        burst_worst = min(bursts, key=lambda b: b.counted - b.sent)
        big_worst = min(bigs, key=lambda b: b.counted - b.sent)
        results.append(
            Result(
                what=f"cascade, {venue}" + ("" if transport == "ccxt" else f" ({transport})"),
                workload=f"{FRAMES // scale:,} distinct frames back to back; "
                + label.format(n=count)
                + f": fake exchange -> {CLIENTS[transport]} -> collector -> core",
                baseline="",
                measured=f"{rate:,.0f} frames/s flat out, counted {burst_worst.counted:,} of "
                f"{burst_worst.sent:,}; big frame "
                f"{statistics.median(b.rate for b in bigs):,.0f} entries/s, counted "
                f"{big_worst.counted:,} of {big_worst.sent:,} (worst runs); lost counter "
                f"{max(b.lost for b in bursts + bigs)}",
                ratio="",
                target=">= 20k frames/s, every entry counted, lost 0",
                passed=complete and rate >= TARGET_FRAMES_PER_SECOND,
            )
        )
    return results
