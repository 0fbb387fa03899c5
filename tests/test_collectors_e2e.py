"""End to end per exchange: fake exchange -> ccxt.pro -> collector -> core -> scraped /metrics
equals the totals computed from the fake exchange's sent-frame log, through a steady stream,
a burst of 200 frames and a dropped connection."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from typing import TYPE_CHECKING

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import Exporter, create_app
from exporter.config import Config, ExchangeConfig
from exporter.events import SIDES
from exporter.venues import exchange_label
from tests.collector_harness import (
    EXCHANGES,
    VENUE_TRANSPORTS,
    RecordingCore,
    eventually,
    make_collector,
)

if TYPE_CHECKING:
    from aiohttp import web
    from aiohttp.test_utils import TestClient
    from pytest_aiohttp import AiohttpClient

    from exporter.config import Transport
    from exporter.core import Core
    from exporter.events import Side
    from exporter.fakeexchange import FakeExchange
    from tests.conftest import FakeExchangeFactory

if TYPE_CHECKING:
    Client = TestClient[web.Request, web.Application]

pytestmark = pytest.mark.integration


def random_liquidation(
    rng: random.Random, fake: FakeExchange
) -> tuple[str, Side, float, float, int]:
    """A liquidation already at the market's wire precision, so nothing is lost to rounding
    (a venue of whole USD contracts rounds it, and logs what it sent)."""
    symbol = rng.choice(fake.symbols[:3])
    market = fake.market(symbol)
    price = round(market.mark_price * rng.uniform(0.95, 1.05), market.tick_decimals)
    step = float(market.contract_size)  # whole OKX contracts are valid on every venue
    coins = round(step * rng.randint(1, 500), market.qty_decimals)
    return symbol, rng.choice(SIDES), price, coins, int(time.time() * 1000)


def expected_totals(
    fake: FakeExchange,
) -> tuple[Counter[tuple[str, str]], dict[tuple[str, str], float]]:
    """Orders and USD per (symbol, side) of every frame that reached a connection."""
    orders: Counter[tuple[str, str]] = Counter()
    usd: dict[tuple[str, str], float] = defaultdict(float)
    for row in fake.sent:
        if (
            row.receivers
            and row.symbol is not None
            and row.side is not None
            and row.usd is not None
        ):
            orders[row.symbol, row.side] += 1
            usd[row.symbol, row.side] += row.usd
    return orders, usd


async def scrape(client: Client) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    text = await (await client.get("/metrics")).text()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return out


async def scraped_totals(
    client: Client, venue: str
) -> tuple[Counter[tuple[str, str]], dict[tuple[str, str], float]]:
    metrics = await scrape(client)
    orders: Counter[tuple[str, str]] = Counter()
    usd: dict[tuple[str, str], float] = {}
    for labels, value in metrics["cryptoliq_liquidations_total"].items():
        label = dict(labels)
        if label["exchange"] == exchange_label(venue):
            orders[label["symbol"], label["side"]] = int(value)
    for labels, value in metrics["cryptoliq_liquidations_usd_total"].items():
        label = dict(labels)
        if label["exchange"] == exchange_label(venue):
            usd[label["symbol"], label["side"]] = value
    return orders, usd


async def totals_match(client: Client, fake: FakeExchange) -> bool:
    want_orders, want_usd = expected_totals(fake)
    got_orders, got_usd = await scraped_totals(client, fake.venue)
    if got_orders != want_orders:
        return False
    return all(got_usd.get(k) == pytest.approx(v, rel=1e-9) for k, v in want_usd.items())


async def wait_for_totals(client: Client, fake: FakeExchange, what: str) -> None:
    """Poll the scrape until it equals the sent log, or fail showing both."""
    deadline = time.monotonic() + 20
    while not await totals_match(client, fake):
        if time.monotonic() > deadline:
            want, _ = expected_totals(fake)
            got, _ = await scraped_totals(client, fake.venue)
            raise AssertionError(f"{what}: scraped {dict(got)} != sent {dict(want)}")
        await asyncio.sleep(0.05)


async def reconnects(client: Client, venue: str) -> float:
    metrics = await scrape(client)
    key = (("exchange", exchange_label(venue)), ("stream", "liquidations"))
    return metrics["cryptoliq_reconnects_total"].get(key, 0.0)


async def start_stack(
    venue: str,
    aiohttp_client: AiohttpClient,
    fake_exchange: FakeExchangeFactory,
    transport: Transport = "ccxt",
) -> tuple[FakeExchange, Client, Core]:
    fake = await fake_exchange(venue)
    core = RecordingCore()
    config = Config(exchanges=tuple(ExchangeConfig(name=e, enabled=e == venue) for e in EXCHANGES))
    exporter = Exporter(
        config,
        core,
        build_runnables=lambda _c, k: [
            make_collector(fake, k, fake.symbols[:3], transport=transport)
        ],
    )
    client = await aiohttp_client(create_app(exporter))
    return fake, client, core


@pytest.mark.parametrize(("venue", "transport"), VENUE_TRANSPORTS)
async def test_scraped_totals_equal_the_sent_log(
    venue: str,
    transport: Transport,
    aiohttp_client: AiohttpClient,
    fake_exchange: FakeExchangeFactory,
) -> None:
    rng = random.Random(f"e2e-{venue}")
    fake, client, core = await start_stack(venue, aiohttp_client, fake_exchange, transport)
    await fake.wait_subscribed(fake.symbols[:3])
    # A steady stream.
    for _ in range(60):
        fake.publish_liquidation(*random_liquidation(rng, fake))
    await wait_for_totals(client, fake, "steady stream")

    # A burst: 200 frames queued back to back (well under 20 ms), nothing may be lost.
    started = time.perf_counter()
    for _ in range(200):
        fake.publish_liquidation(*random_liquidation(rng, fake))
    burst_seconds = time.perf_counter() - started
    await wait_for_totals(client, fake, "burst of 200")
    assert sum(1 for r in fake.sent if r.receivers) == 260

    # The connection drops mid-run: the reconnect is counted and streaming resumes.
    assert await reconnects(client, venue) == 0
    assert await fake.drop_connections() >= 1
    deadline = time.monotonic() + 20
    while await reconnects(client, venue) < 1:
        assert time.monotonic() < deadline, "the reconnect was not counted"
        await asyncio.sleep(0.05)
    await fake.wait_subscribed(fake.symbols[:3])
    for _ in range(40):
        fake.publish_liquidation(*random_liquidation(rng, fake))
    await wait_for_totals(client, fake, "after reconnect")
    await eventually(lambda: core.health.is_up(venue), "exchange up again")
    assert core.health.snapshot().invalid == {}
    print(f"{venue}: burst of 200 frames queued in {burst_seconds * 1000:.1f} ms")  # noqa: T201
