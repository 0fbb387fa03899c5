"""Subscriptions the server rejects or never acknowledges, malformed frames, REST failures:
the collector never hangs, reports the exchange down, retries with backoff and recovers."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal

import pytest

from exporter.events import Reason
from exporter.health import Stream
from exporter.venues import exchange_label
from tests.collector_harness import (
    EXCHANGES,
    VENUE_TRANSPORTS,
    RecordingCore,
    eventually,
    make_collector,
    running,
)

if TYPE_CHECKING:
    from exporter.config import Transport
    from tests.conftest import FakeExchangeFactory

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("venue", "transport"), VENUE_TRANSPORTS)
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
    btc = fake.symbol_of("BTC")
    collector = make_collector(fake, core, [btc], subscribe_timeout=0.3, transport=transport)
    async with running(collector):
        # Open interest polls fine, but the stream never subscribes: the exchange is down.
        await eventually(lambda: core.health.stream_healthy(venue, Stream.OPEN_INTEREST), "OI poll")
        await eventually(lambda: fake.subscriptions_total >= 3, "three subscribe attempts")
        snapshot = core.health.snapshot()
        assert snapshot.up[exchange_label(venue)] is False
        assert snapshot.reconnects[exchange_label(venue), Stream.LIQUIDATIONS] >= 2
        # The server recovers: the next retry subscribes and the exchange is up.
        fake.subscribe_mode = "ack"
        await eventually(lambda: core.health.is_up(venue), "up after recovery")
        fake.publish_liquidation(btc, "long", 80_000.0, 0.01, int(time.time() * 1000))
        await eventually(lambda: len(core.liquidations) == 1, "a liquidation after recovery")


MALFORMED: list[str | bytes] = [
    "{bad json",
    b"\x00\x01binary",
    "[1, 2",
    "not json at all",
]


@pytest.mark.parametrize(("venue", "transport"), VENUE_TRANSPORTS)
async def test_malformed_frames_are_counted_and_the_stream_survives(
    venue: str, transport: Transport, fake_exchange: FakeExchangeFactory
) -> None:
    fake = await fake_exchange(venue)
    core = RecordingCore()
    btc = fake.symbol_of("BTC")
    async with running(make_collector(fake, core, [btc], transport=transport)):
        await fake.wait_subscribed([btc])
        for payload in MALFORMED:
            await fake.send_raw(payload)
        # ccxt's receive loop used to die on the first of these; the next frame must arrive.
        fake.publish_liquidation(btc, "short", 81_000.0, 0.02, int(time.time() * 1000))
        await eventually(lambda: len(core.liquidations) == 1, "the valid frame")
        invalid = core.health.snapshot().invalid
        malformed = invalid.get((exchange_label(venue), Stream.LIQUIDATIONS, Reason.MALFORMED), 0)
        assert malformed >= 2
        await eventually(lambda: core.health.is_up(venue), "up")


@pytest.mark.parametrize("venue", EXCHANGES)
async def test_rest_errors_mark_the_poll_down_then_recover(
    venue: str, fake_exchange: FakeExchangeFactory
) -> None:
    fake = await fake_exchange(venue)
    core = RecordingCore()
    label = exchange_label(venue)
    async with running(make_collector(fake, core, fake.symbols[:1])):
        await eventually(lambda: len(core.open_interest) >= 1, "a first reading")
        fake.fail_rest(503, count=3)
        await eventually(
            lambda: core.health.snapshot().reconnects.get((label, Stream.OPEN_INTEREST), 0) >= 1,
            "the failed poll to be counted",
        )
        readings = len(core.open_interest)
        await eventually(lambda: len(core.open_interest) > readings, "polling to resume")
        await eventually(lambda: core.health.stream_healthy(venue, Stream.OPEN_INTEREST), "up")


@pytest.mark.parametrize("venue", EXCHANGES)
async def test_open_interest_and_mark_price_in_coins_and_usd(
    venue: str, fake_exchange: FakeExchangeFactory
) -> None:
    """Venues state open interest in coins, contracts or USD: each becomes coins and USD (a
    venue of whole USD contracts rounds to one contract, hence rel=1e-6)."""
    fake = await fake_exchange(venue)
    eth_symbol, btc_symbol = fake.symbol_of("ETH"), fake.symbol_of("BTC")
    fake.set_market_state(eth_symbol, open_interest_coins=123_456.7, mark_price=2_950.5)
    core = RecordingCore()
    async with running(make_collector(fake, core, (eth_symbol, btc_symbol))):
        await eventually(
            lambda: {e.symbol for e in core.open_interest} >= {eth_symbol, btc_symbol},
            "both symbols",
        )
    eth = next(e for e in core.open_interest if e.symbol == eth_symbol)
    assert (eth.exchange, eth.coin) == (exchange_label(venue), "ETH")
    assert eth.coins == pytest.approx(123_456.7, rel=1e-6)
    assert eth.mark_price == pytest.approx(2_950.5, rel=1e-9)
    assert eth.usd == pytest.approx(123_456.7 * 2_950.5, rel=1e-6)
    assert {e.symbol for e in core.open_interest} == {eth_symbol, btc_symbol}
