"""Every recorded real frame, replayed through fake exchange -> ccxt.pro -> collector, becomes
exactly the right event: position side, price, coins and USD asserted per frame."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.collector_harness import (
    EXCHANGES,
    TRANSPORTS,
    RecordingCore,
    eventually,
    make_collector,
    running,
)

pytestmark = pytest.mark.integration

if TYPE_CHECKING:
    from exporter.config import Transport
    from tests.conftest import FakeExchangeFactory

FIXTURES = Path(__file__).parent / "fixtures" / "ws"

# (symbol, side, price, coins, exchange time ms) per event, computed by hand from the frames.
EXPECTED = {
    "binance": [
        (
            "BTC/USDT:USDT",
            "long",
            82651.90,
            0.190,
            1791565602120,
        ),  # S=SELL: a long was closed; z not l
        ("XRP/USDT:USDT", "short", 1.4912, 127.2, 1791091174219),
        ("MANTA/USDT:USDT", "long", 0.0722187, 2049.1, 1791091026103),  # z=2049.1, l=245.9
        ("BTC/USDT:USDT", "short", 34959.70, 1.437, 1698871323059),
        ("IOTX/USDT:USDT", "long", 0.06669, 3661.0, 1634653599180),
    ],
    "bybit": [
        (
            "BTC/USDT:USDT",
            "long",
            82396.90,
            0.006,
            1791565600992,
        ),  # S=Buy: a LONG was closed on Bybit
        ("BTC/USDT:USDT", "long", 82394.30, 0.038, 1791565601058),
        ("STRK/USDT:USDT", "long", 0.05165, 2084.9, 1791091285156),
        ("ROSE/USDT:USDT", "short", 0.04499, 20000.0, 1739502302929),
        ("BTC/USDT:USDT", "short", 43511.70, 0.003, 1703485237953),  # the older liquidation.* topic
    ],
    "okx": [
        (
            "BTC/USDT:USDT",
            "long",
            82655.7,
            8.55 * 0.01,
            1791565600771,
        ),  # sz in contracts x ctVal 0.01
        # ctVal 10
        ("CELO/USDT:USDT", "short", 0.09583, 19979 * 10.0, 1791565462608),
    ],
}
# Recorded frames per venue (copied from ../shared/fixtures/ws/; tests/test_venues.py checks
# that every venue has them).
FILES = {"binance": "binance_usdm.jsonl", "bybit": "bybit_linear.jsonl", "okx": "okx_swap.jsonl"}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("venue", EXCHANGES)
async def test_recorded_frames_become_exact_events(
    venue: str, transport: Transport, fake_exchange: FakeExchangeFactory
) -> None:
    expected = EXPECTED[venue]
    symbols = sorted({symbol for symbol, *_ in expected})
    fake = await fake_exchange(venue)
    core = RecordingCore()
    async with running(make_collector(fake, core, symbols, transport=transport)):
        await fake.wait_subscribed(symbols)
        await eventually(lambda: core.health.is_up(venue), "the collector to be up")
        for line in (FIXTURES / FILES[venue]).read_text(encoding="utf-8").splitlines():
            await fake.send_raw(line)
        await eventually(lambda: len(core.liquidations) >= len(expected), "all events")
    assert len(core.liquidations) == len(expected)
    got = sorted(core.liquidations, key=lambda e: (e.timestamp_ms, e.price))
    want = sorted(expected, key=lambda e: (e[4], e[2]))
    for event, (symbol, side, price, coins, timestamp_ms) in zip(got, want, strict=True):
        assert event.exchange == venue
        assert (event.symbol, event.side) == (symbol, side)
        assert event.coin == symbol.split("/")[0]
        assert event.timestamp_ms == timestamp_ms
        assert event.price == pytest.approx(price, rel=1e-12)
        assert event.quantity == pytest.approx(coins, rel=1e-12)
        assert event.notional_usd == pytest.approx(price * coins, rel=1e-12)
    assert core.health.snapshot().invalid == {}
