"""The native WebSocket client's own duties (the shared collector tests run it through frames,
bursts, drops and fuzz): subscribe requests as each venue takes them, and keepalive: pings
answered keep the connection, pings unanswered end it and it is re-made."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import TYPE_CHECKING, ClassVar

import pytest

from exporter.collectors import ADAPTERS
from exporter.collectors.binance import BinanceVenue
from exporter.collectors.bybit import BybitVenue
from exporter.collectors.collector import Collector
from exporter.collectors.okx import OkxVenue
from exporter.config import ExchangeConfig
from exporter.health import Stream
from exporter.venues import exchange_label
from tests.collector_harness import EXCHANGES, RecordingCore, eventually, running

if TYPE_CHECKING:
    from exporter.collectors.venue import NativeFeed, VenueAdapter
    from exporter.venues import Venue
    from tests.conftest import FakeExchangeFactory


def test_subscribe_requests_follow_each_venues_limits() -> None:
    ids = [f"C{i}USDT" for i in range(25)]
    bybit = BybitVenue().native_subscriptions(ids)
    assert [len(r["args"]) for r in bybit] == [10, 10, 5]  # at most 10 topics a request
    assert bybit[0] == {"op": "subscribe", "args": [f"allLiquidation.C{i}USDT" for i in range(10)]}
    binance = BinanceVenue().native_subscriptions(ids * 10)
    assert [(len(r["params"]), r["id"]) for r in binance] == [(100, 1), (100, 2), (50, 3)]
    assert binance[0]["params"][0] == "c0usdt@forceOrder"  # stream names are lower case
    assert BinanceVenue().native_subscriptions(None) == [
        {"method": "SUBSCRIBE", "params": ["!forceOrder@arr"], "id": 1}
    ]
    okx = {"op": "subscribe", "args": [{"channel": "liquidation-orders", "instType": "SWAP"}]}
    assert OkxVenue().native_subscriptions(ids) == OkxVenue().native_subscriptions(None) == [okx]


def quick(venue: Venue) -> VenueAdapter:
    """The venue's adapter with a 0.2 s keepalive, so a test sees several in a second."""
    base = ADAPTERS[venue]

    class Quick(base):  # type: ignore[valid-type, misc]  # a registry value as a base class
        NATIVE: ClassVar[NativeFeed] = dataclasses.replace(base.NATIVE, keepalive_seconds=0.2)

    return Quick()


@pytest.mark.integration
@pytest.mark.parametrize("venue", EXCHANGES)
async def test_answered_pings_keep_the_connection_and_unanswered_ones_end_it(
    venue: Venue, fake_exchange: FakeExchangeFactory
) -> None:
    fake = await fake_exchange(venue)
    core = RecordingCore()
    btc = fake.symbol_of("BTC")
    label = exchange_label(venue)
    config = ExchangeConfig(
        name=venue,
        symbols=(btc,),
        rest_url=fake.rest_url,
        ws_url=fake.ws_url,
        transport="native",
    )
    # Real sleeps: the keepalive's cadence is what is tested.
    collector = Collector(quick(venue), config, core, core.health, sleep=asyncio.sleep)
    async with running(collector):
        await fake.wait_subscribed([btc])
        await eventually(lambda: core.health.is_up(venue), "up")
        # No liquidations: only keepalive traffic, for over twice the 0.6 s of silence that
        # would end the connection.
        pings = fake.pings_total
        await eventually(lambda: fake.pings_total - pings >= 7, "seven answered pings")
        assert core.health.snapshot().reconnects.get((label, Stream.LIQUIDATIONS), 0) == 0
        fake.ping_mode = "ignore"
        await eventually(
            lambda: core.health.snapshot().reconnects.get((label, Stream.LIQUIDATIONS), 0) >= 1,
            "the silent connection dropped",
        )
        fake.ping_mode = "answer"
        await fake.wait_subscribed([btc])
        fake.publish_liquidation(btc, "long", 80_000.0, 0.01, int(time.time() * 1000))
        await eventually(lambda: len(core.liquidations) == 1, "a liquidation after it")
