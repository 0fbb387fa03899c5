"""/metrics from the real core through the real aiohttp app, parsed like Prometheus does."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter import metrics
from exporter.app import Exporter, create_app
from exporter.config import Config, ExchangeConfig
from exporter.core import Core
from exporter.events import Reason
from exporter.health import LostReason, Stream
from exporter.metrics import FAMILIES, Family, HistogramFamily
from exporter.venues import DEFAULT_VENUES
from tests.conftest import FakeClock, make_liquidation, make_open_interest
from tests.test_exposition import busy_core

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from pytest_aiohttp import AiohttpClient

EXCHANGES = DEFAULT_VENUES  # one feed per exchange label: each series is its own


def make_core(clock: FakeClock) -> Core:
    core = Core(EXCHANGES, clock)
    core.record_liquidation(make_liquidation(clock))
    core.record_liquidation(make_liquidation(clock, notional_usd=100.0, quantity=0.00125))
    core.record_liquidation(
        make_liquidation(
            clock,
            exchange="bybit",
            side="short",
            symbol="SOL/USDT:USDT",
            coin="SOL",
            price=180.0,
            quantity=10.0,
            notional_usd=1800.0,
        )
    )
    core.record_open_interest(make_open_interest(clock))
    core.health.message("binance", Stream.LIQUIDATIONS, 3)
    core.health.invalid("okx", Stream.LIQUIDATIONS, Reason.MALFORMED)
    core.health.reconnect("okx", Stream.LIQUIDATIONS)
    core.health.mark_up("binance", Stream.LIQUIDATIONS)
    core.health.mark_up("binance", Stream.OPEN_INTEREST)
    return core


async def scrape(
    aiohttp_client: AiohttpClient, core: Core, accept: str | None = None, *, times: int = 1
) -> str:
    """The body of the last of ``times`` scrapes (from the second on, it carries
    ``cryptoliq_scrape_render_seconds``)."""
    config = Config(exchanges=tuple(ExchangeConfig(name=e) for e in EXCHANGES))
    client = await aiohttp_client(create_app(Exporter(config=config, core=core)))
    headers = {"Accept": accept} if accept else {}
    text = ""
    for _ in range(times):
        response = await client.get("/metrics", headers=headers)
        assert response.status == 200
        text = await response.text()
    return text


def families(text: str) -> dict[str, Metric]:
    return {f.name: f for f in text_string_to_metric_families(text)}


TYPE_LINE = re.compile(r"^# TYPE (\S+) (\S+)$", re.MULTILINE)


def sample_names(family: Family | HistogramFamily) -> dict[str, tuple[str, ...]]:
    """Names of the family's samples in a scrape -> their label names."""
    if isinstance(family, HistogramFamily):
        return {
            family.name + "_bucket": (*family.labels, "le"),
            family.name + "_count": family.labels,
            family.name + "_sum": family.labels,
        }
    return {family.exposed_name: family.labels}


def test_every_family_defined_is_in_the_exposition_list_once() -> None:
    """A family defined in exporter.metrics but left out of FAMILIES would never be scraped."""
    defined = {
        value.name
        for value in vars(metrics).values()
        if isinstance(value, Family | HistogramFamily)
    }
    assert sorted(f.name for f in FAMILIES) == sorted(defined)
    assert len({f.exposed_name for f in FAMILIES}) == len(FAMILIES)


async def test_scrape_carries_exactly_the_defined_families(
    aiohttp_client: AiohttpClient, clock: FakeClock
) -> None:
    """Every family of ``FAMILIES`` with its type, in order, with samples that carry exactly
    its label names; nothing else but prometheus_client's process_/python_ families."""
    text = await scrape(aiohttp_client, busy_core(clock), times=2)
    types = [
        (name, kind)
        for name, kind in TYPE_LINE.findall(text)
        if not name.startswith(("process_", "python_"))
    ]
    assert types == [(f.exposed_name, f.text_type) for f in FAMILIES]
    labels: dict[str, set[tuple[str, ...]]] = {}
    for parsed in text_string_to_metric_families(text):
        for sample in parsed.samples:
            labels.setdefault(sample.name, set()).add(tuple(sorted(sample.labels)))
    for family in FAMILIES:
        for name, label_names in sample_names(family).items():
            assert labels.get(name) == {tuple(sorted(label_names))}, name


async def test_task_restarts_start_at_zero_and_count(
    aiohttp_client: AiohttpClient, clock: FakeClock
) -> None:
    """Every exchange's collector and every registered task shows from the start; a task that
    was never registered still shows once it restarted."""
    core = Core(EXCHANGES, clock)
    core.health.register_task("demo")
    core.health.register_task("demo")
    core.health.restart("okx")
    core.health.restart("snapshots")
    core.health.restart("snapshots")
    parsed = families(await scrape(aiohttp_client, core))
    restarts = {s.labels["task"]: s.value for s in parsed["cryptoliq_task_restarts"].samples}
    assert restarts == {"binance": 0, "bybit": 0, "okx": 1, "demo": 0, "snapshots": 2}


