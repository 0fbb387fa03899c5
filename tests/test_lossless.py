"""Lossless in a cascade: every entry of every frame and burst is counted, or counted as lost;
one bad entry never takes its neighbours; identical entries inside one frame are two fills.

Each case goes through the fake exchange, unmodified ccxt.pro and the real collector. The
partial frames are the recorded frames of tests/fixtures/ws/ with one element spoiled.
"""

from __future__ import annotations

import json
import time
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from exporter.events import Liquidation, Reason
from exporter.health import LostReason, Stream
from exporter.venues import exchange_label
from tests.collector_harness import (
    TRANSPORTS,
    VENUE_TRANSPORTS,
    RecordingCore,
    eventually,
    make_collector,
    running,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from exporter.config import Transport
    from exporter.fakeexchange import FakeExchange
    from tests.conftest import FakeExchangeFactory

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent / "fixtures" / "ws"
BTC = "BTC/USDT:USDT"


def recorded(name: str, line: int = 0) -> dict[str, Any]:
    """A recorded frame (tests/fixtures/ws/), as a dict to spoil."""
    text = (FIXTURES / name).read_text(encoding="utf-8").splitlines()[line]
    frame: dict[str, Any] = json.loads(text)
    return frame


def now_ms() -> int:
    return int(time.time() * 1000)


class Collecting(Protocol):
    def __call__(
        self, venue: str, core: RecordingCore, transport: Transport = ...
    ) -> AbstractAsyncContextManager[FakeExchange]: ...


@pytest.fixture
def collecting(fake_exchange: FakeExchangeFactory) -> Collecting:
    """``async with collecting(venue, core[, transport]) as fake``: a subscribed collector of
    ``venue`` (BTC only) on a fake exchange, feeding ``core``."""

    @asynccontextmanager
    async def run(
        venue: str, core: RecordingCore, transport: Transport = "ccxt"
    ) -> AsyncIterator[FakeExchange]:
        fake = await fake_exchange(venue)
        btc = fake.symbol_of("BTC")
        async with running(make_collector(fake, core, [btc], transport=transport)):
            await fake.wait_subscribed([btc])
            await eventually(lambda: core.health.is_up(venue), f"{venue} up")
            yield fake

    return run


def invalid(core: RecordingCore, venue: str) -> dict[Reason, int]:
    return {
        reason: count
        for (exchange, stream, reason), count in core.health.snapshot().invalid.items()
        if exchange == venue and stream is Stream.LIQUIDATIONS and count
    }


def lost(core: RecordingCore, venue: str) -> dict[LostReason, int]:
    return {r: n for (e, r), n in core.health.snapshot().lost.items() if e == venue and n}


async def send_and_settle(
    fake: FakeExchange, core: RecordingCore, frames: list[dict[str, Any]], counted: int
) -> None:
    """Send ``frames``, then wait until the collector has taken them all in: ``counted``
    events plus rejected entries, and one more marker frame after them (frames of one
    connection arrive in order, so once the marker counts, everything before it has)."""
    venue = fake.venue
    for frame in frames:
        await fake.send_raw(json.dumps(frame))
    marker_price = 12_345.0
    fake.publish_liquidation(BTC, "long", marker_price, 1.0, now_ms())
    await eventually(
        lambda: any(e.price == marker_price for e in core.liquidations), f"{venue} marker"
    )
    core.liquidations[:] = [e for e in core.liquidations if e.price != marker_price]
    assert len(core.liquidations) == counted, core.liquidations


# --- bursts -------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_one_bybit_frame_of_14000_entries_counts_every_entry(
    transport: Transport, collecting: Collecting
) -> None:
    core = RecordingCore()
    start = now_ms() - 20_000
    batch = [
        (BTC, "long" if i % 3 else "short", 80_000.0 + i / 10, 0.001, start + i)
        for i in range(14_000)
    ]
    async with collecting("bybit", core, transport) as fake:
        sent = fake.publish_batch(batch)
        assert len({row.frame_id for row in sent}) == 1  # one frame, ~1 MB
        await eventually(lambda: len(core.liquidations) >= 14_000, "14,000 entries", 30)
    assert len(core.liquidations) == 14_000
    assert sum(e.side == "short" for e in core.liquidations) == sum(
        side == "short" for _, side, *_ in batch
    )
    assert invalid(core, "bybit") == {}
    assert lost(core, "bybit") == {}


