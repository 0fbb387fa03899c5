"""`cryptoliq-exporter --demo`: the real process, real collectors, simulated exchanges."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from typing import TYPE_CHECKING

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.collectors import ADAPTERS
from exporter.config import Config, ExchangeConfig
from exporter.demo import DEMO_BACKFILL_HOURS, MarketDriver, demo_config, watched_symbol
from exporter.fakeexchange import FakeExchange
from exporter.fakeexchange.simulation import VENUE_SHARES, MarketSimulation
from exporter.venues import VENUES, exchange_label
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


def markets_with_open_interest(text: str) -> set[tuple[str, str]]:
    """(exchange, symbol) of every non-zero open-interest reading."""
    return {
        (sample.labels["exchange"], sample.labels["symbol"])
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "cryptoliq_open_interest_usd" and sample.value > 0
    }


def test_demo_serves_every_series_of_every_venue_within_30_seconds() -> None:
    """Every venue runs, each fake in its own wire format: every venue is up with its BTC
    market's open interest (e.g. Binance COIN-M's BTC/USD:BTC beside USD-M's BTC/USDT:USDT),
    and every exchange with 5 % or more of the simulated open interest has liquidations. The
    smallest venues see about one liquidation a minute: the test below shows their liquidations
    reach their fakes, in the markets their collectors watch."""
    exchanges = {exchange_label(v) for v in VENUES}
    total = sum(VENUE_SHARES[v] for v in VENUES)
    liquidating = {exchange_label(v) for v in VENUES if VENUE_SHARES[v] / total >= 0.05}
    btc_markets = {(exchange_label(v), ADAPTERS[v].coin_symbol("BTC")) for v in VENUES}
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "--demo",
            "--speed",
            "60",
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
                name: (liquidating if "liquidations" in name else exchanges) - seen.get(name, set())
                for name in (*NEEDED, "cryptoliq_exchange_up")
            }
            missing["btc markets"] = {
                f"{e} {s}" for e, s in btc_markets - markets_with_open_interest(text)
            }
            missing = {k: v for k, v in missing.items() if v}
            if not missing:
                break
            time.sleep(0.5)
        assert not missing, f"still zero or absent after 30 s: {missing}"
        # The market driver and every collector are supervised tasks, none of them restarted.
        expected: dict[str, float] = {"demo": 0.0, **dict.fromkeys(VENUES, 0.0)}
        assert task_restarts(text) == expected
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


def test_the_market_driver_liquidates_on_every_venue_in_the_markets_it_watches() -> None:
    """Simulated hours of the demo's market, without sockets: every venue's fake publishes
    liquidations, each in the market of its coin that the venue's collector watches."""
    fakes: dict[str, FakeExchange] = {v: FakeExchange(v, log_limit=None) for v in VENUES}
    now = [1_790_000_000.0]
    driver = MarketDriver(MarketSimulation(venues=VENUES), fakes, speed=600.0, clock=lambda: now[0])
    for _ in range(600):  # 600 ticks of 1 s at 600x: 100 simulated hours
        now[0] += 1.0
        driver.tick(1.0)
        if all(fake.sent for fake in fakes.values()):
            break
    for venue, fake in fakes.items():
        assert fake.sent, f"{venue}: no liquidation in 100 simulated hours"
        for row in fake.sent:
            assert row.symbol is not None
            coin = fake.market(row.symbol).base
            assert row.symbol == watched_symbol(fake, coin), venue
