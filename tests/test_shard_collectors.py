"""Sharded collectors (``--shard I/N``) against the fake exchanges: each shard subscribes to,
polls one by one and backfills only its own markets (shards 1/2 and 2/2 split the unsharded
set exactly), each liquidation is recorded by its owner only (``shard_of``) and counted as left
to another shard by the others on an all-market feed, and a shard that owns none of a venue's
markets idles: no connection, no error, no ``cryptoliq_exchange_up`` series of it."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections import Counter
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import Exporter, create_app
from exporter.collectors.intake import markets_by_id
from exporter.config import DEFAULT_COINS, Config, ExchangeConfig
from exporter.demo import watched_symbol
from exporter.fakeexchange import FakeExchange
from exporter.fakeexchange.protocol import ALL_MARKETS
from exporter.health import Health, Stream
from exporter.shard import WHOLE, Shard, shard_of
from exporter.venues import VENUES, exchange_label
from tests.collector_harness import RecordingCore, eventually, running
from tests.collector_harness import make_collector as harness_collector
from tests.test_lifecycle import free_port, get, task_restarts
from tests.venues import case_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aiohttp import web
    from aiohttp.test_utils import TestClient
    from pytest_aiohttp import AiohttpClient

    from exporter.collectors.collector import Collector
    from exporter.config import Transport
    from exporter.core import Core
    from exporter.venues import Venue
    from tests.conftest import FakeExchangeFactory

    Client = TestClient[web.Request, web.Application]

HALVES = (Shard(1, 2), Shard(2, 2))
# Three stream styles: one all-market stream (Binance ``!forceOrder@arr`` through ccxt.pro,
# open interest and history one request per market), a subscription per market (Bybit through
# ccxt.pro, open interest of every market in one call, history per market), and the native
# client on a venue without ccxt (BitMEX: a topic per market, one REST call for all).
STYLES = [
    pytest.param("binance", "ccxt", id="binance-all-market-stream"),
    pytest.param("bybit", "ccxt", id="bybit-per-market-subscriptions"),
    pytest.param("bitmex", "native", id="bitmex-native"),
]


class ShardCore(RecordingCore):
    """The real core of one replica, also keeping the markets its backfill announced."""

    def __init__(self, venue: str) -> None:
        super().__init__((venue,))
        self.announced: list[str] = []

    def expect_history(self, exchange: str, symbol: str, coin: str) -> None:
        self.announced.append(symbol)
        super().expect_history(exchange, symbol, coin)


def shard_collector(
    fake: FakeExchange,
    core: Core,
    shard: Shard,
    transport: Transport,
    symbols: Sequence[str] | None = None,
    backfill_hours: float = 1.0,
) -> Collector:
    """A collector of ``shard`` on ``fake``, ``symbols: all`` unless given (an hour of
    history: one page of open interest and candles per market)."""
    return harness_collector(
        fake, core, symbols, backfill_hours=backfill_hours, transport=transport, shard=shard
    )


async def market_ids(fake: FakeExchange, transport: Transport) -> dict[str, str]:
    """Each market id the venue's REST calls name a market by, to its unified symbol, as the
    collector's own exchange client loads them."""
    exchange = shard_collector(fake, ShardCore(fake.venue), WHOLE, transport).make_exchange()
    try:
        await exchange.load_markets()
        return {i: str(m["symbol"]) for i, m in markets_by_id(exchange.markets or {}).items()}
    finally:
        await exchange.close()


def subscribed(fake: FakeExchange) -> set[str]:
    return set().union(*fake.subscriptions())


class Io:
    """What one replica asked the fake for while it ran alone."""

    def __init__(self) -> None:
        self.subscribed: set[str] = set()
        self.requested: set[str] = set()  # markets named in a REST request's query
        self.polled: set[str] = set()  # markets of the open-interest readings it recorded
        self.backfilled: set[str] = set()

    def as_dict(self) -> dict[str, set[str]]:
        return {
            "subscribed": self.subscribed,
            "requested one by one": self.requested,
            "polled": self.polled,
            "backfilled": self.backfilled,
        }


