"""REST faults on the open-interest poll: 429 with Retry-After, 418, 5xx, timeouts and slow
answers. The poll backs off (at least Retry-After), `exchange_up` drops and recovers, the other
exchanges never notice, and request rates stay within the exchange's budget."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import pytest

from exporter.fakeexchange import FakeExchange
from exporter.health import Stream
from tests.collector_harness import EXCHANGES, RecordingCore, eventually, make_collector, running

# The open-interest path each collector polls.
OI_PATH = {
    "binance": "/fapi/v1/openInterest",
    "bybit": "/v5/market/tickers",
    "okx": "/api/v5/public/open-interest",
}


class RecordingSleep:
    """Records every delay the collector asks for, then waits at most 50 ms of it."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(min(seconds, 0.05))


@pytest.mark.parametrize("venue", EXCHANGES)
@pytest.mark.parametrize(("status", "retry_after"), [(429, 37.0), (418, 120.0), (503, None)])
async def test_errors_back_off_and_recover_without_touching_the_others(
    venue: str, status: int, retry_after: float | None
) -> None:
    fakes = {name: FakeExchange(name) for name in EXCHANGES}  # type: ignore[arg-type]
    core = RecordingCore()
    sleeps = {name: RecordingSleep() for name in EXCHANGES}
    async with AsyncExitStack() as stack:
        for fake in fakes.values():
            await fake.start()
            stack.push_async_callback(fake.stop)
        for name, fake in fakes.items():
            collector = make_collector(fake, core, ("BTC/USDT:USDT",), sleep=sleeps[name])
            await stack.enter_async_context(running(collector))
        await eventually(lambda: all(core.health.is_up(n) for n in EXCHANGES), "all up")
        fakes[venue].fail_rest(status, count=2, retry_after=retry_after, path_prefix=OI_PATH[venue])
        await eventually(lambda: not core.health.is_up(venue), "the failing exchange down")
        for other in EXCHANGES:
            if other != venue:
                assert core.health.is_up(other)
        await eventually(lambda: core.health.is_up(venue), "recovered", 20)
        assert all(core.health.is_up(n) for n in EXCHANGES)
        failures = core.health.snapshot().reconnects[venue, Stream.OPEN_INTEREST]
        assert failures == 2
    waits = sleeps[venue].delays
    if retry_after is not None:
        # Both rate-limit answers were waited out for at least Retry-After.
        assert sum(d >= retry_after for d in waits) >= 2, waits
    else:
        assert any(0.5 <= d <= 2.0 for d in waits), waits  # backoff from 1 s, jittered
    for other in EXCHANGES:
        if other != venue:
            assert core.health.snapshot().reconnects.get((other, Stream.OPEN_INTEREST), 0) == 0


@pytest.mark.parametrize("venue", EXCHANGES)
async def test_timeouts_and_slow_answers(venue: str) -> None:
    fake = FakeExchange(venue)  # type: ignore[arg-type]
    await fake.start()
    core = RecordingCore()
    try:
        collector = make_collector(fake, core, ("BTC/USDT:USDT",), request_timeout=0.5)
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
    finally:
        await fake.stop()


async def test_request_rates_stay_within_the_budget() -> None:
    """Binance costs one request per symbol and poll: with real time, 10 symbols and the
    shortest interval the config allows (1 s), the rate stays under half of 2400 weight/min."""
    fake = FakeExchange("binance")
    await fake.start()
    core = RecordingCore()
    symbols = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "XRP/USDT:USDT")
    try:
        collector = make_collector(fake, core, symbols, sleep=asyncio.sleep)
        async with running(collector):
            await eventually(lambda: len(core.open_interest) >= 4, "a first poll")
            started, before = time.monotonic(), sum(fake.rest_requests.values())
            await asyncio.sleep(3.0)  # measuring a rate over a fixed span of real time
            rate = (sum(fake.rest_requests.values()) - before) / (time.monotonic() - started) * 60
    finally:
        await fake.stop()
    assert 0 < rate <= 1200, rate
