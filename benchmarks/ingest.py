"""Ingest: validated liquidation events into the core (counters, size histogram, rolling
windows, heatmap scoring), one thread, the wall clock as the core's clock."""

from __future__ import annotations

import random
import statistics
import time
from typing import TYPE_CHECKING

from benchmarks.common import Result, timed
from exporter.core import Core
from exporter.events import Liquidation, OpenInterest
from exporter.venues import DEFAULT_VENUES

if TYPE_CHECKING:
    from benchmarks.common import Size

# The three default venues: the workload the README figures were measured with.
EXCHANGES = DEFAULT_VENUES
TARGET_PER_SECOND = 200_000.0


def build(coins: int, count: int, seed: int = 0) -> tuple[Core, list[Liquidation]]:
    """A core with every market's open interest (so each coin has a heatmap that scores the
    liquidations) and ``count`` liquidations of the last minute over all markets and sides."""
    rng = random.Random(seed)
    core = Core(EXCHANGES, time.time)
    now_ms = int(time.time() * 1000)
    prices = {f"C{i:02d}": 10 ** rng.uniform(-2, 4.7) for i in range(coins)}
    for coin, price in prices.items():
        for exchange in EXCHANGES:
            for step, coins_oi in enumerate((1e7 / price, 1.1e7 / price)):
                at_ms = now_ms - 60_000 + step * 1000
                core.record_open_interest(
                    OpenInterest(
                        exchange,
                        f"{coin}/USDT:USDT",
                        coin,
                        coins_oi,
                        coins_oi * price,
                        price,
                        at_ms,
                        at_ms,
                    )
                )
    events = []
    names = list(prices)
    for _ in range(count):
        coin = rng.choice(names)
        price = prices[coin] * (1 + rng.gauss(0, 0.02))
        quantity = rng.lognormvariate(7, 2) / price
        events.append(
            Liquidation(
                rng.choice(EXCHANGES),
                f"{coin}/USDT:USDT",
                coin,
                rng.choice(("long", "short")),
                price,
                quantity,
                quantity * price,
                now_ms - rng.randrange(0, 60_000),
                now_ms,
            )
        )
    return core, events


def run(size: Size) -> list[Result]:
    coins = 50
    count = 20_000 if size.smoke else 300_000
    core, events = build(coins, count)
    record = core.record_liquidation

    def ingest() -> None:
        for event in events:
            record(event)

    rates = [count / timed(ingest) for _ in range(size.runs)]
    rate = statistics.median(rates)
    return [
        Result(
            what="ingest",
            workload=f"{count:,} liquidations, 3 exchanges x {coins} symbols x 2 sides, "
            "through Core.record_liquidation: counters, size histogram, 5 rolling windows, "
            "heatmap scoring",
            baseline="",
            measured=f"{rate:,.0f} events/s (min {min(rates):,.0f})",
            ratio="",
            target=">= 200k events/s, one core",
            passed=rate >= TARGET_PER_SECOND,
        )
    ]
