"""Every recorded real frame (tests/fixtures/ws/, see tests/venues/), replayed through fake
exchange -> client -> collector, becomes exactly the expected events (position side, price,
coins, USD, time) or the expected rejections: asserted frame by frame, on every venue and
through each client that can carry its stream."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

import pytest

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

pytestmark = pytest.mark.integration

if TYPE_CHECKING:
    from exporter.config import Transport
    from exporter.events import Reason
    from tests.conftest import FakeExchangeFactory


def invalid_by_reason(core: RecordingCore, label: str) -> Counter[Reason]:
    found: Counter[Reason] = Counter()
    for (exchange, stream, reason), n in core.health.snapshot().invalid.items():
        if exchange == label and stream is Stream.LIQUIDATIONS:
            found[reason] += n
    return found


@pytest.mark.parametrize(("venue", "transport"), VENUE_TRANSPORTS)
async def test_recorded_frames_become_exact_events(
    venue: str, transport: Transport, fake_exchange: FakeExchangeFactory
) -> None:
    case = case_of(venue)
    label = exchange_label(venue)
    symbols = case.watched()
    fake = await fake_exchange(venue)
    core = RecordingCore()
    async with running(make_collector(fake, core, symbols, transport=transport)):
        await fake.wait_subscribed(symbols)
        await eventually(lambda: core.health.is_up(venue), "the collector to be up")
        # A marker liquidation after each recorded frame: frames of one connection arrive in
        # order, so once the marker is in, the frame before it has been taken whole (a pong
        # or a count of frames would not say that).
        marker_symbol = symbols[0]
        market = fake.market(marker_symbol)
        for recorded in case.recorded:
            where = f"{recorded.file}:{recorded.line} ({recorded.origin})"
            events_before = len(core.liquidations)
            invalid_before = invalid_by_reason(core, label)
            sent_ms = int(time.time() * 1000)
            await fake.send_raw(recorded.text())
            marker = fake.publish_liquidation(
                marker_symbol, "long", market.mark_price * 1.0123, 1.0, sent_ms
            )
            assert marker.price is not None

            def is_marker(price: float, near: float = marker.price) -> bool:
                """Within the venue's tick of the marker's price (1.23 % above the mark, far
                from every recorded price)."""
                return abs(price - near) <= near * 1e-4

            def marked(events_before: int = events_before) -> bool:
                return any(is_marker(e.price) for e in core.liquidations[events_before:])

            await eventually(marked, f"{where} to be taken")
            markers = [e for e in core.liquidations[events_before:] if is_marker(e.price)]
            assert len(markers) == 1, where
            core.liquidations.remove(markers[0])
            received_ms = int(time.time() * 1000)
            got = core.liquidations[events_before:]
            assert len(got) == len(recorded.events), (where, got)
            for event, want in zip(got, recorded.events, strict=True):
                assert event.exchange == label, where
                assert (event.symbol, event.side) == (want.symbol, want.side), where
                assert event.coin == want.symbol.split("/")[0], where
                if want.timestamp_ms is None:  # the venue states no time: the receive time
                    assert sent_ms <= event.timestamp_ms <= received_ms, where
                else:
                    assert event.timestamp_ms == want.timestamp_ms, where
                assert event.price == pytest.approx(want.price, rel=1e-12), where
                assert event.quantity == pytest.approx(want.coins, rel=1e-12), where
                assert event.notional_usd == pytest.approx(want.usd, rel=1e-12), where
            rejected = invalid_by_reason(core, label) - invalid_before
            assert dict(rejected) == dict(recorded.rejected), where
