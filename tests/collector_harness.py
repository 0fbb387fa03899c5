"""Runs real collectors against the fake exchange: the shared set-up of collector tests."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING

import pytest

from exporter.collectors import ADAPTERS
from exporter.collectors import make_collector as collector_for
from exporter.config import DEFAULT_POSITIONING_SECONDS, ExchangeConfig
from exporter.core import Core
from exporter.shard import WHOLE, Shard
from exporter.venues import VENUES

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

    from exporter.collectors.collector import Collector
    from exporter.config import Transport
    from exporter.events import Liquidation, LongShortRatio, MarketContext, OpenInterest
    from exporter.fakeexchange import FakeExchange
    from exporter.venues import Venue

EXCHANGES = VENUES
# Both clients of the liquidation stream pass the same collector tests.
TRANSPORTS: tuple[Transport, ...] = ("ccxt", "native")


def transports_of(venue: Venue) -> tuple[Transport, ...]:
    """The clients that can carry the venue's stream: the native one always, ccxt.pro where it
    streams the venue's liquidations."""
    return TRANSPORTS if ADAPTERS[venue].CCXT_STREAMS else ("native",)


# Every (venue, client) pair, for the tests every venue passes through each of its clients.
VENUE_TRANSPORTS = [pytest.param(v, t, id=f"{v}-{t}") for v in VENUES for t in transports_of(v)]


class RecordingCore(Core):
    """The real core, also keeping every event it was given (the collector's output)."""

    def __init__(self, venues: Sequence[str] = EXCHANGES) -> None:
        """``venues``: those the health figures are kept for (an exchange of two feeds is up,
        and through its backfill, when both are)."""
        super().__init__(tuple(venues), time.time)
        self.liquidations: list[Liquidation] = []
        self.open_interest: list[OpenInterest] = []
        self.market_context: list[MarketContext] = []
        self.long_short: list[LongShortRatio] = []

    def record_liquidation(self, event: Liquidation) -> None:
        self.liquidations.append(event)
        super().record_liquidation(event)

    def record_open_interest(self, event: OpenInterest) -> None:
        self.open_interest.append(event)
        super().record_open_interest(event)

    def record_market_context(self, event: MarketContext) -> None:
        self.market_context.append(event)
        super().record_market_context(event)

    def record_long_short(self, event: LongShortRatio) -> None:
        self.long_short.append(event)
        super().record_long_short(event)


async def fast_sleep(seconds: float) -> None:
    """Backoff and poll delays shortened so a test sees several retries in a second."""
    await asyncio.sleep(min(seconds, 0.05))


def make_collector(
    fake: FakeExchange,
    core: Core,
    symbols: Sequence[str] | None = ("BTC", "ETH", "SOL"),
    subscribe_timeout: float = 10.0,
    backfill_hours: float = 0.0,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    request_timeout: float = 10.0,
    transport: Transport = "ccxt",
    *,
    positioning: bool = False,
    shard: Shard = WHOLE,
) -> Collector:
    """A collector of ``shard`` on ``fake``. The history backfill is off unless asked for: it
    costs tens of rate-limited requests per market beside the live feeds (tests/test_backfill.py
    covers it).
    So is the long/short-ratio poll: with the tests' short sleeps it would ask without pause,
    a request per market and ratio, through the throttle the other calls share
    (tests/test_market_context.py covers it)."""
    config = ExchangeConfig(
        name=fake.venue,
        all_symbols=symbols is None,
        symbols=tuple(symbols or ()),
        rest_url=fake.rest_url,
        ws_url=fake.ws_url,
        poll_interval_seconds=1.0,
        positioning_interval_seconds=DEFAULT_POSITIONING_SECONDS if positioning else 0.0,
        transport=transport,
    )
    return collector_for(
        config,
        core,
        core.health,
        sleep=sleep or fast_sleep,
        subscribe_timeout=subscribe_timeout,
        backfill_hours=backfill_hours,
        request_timeout=request_timeout,
        shard=shard,
    )


@asynccontextmanager
async def running(collector: Collector) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(collector.run())
    try:
        yield task
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def eventually(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll ``predicate`` until true or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)
