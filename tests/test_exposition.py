"""The fast renderer against prometheus_client rendering the same snapshot: byte for byte."""

from __future__ import annotations

import gzip
import math
import random
from typing import TYPE_CHECKING

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import utils as prometheus_utils
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import Exporter, create_app
from exporter.config import Config, ExchangeConfig
from exporter.core import Core
from exporter.events import POSITIONING_SOURCES, LongShortRatio, MarketContext, Reason
from exporter.exposition import Exposition, go_float, go_floats, negotiate
from exporter.health import Stream
from exporter.metrics import SnapshotCollector
from exporter.venues import VENUES
from tests.conftest import FakeClock, make_liquidation, make_open_interest

if TYPE_CHECKING:
    from pytest_aiohttp import AiohttpClient

    from exporter.core import Snapshot

EXCHANGES = VENUES
COINS = {"BTC": 80_000.0, "ETH": 2_900.0, "SOL": 180.0, "PEPE": 0.00001234}


def record_context(
    core: Core, clock: FakeClock, exchange: str, coin: str, mark: float, step: int
) -> None:
    """Funding, index price and long/short ratios; the last exchange gives no predicted rate
    and no ratios, as most venues give neither."""
    symbol = f"{coin}/USDT:USDT"
    now_ms = int(clock.now * 1000)
    full = exchange != EXCHANGES[-1]
    core.record_market_context(
        MarketContext(
            exchange=exchange,
            symbol=symbol,
            coin=coin,
            index_price=mark * (1 - 0.0003 * math.cos(step)),
            funding_rate=0.0001 * math.sin(step / 5 + len(coin)),
            predicted_funding_rate=0.00012 * math.sin(step / 4) if full else None,
            next_funding_ms=(now_ms // 28_800_000 + 1) * 28_800_000,
            funding_interval_s=28_800.0 if coin != "SOL" else 14_400.0,
            timestamp_ms=now_ms,
            received_ms=now_ms,
        )
    )
    if not full:
        return
    for n, source in enumerate(POSITIONING_SOURCES):
        core.record_long_short(
            LongShortRatio(
                exchange=exchange,
                symbol=symbol,
                coin=coin,
                source=source,
                period="5m",
                ratio=1.2 + 0.1 * n + 0.01 * step,
                timestamp_ms=now_ms,
                received_ms=now_ms,
            )
        )


def busy_core(clock: FakeClock, seed: int = 0) -> Core:
    """Every family populated: liquidations (one on an awkward symbol), windows at several
    ages, open interest and heatmaps of coins from 1e-5 to 8e4 USD, accuracy, health."""
    rng = random.Random(seed)
    core = Core(EXCHANGES, clock)
    for step in range(40):
        for exchange in EXCHANGES:
            for coin, price in COINS.items():
                drift = price * (1 + 0.002 * math.sin(step / 3 + len(coin)))
                coins = 1e6 / price * (1 + 0.01 * step + 0.02 * rng.random())
                core.record_open_interest(
                    make_open_interest(
                        clock,
                        exchange=exchange,
                        symbol=f"{coin}/USDT:USDT",
                        coin=coin,
                        coins=coins,
                        usd=coins * drift,
                        mark_price=drift,
                    )
                )
                record_context(core, clock, exchange, coin, drift, step)
        for _ in range(5):
            coin, price = rng.choice(list(COINS.items()))
            quantity = rng.lognormvariate(0, 2) * 1000 / price
            core.record_liquidation(
                make_liquidation(
                    clock,
                    exchange=rng.choice(EXCHANGES),
                    symbol=f"{coin}/USDT:USDT",
                    coin=coin,
                    side=rng.choice(("long", "short")),
                    price=price * (1 + rng.uniform(-0.03, 0.03)),
                    quantity=quantity,
                    notional_usd=quantity * price,
                    timestamp_ms=int((clock.now - rng.uniform(0, 7200)) * 1000),
                )
            )
        clock.now += 60.0
    odd = 'ODD/"USD\\T:\nX'  # label escaping: quote, backslash, newline
    core.record_liquidation(make_liquidation(clock, symbol=odd, notional_usd=1e7, quantity=125))
    core.health.message("binance", Stream.LIQUIDATIONS, 7)
    core.health.message("okx", Stream.OPEN_INTEREST, 2)
    core.health.invalid("okx", Stream.LIQUIDATIONS, Reason.MALFORMED)
    core.health.invalid("bybit", Stream.OPEN_INTEREST, Reason.NOT_FINITE)
    core.health.reconnect("okx", Stream.LIQUIDATIONS)
    core.health.restart("bybit")
    core.health.register_task("demo")
    core.health.restart("snapshots")
    core.health.dropped_late("binance")
    core.health.mark_up("binance", Stream.LIQUIDATIONS)
    core.health.mark_up("binance", Stream.OPEN_INTEREST)
    return core


def reference(snapshot: Snapshot, last_render_seconds: float | None, *, om: bool) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot, last_render_seconds))
    encode = openmetrics.generate_latest if om else generate_latest
    return encode(registry).decode()


@pytest.mark.parametrize("seed", [0, 1])
def test_text_equals_prometheus_client_byte_for_byte(clock: FakeClock, seed: int) -> None:
    core = busy_core(clock, seed)
    exposition = Exposition()
    for minutes in (0, 30, 24 * 60):  # warm caches, then windows expire and prices drift
        clock.now += minutes * 60
        snapshot = core.snapshot()
        assert snapshot.heatmap.views
        for last in (None, 0.0123):
            expected = reference(snapshot, last, om=False)
            assert exposition.render_snapshot(snapshot, last_render_seconds=last) == expected
            expected_om = reference(snapshot, last, om=True)
            rendered_om = exposition.render_snapshot(
                snapshot, openmetrics_format=True, last_render_seconds=last
            )
            assert rendered_om + "# EOF\n" == expected_om


