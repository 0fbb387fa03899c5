"""Twenty random WebSocket drops in one run: during subscribe, mid-burst and between bursts.
Every liquidation the fake exchange delivered is counted exactly once (frames the venue re-sends
after the reconnect are de-duplicated), every reconnect is counted, and reconnects do not storm."""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

import pytest

from exporter.events import SIDES
from exporter.health import Stream
from exporter.venues import exchange_label
from tests.collector_harness import (
    VENUE_TRANSPORTS,
    RecordingCore,
    eventually,
    make_collector,
    running,
)
from tests.venues import case_of

if TYPE_CHECKING:
    from exporter.config import Transport
    from exporter.events import Side
    from tests.conftest import FakeExchangeFactory

pytestmark = pytest.mark.integration

DROPS = 20


@pytest.mark.parametrize(("venue", "transport"), VENUE_TRANSPORTS)
async def test_twenty_drops_lose_nothing_and_count_nothing_twice(
    venue: str, transport: Transport, fake_exchange: FakeExchangeFactory
) -> None:
    """A venue that re-sends its recent frames after a reconnect gets the whole burst again
    (lost frames arrive now, the rest twice); one that does not (BitMEX) has each frame
    delivered before its drop, and nothing may count twice."""
    rng = random.Random(f"drops-{venue}")
    replays = case_of(venue).replays_after_reconnect
    fake = await fake_exchange(venue)
    SYMBOLS = fake.symbols[:2]  # noqa: N806 - a constant of the test
    core = RecordingCore()
    unique: set[tuple[str, Side, int]] = set()
    base_ms = int(time.time() * 1000)
    collector = make_collector(fake, core, SYMBOLS, subscribe_timeout=1.0, transport=transport)
    async with running(collector):
        for drop in range(DROPS):
            await fake.wait_subscribed(SYMBOLS, timeout=30)
            burst = [
                (rng.choice(SYMBOLS), rng.choice(SIDES), base_ms + drop * 1000 + i)
                for i in range(rng.randrange(20, 60))
            ]
            unique.update(burst)
            where = rng.choice(["mid-burst", "after-burst", "during-subscribe"])
            cut = rng.randrange(len(burst)) if where == "mid-burst" else len(burst)
            for symbol, side, ts in burst[:cut]:
                price = 80_000.0 if symbol.startswith("BTC") else 3_000.0
                fake.publish_liquidation(symbol, side, price, 0.5, ts)
            if not replays or where == "after-burst":  # delivered, then dropped
                delivered = len(unique) - len(burst) + cut
                await eventually(
                    lambda: len(core.liquidations) >= delivered,  # noqa: B023 - awaited here
                    "the frames before the drop",
                )
            if where == "during-subscribe":
                # Drop the next connection right after it subscribes, before the ack.
                fake.subscribe_mode = "ignore"
                await asyncio.sleep(0)
            assert await fake.drop_connections() >= 0
            if where == "during-subscribe":
                subscriptions = fake.subscriptions_total
                await eventually(
                    lambda: fake.subscriptions_total > subscriptions,  # noqa: B023 - awaited here
                    "resubscribe",
                )
                await fake.drop_connections()
                fake.subscribe_mode = "ack"
            await fake.wait_subscribed(SYMBOLS, timeout=30)
            # The venue re-sends the whole burst after the reconnect: lost frames arrive now,
            # the others arrive twice.
            for symbol, side, ts in burst if replays else burst[cut:]:
                price = 80_000.0 if symbol.startswith("BTC") else 3_000.0
                fake.publish_liquidation(symbol, side, price, 0.5, ts)
            expected = len(unique)
            await eventually(
                lambda: len(core.liquidations) >= expected,  # noqa: B023 - awaited here
                "the burst",
                20,
            )
        # A last frame as a barrier: the stream is in order, so once it is counted, any late
        # duplicate of an earlier frame has been counted (or skipped) too.
        sentinel: tuple[str, Side, int] = (SYMBOLS[0], "long", base_ms + DROPS * 1000 + 999)
        unique.add(sentinel)
        fake.publish_liquidation(sentinel[0], "long", 80_000.0, 0.5, sentinel[2])
        # (Without exchange times, BitMEX's events carry the receive time: count them instead.)
        await eventually(
            lambda: (
                any(e.timestamp_ms == sentinel[2] for e in core.liquidations)
                or (not replays and len(core.liquidations) >= len(unique))
            ),
            "barrier",
        )
        snapshot = core.health.snapshot()
    assert len(core.liquidations) == len(unique)
    if replays:  # a venue without exchange times (BitMEX) stamps the receive time
        assert {(e.symbol, e.side, e.timestamp_ms) for e in core.liquidations} == unique
    label = exchange_label(venue)
    reconnects = snapshot.reconnects[label, Stream.LIQUIDATIONS]
    assert reconnects >= DROPS
    # No storm: about one connection per drop (plus the subscribe-phase drops and timeouts).
    assert fake.connections_total <= 2 * DROPS + 2, fake.connections_total
    assert not replays or snapshot.duplicates[label] > 0