async def io_of(
    fake: FakeExchange, shard: Shard, transport: Transport, ids: dict[str, str], owned: set[str]
) -> Io:
    """Run the replica of ``shard`` alone until it is up, has polled and backfilled, and its
    subscriptions cover ``owned`` (the test's own reckoning); what it asked for."""
    core = ShardCore(fake.venue)
    label = exchange_label(fake.venue)
    fake.rest_log.clear()
    async with running(shard_collector(fake, core, shard, transport)):
        await eventually(lambda: core.health.is_up(fake.venue), f"{shard} up")
        await eventually(
            lambda: ALL_MARKETS in subscribed(fake) or owned <= subscribed(fake),
            f"{shard} subscribed to {sorted(owned)}",
        )

        def polled_and_backfilled() -> bool:
            snap = core.health.snapshot()
            return bool(snap.messages.get((label, Stream.OPEN_INTEREST))) and (
                snap.backfill_progress.get(label) == 1.0
            )

        await eventually(polled_and_backfilled, f"{shard} polled and backfilled", 30)
        io = Io()
        io.subscribed = subscribed(fake)
        io.requested = {ids[q["symbol"]] for _, q in list(fake.rest_log) if "symbol" in q}
        io.polled = {e.symbol for e in core.open_interest}
        io.backfilled = set(core.announced)
        assert core.health.snapshot().invalid == {}
    await eventually(lambda: not fake.subscriptions(), f"{shard} disconnected")
    return io


@pytest.mark.integration
@pytest.mark.parametrize(("venue", "transport"), STYLES)
async def test_shards_split_the_markets_and_the_liquidations(
    venue: str, transport: Transport, fake_exchange: FakeExchangeFactory
) -> None:
    """Run alone, 1/2 and 2/2 each subscribe to, request one by one, poll and backfill the
    markets ``shard_of`` gives them of what 1/1 covers (an all-market channel stays one
    subscription); run together with 1/1, each liquidation is recorded by 1/1 and its owner
    only, and on an all-market feed counted as left to its shard by the other."""
    fake = await fake_exchange(venue)
    label = exchange_label(venue)
    ids = await market_ids(fake, transport)
    every = set(fake.symbols)

    def owned(shard: Shard, markets: set[str]) -> set[str]:
        return {s for s in markets if shard_of(label, s, shard.count) == shard.index}

    # One replica at a time, so that every request and subscription is its own.
    whole = await io_of(fake, WHOLE, transport, ids, every)
    all_market_feed = ALL_MARKETS in whole.subscribed
    assert whole.polled == every
    assert whole.subscribed == ({ALL_MARKETS} if all_market_feed else every)
    halves = [await io_of(fake, s, transport, ids, owned(s, every)) for s in HALVES]
    for what, reference in whole.as_dict().items():
        for shard, io in zip(HALVES, halves, strict=True):
            got = io.as_dict()[what]
            want = reference if reference == {ALL_MARKETS} else owned(shard, reference)
            assert got == want, f"{shard} {what}: {sorted(got)} != {sorted(want)}"
    assert all(io.polled for io in halves), "each half serves some market"
    if venue != "bitmex":  # BitMEX serves no history and answers every market in one call
        assert whole.requested == whole.backfilled == every

    # All three replicas at once on the same fake: each liquidation reaches its owner only.
    cores = {shard: ShardCore(venue) for shard in (WHOLE, *HALVES)}
    async with AsyncExitStack() as stack:
        for shard, core in cores.items():
            collector = shard_collector(fake, core, shard, transport, backfill_hours=0)
            await stack.enter_async_context(running(collector))

        def each_market_covered_twice() -> bool:  # by the unsharded replica and its owner
            connections = fake.subscriptions()
            return all(
                sum(1 for keys in connections if ALL_MARKETS in keys or s in keys) == 2
                or (all_market_feed and len(connections) == len(cores))
                for s in every
            )

        await eventually(each_market_covered_twice, "every replica subscribed")
        published = Counter[tuple[str, str]]()
        for n, symbol in enumerate(sorted(every)):
            market = fake.market(symbol)
            price = round(market.mark_price, market.tick_decimals)
            coins = round(float(market.contract_size) * (n + 1), market.qty_decimals)
            for side in ("long", "short"):
                fake.publish_liquidation(symbol, side, price, coins, 1_700_000_000_000 + n)
                published[symbol, side] += 1

        def recorded(core: ShardCore) -> Counter[tuple[str, str]]:
            return Counter((e.symbol, e.side) for e in core.liquidations)

        def other_shard(core: ShardCore) -> int:
            return core.health.snapshot().other_shard.get(label, 0)

        def left_to(shard: Shard) -> int:
            return sum(n for (s, _), n in published.items() if s not in owned(shard, every))

        def settled() -> bool:
            return recorded(cores[WHOLE]) == published and all(
                sum(recorded(cores[s]).values()) + other_shard(cores[s])
                == (published.total() if all_market_feed else published.total() - left_to(s))
                for s in HALVES
            )

        try:
            await eventually(settled, "every liquidation recorded or left to its shard")
        except AssertionError as exc:
            state = {str(s): (dict(recorded(c)), other_shard(c)) for s, c in cores.items()}
            raise AssertionError(f"{exc}; published {dict(published)}; got {state}") from None
        for shard in HALVES:
            core = cores[shard]
            mine = Counter({k: n for k, n in published.items() if k[0] in owned(shard, every)})
            assert recorded(core) == mine, f"{shard} recorded {recorded(core)}"
            assert other_shard(core) == (left_to(shard) if all_market_feed else 0)
            assert core.health.snapshot().invalid == {}
            assert not core.health.snapshot().lost
        assert recorded(cores[HALVES[0]]) + recorded(cores[HALVES[1]]) == published
        assert other_shard(cores[WHOLE]) == 0