@pytest.mark.parametrize(("venue", "transport"), VENUE_TRANSPORTS)
async def test_5000_frames_back_to_back_are_all_counted(
    venue: str, transport: Transport, collecting: Collecting
) -> None:
    core = RecordingCore()
    start = now_ms() - 10_000
    async with collecting(venue, core, transport) as fake:
        btc = fake.symbol_of("BTC")
        for i in range(5_000):  # queued without waiting: tens of thousands of frames a second
            fake.publish_liquidation(btc, "long", 80_000.0 + i / 10, 0.01, start + i)
        await eventually(lambda: len(core.liquidations) >= 5_000, "5,000 frames", 30)
    assert len(core.liquidations) == 5_000
    label = exchange_label(venue)
    assert core.health.snapshot().duplicates.get(label, 0) == 0
    assert lost(core, label) == {}


# --- partial frames: each entry stands alone ----------------------------------------------


def bybit_frame(*entries: object) -> dict[str, Any]:
    frame = recorded("bybit_linear.jsonl")
    frame["data"] = list(entries)
    return frame


def bybit_entry(price: float, **changes: object) -> dict[str, Any]:
    entry: dict[str, Any] = {"T": now_ms(), "s": "BTCUSDT", "S": "Buy", "v": "0.01"}
    entry["p"] = f"{price:.1f}"
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("spoiled", "reason"),
    [
        (bybit_entry(80_001.0, s=None), Reason.MISSING_FIELD),  # an entry without "s"
        (5, Reason.WRONG_TYPE),
        (bybit_entry(80_001.0, v="abc"), Reason.WRONG_TYPE),
        (bybit_entry(80_001.0, s="FOOBARUSDT"), Reason.UNKNOWN_SYMBOL),
    ],
)
async def test_a_bad_bybit_entry_does_not_take_its_neighbours(
    spoiled: object, reason: Reason, transport: Transport, collecting: Collecting
) -> None:
    core = RecordingCore()
    frame = bybit_frame(bybit_entry(80_000.0), spoiled, bybit_entry(80_002.0))
    async with collecting("bybit", core, transport) as fake:
        await send_and_settle(fake, core, [frame], counted=2)
    assert sorted(e.price for e in core.liquidations) == [80_000.0, 80_002.0]
    assert invalid(core, "bybit") == {reason: 1}


def okx_frame(*details: object) -> dict[str, Any]:
    frame = recorded("okx_swap.jsonl")
    frame["data"][0]["details"] = list(details)
    return frame


def okx_detail(price: float, **changes: object) -> dict[str, Any]:
    detail: dict[str, Any] = {"bkLoss": "0", "bkPx": f"{price:.1f}", "ccy": "", "posSide": "long"}
    detail |= {"side": "sell", "sz": "3", "ts": str(now_ms())}
    detail.update(changes)
    return detail


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("spoiled", "reason"),
    [
        (okx_detail(80_001.0, sz="abc"), Reason.WRONG_TYPE),
        (okx_detail(80_001.0, sz="-1"), Reason.NOT_POSITIVE),
        (okx_detail(80_001.0, posSide="sideways"), Reason.INVALID_SIDE),
        ("not a detail", Reason.WRONG_TYPE),
    ],
)
async def test_a_bad_okx_detail_does_not_take_its_neighbours(
    spoiled: object, reason: Reason, transport: Transport, collecting: Collecting
) -> None:
    core = RecordingCore()
    frame = okx_frame(okx_detail(80_000.0), spoiled, okx_detail(80_002.0))
    async with collecting("okx", core, transport) as fake:
        await send_and_settle(fake, core, [frame], counted=2)
    assert sorted(e.price for e in core.liquidations) == [80_000.0, 80_002.0]
    assert all(e.quantity == pytest.approx(0.03) for e in core.liquidations)  # 3 x ctVal 0.01
    assert invalid(core, "okx") == {reason: 1}


def binance_without_symbol(kind: str) -> dict[str, Any]:
    frame = recorded("binance_usdm.jsonl", 2)  # a raw /ws event
    if kind == "o.s missing":
        del frame["o"]["s"]
    elif kind == "o missing":
        del frame["o"]
    else:
        frame["o"] = "BTCUSDT"
    return frame


