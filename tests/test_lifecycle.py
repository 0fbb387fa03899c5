"""The real process: serves /metrics with no exchange reachable, stops cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


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


def poll(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
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
    assert process.poll() is None
    started = time.monotonic()
    process.send_signal(stop_signal)
    assert process.wait(timeout=10) == 0
    assert time.monotonic() - started < 5.0
    output = process.communicate(timeout=5)[0]
    assert "Traceback" not in output
