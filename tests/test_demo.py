"""`cryptoliq-exporter --demo`: the real process, real collectors, simulated exchanges."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

from tests.test_lifecycle import free_port, get

NEEDED = (
    "cryptoliq_liquidations_total",
    "cryptoliq_liquidations_usd_total",
    "cryptoliq_open_interest_usd",
    "cryptoliq_open_interest_coins",
    "cryptoliq_mark_price_usd",
)


def nonzero_by_exchange(text: str) -> dict[str, set[str]]:
    """Sample name -> exchanges with at least one non-zero sample."""
    seen: dict[str, set[str]] = defaultdict(set)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.value > 0 and "exchange" in sample.labels:
                seen[sample.name].add(sample.labels["exchange"])
    return seen


def test_demo_serves_every_series_within_30_seconds() -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "--demo",
            "--port",
            str(port),
            "--listen-address",
            "127.0.0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started = time.monotonic()
    missing: dict[str, set[str]] = {}
    try:
        while time.monotonic() - started < 30:
            text = get(f"http://127.0.0.1:{port}/metrics") or ""
            seen = nonzero_by_exchange(text)
            missing = {
                name: {"binance", "bybit", "okx"} - seen.get(name, set())
                for name in (*NEEDED, "cryptoliq_exchange_up")
            }
            missing = {k: v for k, v in missing.items() if v}
            if not missing:
                break
            time.sleep(0.5)
        assert not missing, f"still zero or absent after 30 s: {missing}"
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert process.returncode == 0, output
    assert "Traceback" not in output
