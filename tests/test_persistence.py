"""Snapshots: a restart keeps the day's windows and the heatmap; a bad snapshot is ignored."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from typing import TYPE_CHECKING

import aiohttp
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter import persistence
from exporter.core import Core
from exporter.shard import WHOLE, Shard
from tests.collector_harness import EXCHANGES
from tests.conftest import FakeClock, make_liquidation, make_open_interest
from tests.test_lifecycle import free_port

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from exporter.fakeexchange import FakeExchange
    from tests.conftest import FakeExchangeFactory

pytestmark = pytest.mark.integration


def busy_core(clock: FakeClock) -> Core:
    core = Core(EXCHANGES, clock)
    for i in range(50):
        clock.now += 30
        core.record_liquidation(make_liquidation(clock, notional_usd=1000.0 + i, quantity=0.0125))
        core.record_open_interest(
            make_open_interest(clock, coins=1000.0 + 10 * i, mark_price=2900.0 + i)
        )
    return core


def test_round_trip_keeps_windows_and_heatmap(tmp_path: Path, clock: FakeClock) -> None:
    core = busy_core(clock)
    persistence.save(core, tmp_path)
    restored = Core(EXCHANGES, clock)
    assert persistence.restore(restored, tmp_path)
    before, after = core.snapshot(), restored.snapshot()
    assert after.windows.keys == before.windows.keys
    np.testing.assert_array_equal(after.windows.usd, before.windows.usd)
    np.testing.assert_array_equal(after.windows.orders, before.windows.orders)
    np.testing.assert_array_equal(after.windows.largest, before.windows.largest)
    assert [v.coin for v in after.heatmap.views] == ["ETH"]
    np.testing.assert_array_equal(after.heatmap.views[0].usd, before.heatmap.views[0].usd)
    assert after.heatmap.views[0].usd.sum() > 0
    # Time goes on after a restore: the 5-minute window empties, the 24 h one does not.
    clock.now += 3600
    totals = restored.snapshot().windows
    assert totals.usd[0, 0] == 0.0
    assert totals.usd[0, 4] == before.windows.usd[0, 4]
    # And the restored model keeps updating.
    restored.record_open_interest(make_open_interest(clock, coins=3000.0, mark_price=2950.0))
    assert restored.snapshot().heatmap.views[0].usd.sum() > after.heatmap.views[0].usd.sum()


def corrupt(data: bytes) -> bytes:
    return data[:100] + bytes(reversed(data[100:200])) + data[200:]


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        corrupt,
        lambda _data: b"not a snapshot at all",
        lambda _data: b"",
        lambda _data: persistence.encode({"note": "a header, no state"}, {}),
    ],
)
def test_a_bad_snapshot_means_a_warned_fresh_start(
    tmp_path: Path,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[bytes], bytes],
) -> None:
    persistence.save(busy_core(clock), tmp_path)
    path = tmp_path / persistence.FILE_NAME
    path.write_bytes(damage(path.read_bytes()))
    core = Core(EXCHANGES, clock)
    with caplog.at_level(logging.WARNING):
        assert not persistence.restore(core, tmp_path)
    assert "starting fresh" in caplog.text
    assert len(core.snapshot().windows.keys) == 0


def test_another_format_version_is_not_trusted(
    tmp_path: Path,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(persistence, "FORMAT_VERSION", 999)
    persistence.save(busy_core(clock), tmp_path)
    monkeypatch.undo()
    with caplog.at_level(logging.WARNING):
        assert not persistence.restore(Core(EXCHANGES, clock), tmp_path)
    assert "format version 999" in caplog.text


def test_a_snapshot_of_another_shard_is_not_restored(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Its windows and positions are other markets': restoring them would count them twice."""
    core = busy_core(clock)
    core.shard = Shard(1, 2)
    persistence.save(core, tmp_path)
    for shard in (Shard(2, 2), Shard(1, 3), WHOLE):
        with caplog.at_level(logging.WARNING):
            assert not persistence.restore(Core(EXCHANGES, clock, shard=shard), tmp_path)
        assert f"a snapshot of shard 1/2, this exporter serves {shard}" in caplog.text
    assert persistence.restore(Core(EXCHANGES, clock, shard=Shard(1, 2)), tmp_path)