async def test_scrape_values(aiohttp_client: AiohttpClient, clock: FakeClock) -> None:
    text = await scrape(aiohttp_client, make_core(clock))
    parsed = families(text)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in parsed.values()
        for s in f.samples
    }
    key = (("coin", "BTC"), ("exchange", "binance"), ("side", "long"), ("symbol", "BTC/USDT:USDT"))
    assert samples["cryptoliq_liquidations_total", key] == 2
    assert samples["cryptoliq_liquidations_usd_total", key] == 40_100.0
    window_key = tuple(sorted((*key, ("window", "1h"))))
    assert samples["cryptoliq_liquidations_window_usd", window_key] == 40_100.0
    assert samples["cryptoliq_liquidations_window_orders", window_key] == 2
    assert samples["cryptoliq_liquidation_largest_usd", window_key] == 40_000.0
    size_key = (("coin", "BTC"), ("exchange", "binance"), ("le", "100.0"), ("side", "long"))
    assert samples["cryptoliq_liquidation_size_usd_bucket", size_key] == 1
    up = {s.labels["exchange"]: s.value for s in parsed["cryptoliq_exchange_up"].samples}
    assert up == {"binance": 1.0, "bybit": 0.0, "okx": 0.0}
    oi = parsed["cryptoliq_open_interest_usd"].samples[0]
    assert oi.labels == {"exchange": "okx", "symbol": "ETH/USDT:USDT", "coin": "ETH"}
    assert oi.value == 2_900_000.0
    assert "_created" not in text


async def test_scrape_follows_naming_rules(aiohttp_client: AiohttpClient, clock: FakeClock) -> None:
    text = await scrape(aiohttp_client, make_core(clock))
    label_values: dict[str, set[str]] = {
        "exchange": set(EXCHANGES),
        "side": {"long", "short"},
        "window": {"5m", "1h", "4h", "12h", "24h"},
        "stream": {s.value for s in Stream},
        "reason": {r.value for r in Reason} | {r.value for r in LostReason},
        "task": set(EXCHANGES),
    }
    for family in text_string_to_metric_families(text):
        if family.name.startswith(("process_", "python_")):
            continue
        assert family.name.startswith("cryptoliq_"), family.name
        assert family.name.count("cryptoliq") == 1
        assert family.documentation, family.name
        assert not re.search(r"_(ms|milliseconds|percent|minutes|hours|bytes_total)$", family.name)
        for sample in family.samples:
            assert sample.timestamp is None
            if family.type == "counter":
                assert sample.name.endswith("_total"), sample.name
            else:
                assert not sample.name.endswith("_total"), sample.name
            for label, value in sample.labels.items():
                assert label != "type"
                assert label != "le" or family.type == "histogram"
                if label in label_values:
                    assert value in label_values[label], (sample.name, label, value)


async def test_openmetrics_negotiation_and_gzip(
    aiohttp_client: AiohttpClient, clock: FakeClock
) -> None:
    text = await scrape(
        aiohttp_client, make_core(clock), "application/openmetrics-text; version=1.0.0"
    )
    assert text.rstrip().endswith("# EOF")


async def test_series_disappear_with_their_market(
    aiohttp_client: AiohttpClient, clock: FakeClock
) -> None:
    core = Core(EXCHANGES, clock)
    text = await scrape(aiohttp_client, core)
    assert "cryptoliq_open_interest_usd{" not in text
    assert "cryptoliq_liquidations_total{" not in text


async def test_landing_page_and_healthz(aiohttp_client: AiohttpClient, clock: FakeClock) -> None:
    config = Config(
        exchanges=tuple(ExchangeConfig(name=e, symbols=("BTC/USDT:USDT",)) for e in EXCHANGES)
    )
    client = await aiohttp_client(create_app(Exporter(config=config, core=make_core(clock))))
    page = await (await client.get("/")).text()
    assert 'href="metrics"' in page
    assert "BTC/USDT:USDT" in page
    for exchange in EXCHANGES:
        assert exchange in page
    health = await (await client.get("/healthz")).json()
    assert health["status"] == "ok"
    assert health["exchanges_up"] == {"binance": True, "bybit": False, "okx": False}


@pytest.mark.parametrize("minutes", [4, 6])
async def test_window_gauges_follow_the_clock(
    aiohttp_client: AiohttpClient, clock: FakeClock, minutes: int
) -> None:
    core = make_core(clock)
    clock.now += minutes * 60
    parsed = families(await scrape(aiohttp_client, core))
    five = [
        s
        for s in parsed["cryptoliq_liquidations_window_usd"].samples
        if s.labels["window"] == "5m" and s.labels["exchange"] == "binance"
    ]
    assert five[0].value == (40_100.0 if minutes < 5 else 0.0)
