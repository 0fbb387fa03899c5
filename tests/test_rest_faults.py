"""REST faults on the open-interest poll: 429 with Retry-After, 418, 5xx, timeouts and slow
answers. The poll backs off (at least Retry-After), `exchange_up` drops and recovers, the other
exchanges never notice, and request rates stay within the exchange's budget."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import pytest

from exporter.health import Stream
from exporter.venues import DEFAULT_VENUES, exchange_label
from tests.collector_harness import EXCHANGES, RecordingCore, eventually, make_collector, running
from tests.venues import case_of

if TYPE_CHECKING:
    from exporter.venues import Venue
    from tests.conftest import FakeExchangeFactory

pytestmark = pytest.mark.integration


def neighbour(venue: Venue) -> Venue:
    """A default venue of another exchange, to show one venue's faults do not touch it."""
    return next(v for v in DEFAULT_VENUES if exchange_label(v) != exchange_label(venue))


class RecordingSleep:
    """Records every delay the collector asks for, then waits at most 50 ms of it."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(min(seconds, 0.05))


# Every fault on the default venues; on the others (the same retry code, their own error
# bodies, paths and Retry-After units) the rate limit with Retry-After.
FAULTS = [(429, 37.0), (418, 120.0), (503, None)]
CASES = [
    pytest.param(venue, status, wait, id=f"{status}-{venue}")
    for venue in EXCHANGES
    for status, wait in (FAULTS if venue in DEFAULT_VENUES else FAULTS[:1])
]


@pytest.mark.parametrize(("venue", "status", "retry_after"), CASES)
async def test_errors_back_off_and_recover_without_touching_the_others(
    venue: Venue, status: int, retry_after: float | None, fake_exchange: FakeExchangeFactory
) -> None:
    venues = (venue, neighbour(venue))
    fakes = {name: await fake_exchange(name) for name in venues}
    core = RecordingCore()
    sleeps = {name: RecordingSleep() for name in venues}
    oi_path = case_of(venue).oi_path
    async with AsyncExitStack() as stack:
        for name, fake in fakes.items():
            collector = make_collector(fake, core, fake.symbols[:1], sleep=sleeps[name])
            await stack.enter_async_context(running(collector))
        await eventually(lambda: all(core.health.is_up(n) for n in venues), "all up")
        fakes[venue].fail_rest(status, count=2, retry_after=retry_after, path_prefix=oi_path)
        await eventually(lambda: not core.health.is_up(venue), "the failing exchange down")
        assert core.health.is_up(venues[1])
        await eventually(lambda: core.health.is_up(venue), "recovered", 20)
        assert all(core.health.is_up(n) for n in venues)
        failures = core.health.snapshot().reconnects[exchange_label(venue), Stream.OPEN_INTEREST]
        assert failures == 2
    waits = sleeps[venue].delays
    if retry_after is not None:
        # Both rate-limit answers were waited out for at least Retry-After.
        assert sum(d >= retry_after for d in waits) >= 2, waits
    else:
        assert any(0.5 <= d <= 2.0 for d in waits), waits  # backoff from 1 s, jittered
    other = exchange_label(venues[1])
    assert core.health.snapshot().reconnects.get((other, Stream.OPEN_INTEREST), 0) == 0


@pytest.mark.parametrize("venue", EXCHANGES)
async def test_timeouts_and_slow_answers(venue: str, fake_exchange: FakeExchangeFactory) -> None:
    fake = await fake_exchange(venue)
    core = RecordingCore()
    collector = make_collector(fake, core, fake.symbols[:1], request_timeout=0.5)
    async with running(collector):
        await eventually(lambda: core.health.is_up(venue), "up")
        fake.rest_delay = 0.3  # slow but within the timeout: still up
        readings = len(core.open_interest)
        await eventually(lambda: len(core.open_interest) > readings + 2, "slow readings")
        assert core.health.is_up(venue)
        fake.rest_delay = 2.0  # past the timeout: down
        await eventually(lambda: not core.health.is_up(venue), "down on timeouts", 20)
        fake.rest_delay = 0.0
        await eventually(lambda: core.health.is_up(venue), "recovered", 20)


async def test_request_rates_stay_within_the_budget(fake_exchange: FakeExchangeFactory) -> None:
    """Binance costs one request per symbol and poll: with real time, 10 symbols and the
    shortest interval the config allows (1 s), the rate stays under half of 2400 weight/min."""
    fake = await fake_exchange("binance")
    core = RecordingCore()
    symbols = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "XRP/USDT:USDT")
    collector = make_collector(fake, core, symbols, sleep=asyncio.sleep)
    async with running(collector):
        await eventually(lambda: len(core.open_interest) >= 4, "a first poll")
        started, before = time.monotonic(), sum(fake.rest_requests.values())
        await asyncio.sleep(3.0)  # measuring a rate over a fixed span of real time
        rate = (sum(fake.rest_requests.values()) - before) / (time.monotonic() - started) * 60
    assert 0 < rate <= 1200, rate
