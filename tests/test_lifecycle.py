"""The lifecycle (exporter/lifecycle.py): start-up and shutdown order in process, supervised
tasks' restarts on /metrics, and the real process serving with no exchange reachable and
stopping cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter import persistence
from exporter.app import Exporter, create_app
from exporter.config import Config, ExchangeConfig
from exporter.core import Core
from exporter.lifecycle import running
from tests.collector_harness import eventually
from tests.conftest import FakeClock, make_liquidation

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path

    from pytest_aiohttp import AiohttpClient

    from exporter.supervisor import Runnable

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
            return str(response.read().decode())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def poll(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def unreachable_config(tmp_path: Path) -> Path:
    """Every exchange pointed at a closed loopback port: 'no network' without DNS delays."""
    dead = free_port()
    lines = ["exchanges:"]
    for name in ("binance", "bybit", "okx"):
        lines += [
            f"  {name}:",
            f"    rest_url: http://127.0.0.1:{dead}",
            f"    ws_url: ws://127.0.0.1:{dead}",
        ]
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def exporter_process(unreachable_config: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "--config",
            str(unreachable_config),
            "--port",
            str(port),
            "--listen-address",
            "127.0.0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def up_values(text: str) -> dict[str, float]:
    for family in text_string_to_metric_families(text):
        if family.name == "cryptoliq_exchange_up":
            return {s.labels["exchange"]: s.value for s in family.samples}
    return {}


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serves_without_network_and_stops_on_signal(
    exporter_process: tuple[subprocess.Popen[str], int], stop_signal: signal.Signals
) -> None:
    process, port = exporter_process
    url = f"http://127.0.0.1:{port}/metrics"
    poll(lambda: get(url) is not None, 30, "/metrics to answer")
    # Let every collector fail at least once, then check it is reported, not fatal.
    poll(
        lambda: 'cryptoliq_reconnects_total{exchange="okx"' in (get(url) or ""),
        30,
        "failed connections to be counted",
    )
    text = get(url) or ""
    assert up_values(text) == {"binance": 0.0, "bybit": 0.0, "okx": 0.0}
    # Failed connections are the collectors' own business: none of them died.
    assert task_restarts(text) == {"binance": 0.0, "bybit": 0.0, "okx": 0.0}
    assert process.poll() is None
    started = time.monotonic()
    process.send_signal(stop_signal)
    assert process.wait(timeout=10) == 0
    assert time.monotonic() - started < 5.0
    output = process.communicate(timeout=5)[0]
    assert "Traceback" not in output


@dataclass
class Probe:
    """A collector stand-in: records what it saw when built and runs until cancelled; on the
    way out it records one more liquidation, which only a snapshot taken after it stopped has.
    """

    core: Core
    name: str = "probe"
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            self.core.record_liquidation(
                make_liquidation(FakeClock(time.time()), exchange="okx", notional_usd=7.0)
            )
            self.cancelled.set()


def window_usd(core: Core) -> float:
    """USD in the longest window."""
    return float(core.snapshot().windows.usd[:, -1].sum())


async def test_start_up_and_shutdown_order(tmp_path: Path) -> None:
    """Restore, then the fakes and the config pointed at them, then the supervised tasks;
    on the way out every task stops before the final snapshot."""
    state = tmp_path / "state"
    earlier = Core(("okx",), time.time)
    earlier.record_liquidation(
        make_liquidation(FakeClock(time.time()), exchange="okx", notional_usd=100.0)
    )
    persistence.save(earlier, state)
    config = Config(
        exchanges=(ExchangeConfig("okx"), ExchangeConfig("binance", enabled=False)),
        demo=True,
        state_dir=str(state),
        snapshot_interval_seconds=3600,
    )
    core = Core(("okx",), time.time)
    seen: list[tuple[Config, float]] = []
    probes: list[Probe] = []

    def build(effective: Config, built_for: Core) -> Sequence[Runnable]:
        seen.append((effective, window_usd(built_for)))
        probes.append(Probe(built_for))
        return probes

    async with running(config, core, build) as effective:
        assert seen == [(effective, 100.0)]  # built once, after the restore
        okx = effective.exchange("okx")
        assert okx.rest_url is not None
        assert okx.rest_url.startswith("http://127.0.0.1:")
        assert effective.backfill_hours == 24.0
        assert effective.exchange("binance").rest_url is None  # not enabled: no fake
        assert config.exchange("okx").rest_url is None  # the configured one is left alone
        async with aiohttp.ClientSession() as session, session.get(okx.rest_url) as response:
            assert response.status < 500  # the fake answers while the collectors run
        assert set(core.health.snapshot().restarts) == {"okx", "demo", "probe", "snapshots"}
        assert not probes[0].cancelled.is_set()
    assert probes[0].cancelled.is_set()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(okx.rest_url)  # the fakes are down
    restored = Core(("okx",), time.time)
    assert persistence.restore(restored, state)
    assert window_usd(restored) == 107.0  # the final snapshot came after the probe stopped


@dataclass
class DiesOnce:
    """A task that fails on its first run and then runs normally."""

    name: str = "dies-once"
    runs: int = 0

    async def run(self) -> None:
        self.runs += 1
        if self.runs == 1:
            raise RuntimeError("a bug")
        await asyncio.Event().wait()


def task_restarts(text: str) -> dict[str, float]:
    for family in text_string_to_metric_families(text):
        if family.name == "cryptoliq_task_restarts":
            return {s.labels["task"]: s.value for s in family.samples}
    return {}


async def test_every_supervised_task_restart_reaches_metrics(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    config = Config(
        exchanges=(ExchangeConfig("okx"),),
        demo=True,
        state_dir=str(tmp_path),
        snapshot_interval_seconds=3600,
    )
    task = DiesOnce()
    exporter = Exporter(config, Core(("okx",), time.time), build_runnables=lambda _c, _k: [task])
    client = await aiohttp_client(create_app(exporter))

    async def scrape() -> dict[str, float]:
        return task_restarts(await (await client.get("/metrics")).text())

    await eventually(lambda: exporter.core.health.snapshot().restarts["dies-once"] == 1, "restart")
    # okx: the collector of the configured exchange (here replaced by the test's task).
    assert await scrape() == {"dies-once": 1.0, "demo": 0.0, "snapshots": 0.0, "okx": 0.0}
