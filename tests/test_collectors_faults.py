"""Subscriptions the server rejects or never acknowledges, malformed frames, REST failures:
the collector never hangs, reports the exchange down, retries with backoff and recovers."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal

import pytest

from exporter.events import Reason
from exporter.health import Stream
from tests.collector_harness import (
    EXCHANGES,
    TRANSPORTS,
    RecordingCore,
    eventually,
    make_collector,
    running,
)

if TYPE_CHECKING:
    from exporter.config import Transport
    from tests.conftest import FakeExchangeFactory

pytestmark = pytest.mark.integration

SYMBOLS = ("BTC/USDT:USDT",)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("venue", EXCHANGES)
@pytest.mark.parametrize("mode", ["reject", "ignore"])
async def test_failed_subscription_is_retried_and_reported(
    venue: str,
    mode: Literal["reject", "ignore"],
    transport: Transport,
    fake_exchange: FakeExchangeFactory,
) -> None:
    fake = await fake_exchange(venue)
    fake.subscribe_mode = mode
    core = RecordingCore()
    collector = make_collector(fake, core, SYMBOLS, subscribe_timeout=0.3, transport=transport)
    async with running(collector):
        # Open interest polls fine, but the stream never subscribes: the exchange is down.
        await eventually(lambda: core.health.stream_healthy(venue, Stream.OPEN_INTEREST), "OI poll")
        await eventually(lambda: fake.subscriptions_total >= 3, "three subscribe attempts")
        snapshot = core.health.snapshot()
        assert snapshot.up[venue] is False
        assert snapshot.reconnects[venue, Stream.LIQUIDATIONS] >= 2
        # The server recovers: the next retry subscribes and the exchange is up.
        fake.subscribe_mode = "ack"
        await eventually(lambda: core.health.is_up(venue), "up after recovery")
        fake.publish_liquidation("BTC/USDT:USDT", "long", 80_000.0, 0.01, int(time.time() * 1000))
        await eventually(lambda: len(core.liquidations) == 1, "a liquidation after recovery")


MALFORMED: list[str | bytes] = [
    "{bad json",
    b"\x00\x01binary",
    "[1, 2",
    "not json at all",
]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("venue", EXCHANGES)
async def test_malformed_frames_are_counted_and_the_stream_survives(
    venue: str, transport: Transport, fake_exchange: FakeExchangeFactory
) -> None:
    fake = await fake_exchange(venue)
    core = RecordingCore()
    async with running(make_collector(fake, core, SYMBOLS, transport=transport)):
        await fake.wait_subscribed(SYMBOLS)
        for payload in MALFORMED:
            await fake.send_raw(payload)
        # ccxt's receive loop used to die on the first of these; the next frame must arrive.
        fake.publish_liquidation("BTC/USDT:USDT", "short", 81_000.0, 0.02, int(time.time() * 1000))
        await eventually(lambda: len(core.liquidations) == 1, "the valid frame")
        invalid = core.health.snapshot().invalid
        assert invalid.get((venue, Stream.LIQUIDATIONS, Reason.MALFORMED), 0) >= 2
        await eventually(lambda: core.health.is_up(venue), "up")


@pytest.mark.parametrize("venue", EXCHANGES)
async def test_rest_errors_mark_the_poll_down_then_recover(
    venue: str, fake_exchange: FakeExchangeFactory
) -> None:
    fake = await fake_exchange(venue)
    core = RecordingCore()
    async with running(make_collector(fake, core, SYMBOLS)):
        await eventually(lambda: len(core.open_interest) >= 1, "a first reading")
        fake.fail_rest(503, count=3)
        await eventually(
            lambda: core.health.snapshot().reconnects.get((venue, Stream.OPEN_INTEREST), 0) >= 1,
            "the failed poll to be counted",
        )
        readings = len(core.open_interest)
        await eventually(lambda: len(core.open_interest) > readings, "polling to resume")
        await eventually(lambda: core.health.stream_healthy(venue, Stream.OPEN_INTEREST), "up")


@pytest.mark.parametrize("venue", EXCHANGES)
async def test_open_interest_and_mark_price_in_coins_and_usd(
    venue: str, fake_exchange: FakeExchangeFactory
) -> None:
    fake = await fake_exchange(venue)
    fake.set_market_state("ETH/USDT:USDT", open_interest_coins=123_456.7, mark_price=2_950.5)
    core = RecordingCore()
    async with running(make_collector(fake, core, ("ETH/USDT:USDT", "BTC/USDT:USDT"))):
        await eventually(
            lambda: {e.symbol for e in core.open_interest} >= {"ETH/USDT:USDT", "BTC/USDT:USDT"},
            "both symbols",
        )
    eth = next(e for e in core.open_interest if e.symbol == "ETH/USDT:USDT")
    assert (eth.exchange, eth.coin) == (venue, "ETH")
    assert eth.coins == pytest.approx(123_456.7, rel=1e-9)
    assert eth.mark_price == pytest.approx(2_950.5, rel=1e-9)
    assert eth.usd == pytest.approx(123_456.7 * 2_950.5, rel=1e-6)
    assert {e.symbol for e in core.open_interest} == {"ETH/USDT:USDT", "BTC/USDT:USDT"}