def test_heatmap_grid_follows_a_moving_price(clock: FakeClock) -> None:
    """Label caches rebuilt when the bins move and when the bin step changes."""
    core = Core(EXCHANGES, clock)
    exposition = Exposition()
    for price in (100.0, 101.0, 104.0, 97.0, 230.0, 60.0, 100.0):
        for step in range(2):
            clock.now += 15
            core.record_open_interest(
                make_open_interest(
                    clock, coin="X", symbol="X/USDT:USDT", coins=1e4 + step, mark_price=price
                )
            )
        snapshot = core.snapshot()
        assert exposition.render_snapshot(snapshot) == reference(snapshot, None, om=False)


def test_empty_core(clock: FakeClock) -> None:
    snapshot = Core(EXCHANGES, clock).snapshot()
    assert Exposition().render_snapshot(snapshot) == reference(snapshot, None, om=False)


VALUES = [
    0.0,
    -0.0,
    1.0,
    0.1,
    5e-324,
    999_999.9999,
    1e6,
    1_234_567.0,
    1_234_567.125,
    12_345_678.9,
    1e15,
    999_999_999_999_999.9,
    1e16,
    1.5e16,
    1e22,
    -1e7,
    -2.5,
    math.inf,
    -math.inf,
    math.nan,
]


def float_to_go_string(value: float) -> str:
    text: str = prometheus_utils.floatToGoString(value)  # type: ignore[no-untyped-call]  # untyped upstream
    return text


def test_value_formatting_matches_prometheus_client() -> None:
    for value in VALUES:
        assert go_float(value) == float_to_go_string(value), value
    assert go_float(3) == float_to_go_string(3) == "3.0"
    rng = np.random.default_rng(0)
    values = np.concatenate([np.array(VALUES), rng.lognormal(10, 6, 5000), np.zeros(50)])
    assert go_floats(values) == [float_to_go_string(v) for v in values.tolist()]
    assert go_floats(np.zeros(0)) == []


# What Prometheus 3 sends with its default scrape_protocols.
PROMETHEUS_3_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8,"
    "application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "text/plain;version=0.0.4;q=0.25,*/*;q=0.1"
)


@pytest.mark.parametrize(
    ("accept", "om", "fast"),
    [
        (None, False, True),
        ("text/plain", False, True),
        ("text/plain;version=1.0.0;escaping=allow-utf-8", False, True),
        ("application/openmetrics-text", True, True),
        ("application/openmetrics-text;version=1.0.0", True, True),
        (PROMETHEUS_3_ACCEPT, True, True),
        ("application/openmetrics-text;version=1.0.0;escaping=dots", True, False),
    ],
)
def test_negotiation(accept: str | None, om: bool, fast: bool) -> None:
    negotiated = negotiate(accept)
    assert (negotiated.openmetrics, negotiated.fast) == (om, fast)


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "application/openmetrics-text;version=1.0.0",
        "application/openmetrics-text;version=1.0.0;escaping=dots",
    ],
)
async def test_served_body_parses_with_process_metrics(
    aiohttp_client: AiohttpClient, clock: FakeClock, accept: str | None
) -> None:
    config = Config(exchanges=tuple(ExchangeConfig(name=e) for e in EXCHANGES))
    client = await aiohttp_client(create_app(Exporter(config=config, core=busy_core(clock))))
    headers = {"Accept-Encoding": "gzip"} | ({"Accept": accept} if accept else {})
    for _ in range(2):  # the second scrape also carries cryptoliq_scrape_render_seconds
        response = await client.get("/metrics", headers=headers, auto_decompress=False)
        assert response.status == 200
        assert response.headers["Content-Encoding"] == "gzip"
        text = gzip.decompress(await response.read()).decode()
    om = accept is not None and "openmetrics" in accept
    assert response.headers["Content-Type"].startswith(
        "application/openmetrics-text" if om else "text/plain"
    )
    if accept is not None and "dots" in accept:
        # Served by prometheus_client itself (whose own parser rejects this escaping).
        assert 'cryptoliq__heatmap__usd{coin="BTC"' in text
        return
    if om:
        # prometheus_client's OpenMetrics parser rejects an escaped quote in an exemplar's
        # label value (Prometheus reads it: test_stack_prometheus); the odd symbol has one.
        assert 'symbol="ODD/\\"USD' in text
        text = text.replace('symbol="ODD/\\"USD', 'symbol="ODD/USD')
    names = {f.name for f in (parse_om if om else text_string_to_metric_families)(text)}
    assert {"cryptoliq_heatmap_usd", "cryptoliq_scrape_render_seconds", "python_info"} <= names
    assert any(name.startswith("process_") for name in names)
    assert text.endswith("# EOF\n") == om


def test_a_snapshot_keeps_its_heatmap_while_the_model_moves_on() -> None:
    """Views share the model's state copy-on-write and derive their figures when first read:
    what a scrape renders is the state at its snapshot, however many updates land meanwhile."""
    clock, twin_clock = FakeClock(), FakeClock()
    core, twin = busy_core(clock), busy_core(twin_clock)
    snapshot = core.snapshot()
    for step in range(3):  # opens, closes and sweeps in every coin
        clock.now += 60
        for coin, price in COINS.items():
            core.record_open_interest(
                make_open_interest(
                    clock,
                    coin=coin,
                    symbol=f"{coin}/USDT:USDT",
                    coins=2e6 / price * (1 + step % 2),
                    mark_price=price * (0.97 + 0.03 * step),
                )
            )
    expected = reference(twin.snapshot(), None, om=False)
    assert Exposition().render_snapshot(snapshot) == expected
    assert Exposition().render_snapshot(core.snapshot()) != expected