async def scrape(client: Client) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    text = await (await client.get("/metrics")).text()
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@pytest.mark.integration
async def test_a_shard_without_markets_of_a_venue_idles(
    fake_exchange: FakeExchangeFactory,
    aiohttp_client: AiohttpClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """OKX's all-market channel under a symbol list: with 3 shards BTC, ETH and SOL belong to
    shard 3 and XRP to shard 2, so shard 1 idles; shard 3 records its three, counts XRP as left
    to shard 2 and MANTA (its own, but configured nowhere) not at all."""
    caplog.set_level(logging.INFO, logger="exporter.collectors")
    venue: Venue = "okx"
    symbols = ("BTC", "ETH", "SOL", "XRP")
    owners = {c: shard_of(venue, f"{c}/USDT:USDT", 3) for c in (*symbols, "MANTA")}
    assert owners == {"BTC": 3, "ETH": 3, "SOL": 3, "XRP": 2, "MANTA": 3}, "the fixture's premise"
    fake = await fake_exchange(venue)
    idle_core = ShardCore(venue)
    config = Config(exchanges=(ExchangeConfig(name=venue, symbols=symbols),), shard=Shard(1, 3))
    idle = shard_collector(fake, idle_core, Shard(1, 3), "native", symbols)
    client = await aiohttp_client(create_app(Exporter(config, idle_core, lambda _c, _k: [idle])))
    await eventually(lambda: idle_core.health.is_idle(venue), "shard 1/3 idle")
    asked = {path for path, _ in fake.rest_log}

    serving = ShardCore(venue)
    async with running(shard_collector(fake, serving, Shard(3, 3), "native", symbols)):
        await eventually(lambda: serving.health.is_up(venue), "shard 3/3 up")
        await fake.wait_subscribed()
        for n, coin in enumerate((*symbols, "MANTA")):
            market = fake.market(f"{coin}/USDT:USDT")
            price = round(market.mark_price, market.tick_decimals)
            coins = 2 * market.contract_coins  # whole contracts
            fake.publish_liquidation(market.symbol, "long", price, coins, 1_700_000_000_000 + n)

        def other_shard() -> int:
            return serving.health.snapshot().other_shard.get(venue, 0)

        await eventually(lambda: len(serving.liquidations) == 3 and other_shard() == 1, "taken")
        assert {e.coin for e in serving.liquidations} == {"BTC", "ETH", "SOL"}
        assert serving.health.snapshot().invalid == {}
        assert fake.connections_total == 1, "the idle shard never connected"

    # Idle: the markets loaded, nothing polled (no reading), no error, its task still there.
    assert asked, "the idle shard loaded the markets"
    assert case_of(venue).oi_path not in asked
    assert not idle_core.open_interest
    assert not idle_core.liquidations
    metrics = await scrape(client)
    for family in ("cryptoliq_exchange_up", "cryptoliq_last_message_timestamp_seconds"):
        assert not metrics.get(family), f"{family} of an idle venue: {metrics.get(family)}"
    assert metrics["cryptoliq_task_restarts_total"] == {(("task", venue),): 0.0}
    health = await (await client.get("/healthz")).json()
    assert health["exchanges_up"] == {}
    assert (health["shard"], health["idle"]) == ("1/3", [venue])
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("shard 1/3 serves no market of okx; it idles here") == 1
    assert "shard 3/3: serving 3 of 4 markets of okx" in messages
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in warnings if r.name.startswith("exporter")], warnings


