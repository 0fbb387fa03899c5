"""`cryptoliq-exporter --demo`: the real process, real collectors, simulated exchanges."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from typing import TYPE_CHECKING

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import Config, ExchangeConfig
from exporter.demo import DEMO_BACKFILL_HOURS, demo_config
from tests.test_lifecycle import free_port, get, task_restarts

if TYPE_CHECKING:
    from tests.conftest import FakeExchangeFactory

pytestmark = pytest.mark.integration

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
    text = ""
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
        # The market driver and every collector are supervised tasks, none of them restarted.
        assert task_restarts(text) == {"demo": 0.0, "binance": 0.0, "bybit": 0.0, "okx": 0.0}
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert process.returncode == 0, output
    assert "Traceback" not in output


async def test_demo_config_points_the_enabled_exchanges_at_their_fakes(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """A new config for the collectors; the configured one is left as it was."""
    fake = await fake_exchange("okx")
    configured = Config(
        exchanges=(ExchangeConfig("okx"), ExchangeConfig("bybit", enabled=False)),
        demo=True,
        backfill_hours=72.0,
    )
    with_fakes = demo_config(configured, {"okx": fake})
    assert (with_fakes.exchange("okx").rest_url, with_fakes.exchange("okx").ws_url) == (
        fake.rest_url,
        fake.ws_url,
    )
    assert with_fakes.backfill_hours == DEMO_BACKFILL_HOURS < 72.0
    assert with_fakes.exchange("bybit") == configured.exchange("bybit")
    assert configured.exchange("okx").rest_url is None
    assert configured.backfill_hours == 72.0