def bybit_without_symbol(kind: str) -> dict[str, Any]:
    frame = recorded("bybit_linear.jsonl")
    if kind == "entry without s":
        del frame["data"][0]["s"]
        frame["data"] = frame["data"][:1]
    else:
        frame["data"] = "BTCUSDT" if kind == "data a string" else None
    return frame


def okx_without_symbol(kind: str) -> dict[str, Any]:
    frame = recorded("okx_swap.jsonl")
    if kind == "instId missing":
        del frame["data"][0]["instId"]
    elif kind == "data [5]":
        frame["data"] = [5]
    else:
        frame["data"] = {}
    return frame


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("venue", "frame", "reason"),
    [
        ("binance", binance_without_symbol("o.s missing"), Reason.MISSING_FIELD),
        ("binance", binance_without_symbol("o missing"), Reason.MISSING_FIELD),
        ("binance", binance_without_symbol("o a string"), Reason.WRONG_TYPE),
        ("bybit", bybit_without_symbol("entry without s"), Reason.MISSING_FIELD),
        ("bybit", bybit_without_symbol("data a string"), Reason.WRONG_TYPE),
        ("bybit", bybit_without_symbol("data null"), Reason.MISSING_FIELD),
        ("okx", okx_without_symbol("instId missing"), Reason.MISSING_FIELD),
        ("okx", okx_without_symbol("data [5]"), Reason.WRONG_TYPE),
        ("okx", okx_without_symbol("data {}"), Reason.WRONG_TYPE),
    ],
)
async def test_a_frame_without_a_symbol_counts_once(
    venue: str, frame: dict[str, Any], reason: Reason, transport: Transport, collecting: Collecting
) -> None:
    core = RecordingCore()
    async with collecting(venue, core, transport) as fake:
        await send_and_settle(fake, core, [frame], counted=0)
    assert invalid(core, venue) == {reason: 1}


# --- de-duplication: across frames only ---------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_identical_entries_in_one_frame_are_two_fills_and_a_resent_frame_counts_once(
    transport: Transport,
    collecting: Collecting,
) -> None:
    core = RecordingCore()
    twin = bybit_entry(80_000.0)
    frame = bybit_frame(twin, dict(twin))
    async with collecting("bybit", core, transport) as fake:
        await send_and_settle(fake, core, [frame], counted=2)
        await send_and_settle(fake, core, [frame], counted=2)  # re-sent after a reconnect
    assert core.health.snapshot().duplicates["bybit"] == 2


# --- loss is counted -----------------------------------------------------------------------


class FailingCore(RecordingCore):
    """The real core, except that it fails on one price: a stand-in for a bug in the core."""

    def record_liquidation(self, event: Liquidation) -> None:
        if event.price == 80_001.0:
            raise RuntimeError("a bug")
        super().record_liquidation(event)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_entry_the_core_fails_on_is_counted_as_lost_and_its_neighbours_count(
    transport: Transport,
    collecting: Collecting,
) -> None:
    core = FailingCore()
    frame = bybit_frame(bybit_entry(80_000.0), bybit_entry(80_001.0), bybit_entry(80_002.0))
    async with collecting("bybit", core, transport) as fake:
        await send_and_settle(fake, core, [frame], counted=2)
    assert lost(core, "bybit") == {LostReason.INTERNAL_ERROR: 1}
    assert invalid(core, "bybit") == {}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_frame_over_the_size_limit_is_counted_as_lost_and_the_stream_recovers(
    transport: Transport, collecting: Collecting
) -> None:
    core = RecordingCore()
    frame = bybit_frame(bybit_entry(80_000.0))
    frame["padding"] = "x" * (11 * 1024 * 1024)  # over both clients' 10 MiB limit
    async with collecting("bybit", core, transport) as fake:
        await fake.send_raw(json.dumps(frame))
        await eventually(lambda: bool(lost(core, "bybit")), "the loss to be counted")
        await fake.wait_subscribed([BTC])  # ccxt reconnects and resubscribes
        await send_and_settle(fake, core, [bybit_frame(bybit_entry(80_002.0))], counted=1)
    assert lost(core, "bybit") == {LostReason.FRAME_TOO_LARGE: 1}
    assert core.health.snapshot().reconnects[("bybit", Stream.LIQUIDATIONS)] >= 1