def test_an_idle_feed_leaves_its_exchange_to_the_feeds_that_serve() -> None:
    """Binance COIN-M idle, USD-M serving: ``binance`` is up by USD-M alone; OKX idle is gone."""
    health = Health(("binance", "binance_coinm", "okx"), lambda: 1.0)
    for stream in (Stream.LIQUIDATIONS, Stream.OPEN_INTEREST):
        health.mark_up("binance", stream)
    health.message("okx", Stream.LIQUIDATIONS)
    health.idle("binance_coinm")
    health.idle("okx")
    health.other_shard("binance_coinm")
    snap = health.snapshot()
    assert snap.exchanges == ("binance",)
    assert snap.up == {"binance": True}
    assert snap.last_message_s == {}
    assert snap.backfill_progress == {"binance": 0.0}
    assert snap.completeness == {"binance": "sampled"}  # as configured, alike in every replica
    assert snap.other_shard == {"binance": 1}


def scraped(text: str) -> tuple[dict[str, float], set[tuple[str, str]], dict[str, float]]:
    """exchange_up by exchange, (exchange, symbol) of every non-zero open-interest reading,
    and restarts by task, of one scrape."""
    up: dict[str, float] = {}
    open_interest: set[tuple[str, str]] = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "cryptoliq_exchange_up":
                up[labels["exchange"]] = sample.value
            elif sample.name == "cryptoliq_open_interest_usd" and sample.value > 0:
                open_interest.add((labels["exchange"], labels["symbol"]))
    return up, open_interest, task_restarts(text)


def listen(port: int) -> list[str]:
    return ["--port", str(port), "--listen-address", "127.0.0.1"]


@pytest.mark.integration
def test_two_demo_shards_serve_every_exchange_between_them() -> None:
    """``--demo --shard 1/2`` and ``2/2`` side by side: each serves the open interest of its own
    markets of the default coins, together all of them; every exchange is up in a replica that
    serves it and absent (idle) or up in the other; no task restarts, no traceback."""
    markets = {
        (exchange_label(v), watched_symbol(FakeExchange(v), coin))
        for v in VENUES
        for coin in DEFAULT_COINS
    }
    ports = {shard: free_port() for shard in HALVES}
    processes = {
        shard: subprocess.Popen(
            [sys.executable, "-m", "exporter", "--demo", "--shard", shard.label, *listen(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for shard, port in ports.items()
    }
    want = {s: {m for m in markets if shard_of(*m, 2) == s.index} for s in HALVES}
    no_restarts: dict[str, float] = {"demo": 0.0, **dict.fromkeys(VENUES, 0.0)}
    got: dict[Shard, tuple[dict[str, float], set[tuple[str, str]], dict[str, float]]] = {}
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            got = {s: scraped(get(f"http://127.0.0.1:{p}/metrics") or "") for s, p in ports.items()}
            settled = all(got[s][1] == want[s] and set(got[s][0].values()) == {1.0} for s in HALVES)
            if settled:
                break
            time.sleep(0.5)
        for shard in HALVES:
            up, open_interest, restarts = got[shard]
            assert open_interest == want[shard], f"{shard}: {sorted(open_interest ^ want[shard])}"
            assert set(up.values()) == {1.0}, f"{shard}: {up}"
            assert restarts == no_restarts, f"{shard}: {restarts}"
        assert set().union(*(got[s][0] for s in HALVES)) == {e for e, _ in markets}
    finally:
        outputs = {}
        for shard, process in processes.items():
            process.terminate()
            outputs[shard] = process.communicate(timeout=10)[0]
    for shard, process in processes.items():
        assert process.returncode == 0, outputs[shard]
        assert "Traceback" not in outputs[shard]
        assert f"shard {shard}: serving" in outputs[shard]