def test_other_heatmap_settings_keep_the_windows(tmp_path: Path, clock: FakeClock) -> None:
    from exporter.heatmap import HeatmapParams  # noqa: PLC0415

    persistence.save(busy_core(clock), tmp_path)
    core = Core(EXCHANGES, clock, heatmap=HeatmapParams(bin_fraction=0.005))
    assert persistence.restore(core, tmp_path)
    assert len(core.snapshot().windows.keys) == 1
    assert core.snapshot().heatmap.views == ()


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path: Path, clock: FakeClock) -> None:
    core = busy_core(clock)
    persistence.save(core, tmp_path)
    persistence.save(core, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [persistence.FILE_NAME]
    header, _ = persistence.decode((tmp_path / persistence.FILE_NAME).read_bytes())
    assert header["version"] == persistence.FORMAT_VERSION
    json.dumps(header)


def window_usd(text: str, window: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "cryptoliq_liquidations_window_usd":
            total += sum(s.value for s in family.samples if s.labels["window"] == window)
    return total


async def scrape_24h(session: aiohttp.ClientSession, url: str) -> float | None:
    try:
        async with session.get(url) as response:
            return window_usd(await response.text(), "24h")
    except aiohttp.ClientError:
        return None


async def wait_for(predicate: Callable[[], Awaitable[bool]], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(0.1)


def test_a_failed_final_snapshot_is_logged_not_raised(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        persistence.final_save(busy_core(clock), blocker)
    assert "final snapshot to" in caplog.text


def bybit_only_config(tmp_path: Path, fake: FakeExchange, interval: float) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"exchanges:\n  bybit:\n    rest_url: {fake.rest_url}\n    ws_url: {fake.ws_url}\n"
        "enabled_exchanges: [bybit]\n"
        f"state_dir: {tmp_path / 'state'}\nsnapshot_interval_seconds: {interval}\n"
        "backfill_hours: 0\n",
        encoding="utf-8",
    )
    return config


def exporter_command(config: Path, port: int) -> list[str]:
    return [
        *("-m", "exporter", "--config", str(config)),
        *("--port", str(port), "--listen-address", "127.0.0.1"),
    ]


class Run:
    """The real exporter as processes (one at a time) on one port, against a fake Bybit; every
    process still running at the end is killed."""

    def __init__(self, tmp_path: Path, fake: FakeExchange, interval: float) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.state = tmp_path / "state" / persistence.FILE_NAME
        self._fake = fake
        self._command = exporter_command(bybit_only_config(tmp_path, fake, interval), port)
        self._processes: list[asyncio.subprocess.Process] = []

    async def start(self) -> asyncio.subprocess.Process:
        quiet = asyncio.subprocess.DEVNULL
        process = await asyncio.create_subprocess_exec(
            sys.executable, *self._command, stdout=quiet, stderr=quiet
        )
        self._processes.append(process)
        return process

    async def first_batch(self, session: aiohttp.ClientSession) -> tuple[float, int]:
        """20 long liquidations of 40,000 USD, once subscribed; returns their USD and the time
        of the first, after the exporter shows them all."""
        await self._fake.wait_subscribed(["BTC/USDT:USDT"], timeout=30)
        now = int(time.time() * 1000)
        for i in range(20):
            self._fake.publish_liquidation("BTC/USDT:USDT", "long", 80_000.0, 0.5, now + i)
        truth = 20 * 40_000.0

        async def all_seen() -> bool:
            return await scrape_24h(session, self.url) == truth

        await wait_for(all_seen, "the first batch", 20)
        return truth, now

    async def restarted_total(self, session: aiohttp.ClientSession) -> float | None:
        """Start the exporter again; its 24 h total once it serves."""
        await self.start()

        async def serving() -> bool:
            return await scrape_24h(session, self.url) is not None

        await wait_for(serving, "the restarted exporter", 30)
        return await scrape_24h(session, self.url)

    async def close(self) -> None:
        for process in self._processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_sigterm_writes_a_final_snapshot_with_everything(
    tmp_path: Path, fake_exchange: FakeExchangeFactory
) -> None:
    """No periodic snapshot within the test: what the restart shows, SIGTERM's snapshot kept,
    and it was taken after the collector stopped, so nothing that arrived is missing."""
    run = Run(tmp_path, await fake_exchange("bybit"), interval=3600)
    try:
        async with aiohttp.ClientSession() as session:
            first = await run.start()
            truth, _ = await run.first_batch(session)
            assert not run.state.exists()
            first.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(first.wait(), 10) == 0
            assert run.state.exists()
            assert await run.restarted_total(session) == truth
    finally:
        await run.close()


async def test_kill_9_and_restart_keeps_the_day(
    tmp_path: Path, fake_exchange: FakeExchangeFactory
) -> None:
    """kill -9 mid-run, restart: 24 h totals within one snapshot interval of the truth."""
    fake = await fake_exchange("bybit")
    run = Run(tmp_path, fake, interval=1)
    try:
        async with aiohttp.ClientSession() as session:
            first = await run.start()
            truth, now = await run.first_batch(session)
            seen = time.time()

            async def snapshot_after() -> bool:
                return run.state.exists() and run.state.stat().st_mtime > seen

            await wait_for(snapshot_after, "a snapshot", 20)
            # Sent after that snapshot, then killed with no chance to save: these may be lost.
            for i in range(5):
                fake.publish_liquidation("BTC/USDT:USDT", "short", 80_000.0, 0.5, now + 100 + i)
            first.send_signal(signal.SIGKILL)
            await first.wait()
            restored = await run.restarted_total(session)
            assert restored is not None
            assert truth <= restored <= truth + 5 * 40_000.0
    finally:
        await run.close()
