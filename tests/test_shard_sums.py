"""One exporter, two shards and three shards on the same input give the same dashboards.

A seeded market simulation (eight venues x BTC, ETH, SOL, each venue's mark price a little off the
others', six hours of history replayed into the heatmaps, then an hour of 15-second open-interest
readings, market context, long/short ratios and every simulated liquidation) is fed to a
``Core`` per replica, each replica taking only the markets its shard owns (``exporter.shard``).
BTC is scaled to sit just under 2^16 = 65,536 through the history and to rise through it in the
live hour, the venues one after another: every replica changes the bin step (100 -> 250) at the
hour, the hard part of a grid the replicas must share (exporter/heatmap/grid.py).
Every replica's ``/metrics`` body, rendered each minute of the last 20, goes into a real
VictoriaMetrics (its Prometheus import API, labelled ``setup`` and ``instance``), and every
dashboard expression and recording rule is evaluated there per setup through its Prometheus
query API: the results of 2 and 3 shards must equal the single exporter's, series for series.

Not compared, and why: expressions of one process (``up``, scrape and process series, the build
info: there is one per replica) and results that keep an ``instance`` label; the model-accuracy
panels (each replica scores its own markets' liquidations against its own part of the map:
docs/scaling.md); and expressions that read recording rules' output, which needs a rule engine
(tests/test_stack_victoriametrics.py runs vmalert): every recording rule's own expression is
compared instead.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pytest

from exporter.core import Core
from exporter.events import Liquidation, LongShortRatio, MarketContext, MarketHistory, OpenInterest
from exporter.exposition import Exposition
from exporter.fakeexchange.simulation import MarketSimulation
from exporter.health import Stream
from exporter.heatmap.selection import HeatmapCoins
from exporter.shard import Shard
from tests.conftest import FakeClock, unavailable
from tests.monitoring_support import (
    DASHBOARD_FILES,
    LABEL_VALUES,
    RULE_FILES,
    dashboard_expressions,
    load_dashboard,
    load_yaml,
)
from tests.test_lifecycle import free_port
from tests.test_stack_prometheus import defaults

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

# Eight venues: the liquidations panel shows the top six and "others".
VENUES: Final = ("binance", "bybit", "okx", "gate", "bitget", "htx", "deribit", "dydx")
COINS: Final = ("BTC", "ETH", "SOL")
SHARD_COUNTS: Final = (1, 2, 3)
HISTORY_STEPS: Final = 72  # 5-minute candles: six hours
LIVE_SECONDS: Final = 3600
POLL_SECONDS: Final = 15
RENDER_EVERY: Final = 60
RENDERED_SECONDS: Final = 1200  # the last 20 minutes are exported
# Grafana's built-in variables for a 20-minute dashboard at one sample a minute.
BUILTINS: Final = (("$__rate_interval", "3m"), ("$__interval", "3m"), ("$__range", "20m"))
# Per-replica by nature (see the module docstring): never compared. Whole metric names.
PER_PROCESS: Final = re.compile(
    r"(?<![\w:])(up|scrape_\w+|process_\w+|cryptoliq_build_info|cryptoliq_scrape_render_seconds"
    r"|cryptoliq_heatmap_hit_ratio|cryptoliq_heatmap_lift|cryptoliq_heatmap_scored_usd)(?![\w:])"
)
# A recording rule's output is named level:metric:operation.
RECORDED: Final = re.compile(r"(?<![\w:])\w+:\w+:\w+(?![\w:])")
COMPARED_COUNT: Final = 92
REL_TOL: Final = 1e-9
ABS_TOL: Final = 1e-12
# A fixed time, so that the hour at which every replica re-chooses the bin step falls 40
# minutes into the live hour (recent enough for VictoriaMetrics with a long retention).
LIVE_START: Final = datetime(2026, 11, 30, 11, 20, tzinfo=UTC).timestamp()
HOUR_INTO_LIVE: Final = 2400.0
# BTC: x 1.039 keeps the history's highest high (62,823 x 1.039 x the largest venue skew,
# 1.0015) at 65,371, under 65,536; the live hour rises 2 % more over its first 40 minutes, so
# that every venue is past 65,536 at the hour (its lowest then: 62,421 x 1.039 x 1.02 x 0.9994
# = 66,112) and some crossed it before (up to 66,331).
BTC_SCALE: Final = 1.039
BTC_RISE: Final = 0.02


def symbol(coin: str) -> str:
    return f"{coin}/USDT:USDT"


def skew(venue: str) -> float:
    """Each venue's mark price sits a few basis points off the simulation's."""
    return 1.0 + 0.0003 * (VENUES.index(venue) - 2)


def price_of(venue: str, coin: str, price: float, since_live: float) -> float:
    """A simulated price as the test's venue shows it ``since_live`` seconds into the live
    hour (negative: history): skewed by venue, BTC scaled and rising (see BTC_SCALE)."""
    if coin == "BTC":
        rise = BTC_RISE * min(max(since_live, 0.0), HOUR_INTO_LIVE) / HOUR_INTO_LIVE
        price *= BTC_SCALE * (1 + rise)
    return price * skew(venue)


@dataclass(frozen=True)
class Input:
    """What every setup is fed: histories, then timed events, and the render times."""

    start: float
    histories: tuple[MarketHistory, ...]
    events: tuple[tuple[float, Liquidation | OpenInterest | MarketContext | LongShortRatio], ...]
    renders: tuple[float, ...]


def simulated_input() -> Input:
    simulation = MarketSimulation(seed=11, coins=COINS, venues=VENUES)
    start = LIVE_START
    history_start = start - HISTORY_STEPS * 300
    rows: dict[tuple[str, str], list[tuple[int, float, float, float, float]]] = {}
    for step in range(HISTORY_STEPS):
        simulation.step(300)
        t_ms = int((history_start + (step + 1) * 300) * 1000)
        for state in simulation.market_states():
            _, high, low, close = simulation.candle(state.coin)
            low, high, close = (
                price_of(state.venue, state.coin, x, -1.0) for x in (low, high, close)
            )
            rows.setdefault((state.venue, state.coin), []).append(
                (t_ms, state.open_interest_coins, low, high, close)
            )
    histories = tuple(
        MarketHistory(
            exchange=venue,
            symbol=symbol(coin),
            coin=coin,
            timestamps_ms=np.array([r[0] for r in table], dtype=np.int64),
            open_interest_coins=np.array([r[1] for r in table]),
            low=np.array([r[2] for r in table]),
            high=np.array([r[3] for r in table]),
            close=np.array([r[4] for r in table]),
        )
        for (venue, coin), table in sorted(rows.items())
    )
    events: list[tuple[float, Any]] = []
    sim_start_ms = simulation.now_ms
    for tick in range(LIVE_SECONDS // POLL_SECONDS):
        for liquidation in simulation.step(POLL_SECONDS):
            t = start + (liquidation.ts_ms - sim_start_ms) / 1000.0
            ms = int(t * 1000)
            price = price_of(liquidation.venue, liquidation.coin, liquidation.price, t - start)
            events.append(
                (
                    t,
                    Liquidation(
                        exchange=liquidation.venue,
                        symbol=symbol(liquidation.coin),
                        coin=liquidation.coin,
                        side="long" if liquidation.side == "long" else "short",
                        price=price,
                        quantity=liquidation.coins,
                        notional_usd=liquidation.coins * price,
                        timestamp_ms=ms,
                        received_ms=ms,
                    ),
                )
            )
        t = start + (tick + 1) * POLL_SECONDS
        ms = int(t * 1000)
        for state in simulation.market_states():
            mark = price_of(state.venue, state.coin, state.mark_price, t - start)
            market = {"exchange": state.venue, "symbol": symbol(state.coin), "coin": state.coin}
            events.append(
                (
                    t,
                    OpenInterest(
                        **market,
                        coins=state.open_interest_coins,
                        usd=state.open_interest_coins * mark,
                        mark_price=mark,
                        timestamp_ms=ms,
                        received_ms=ms,
                    ),
                )
            )
            context = MarketContext(
                **market,
                index_price=price_of(state.venue, state.coin, state.index_price, t - start),
                funding_rate=state.funding_rate,
                predicted_funding_rate=state.predicted_funding_rate,
                next_funding_ms=(ms // 28_800_000 + 1) * 28_800_000,
                funding_interval_s=state.funding_hours * 3600.0,
                timestamp_ms=ms,
                received_ms=ms,
            )
            events.append((t, context))
            if tick % 20 == 0:
                for source, ratio in sorted(state.long_short.items()):
                    reading = LongShortRatio(
                        **market,
                        source=source,  # type: ignore[arg-type]  # the simulation's sources
                        period="5m",
                        ratio=ratio,
                        timestamp_ms=ms,
                        received_ms=ms,
                    )
                    events.append((t, reading))
    events.sort(key=lambda item: item[0])
    end = start + LIVE_SECONDS
    renders = tuple(
        float(t) for t in range(int(end - RENDERED_SECONDS), int(end) + 1, RENDER_EVERY)
    )
    return Input(start, histories, tuple(events), renders)


def record(core: Core, event: Liquidation | OpenInterest | MarketContext | LongShortRatio) -> None:
    """What a collector does with an event: the feed's message counted, the event recorded."""
    if isinstance(event, Liquidation):
        core.health.message(event.exchange, Stream.LIQUIDATIONS)
        core.record_liquidation(event)
    elif isinstance(event, OpenInterest):
        core.health.message(event.exchange, Stream.OPEN_INTEREST)
        core.record_open_interest(event)
    elif isinstance(event, MarketContext):
        core.record_market_context(event)
    else:
        core.health.message(event.exchange, Stream.POSITIONING)
        core.record_long_short(event)


def run_replica(feed: Input, shard: Shard) -> tuple[list[tuple[float, str]], list[float]]:
    """(render time, /metrics body) of one replica fed its shard's markets, and the BTC bin
    steps it held along the way."""
    clock = FakeClock(feed.start)
    core = Core(VENUES, clock, heatmap_coins=HeatmapCoins(coins=COINS))
    for history in feed.histories:
        if shard.owns(history.exchange, history.symbol):
            core.expect_history(history.exchange, history.symbol, history.coin)
            core.record_history(history)
            core.end_history(history.exchange, history.symbol)
    for venue in VENUES:  # as the collectors of every venue would, connected
        for stream in Stream:
            core.health.mark_up(venue, stream)
    exposition = Exposition(clock)
    bodies: list[tuple[float, str]] = []
    steps = [core.heatmap.coins["BTC"].step] if "BTC" in core.heatmap.coins else []
    renders = list(feed.renders)
    for t, event in feed.events:
        while renders and renders[0] < t:
            clock.now = renders.pop(0)
            bodies.append((clock.now, exposition.render_snapshot(core.snapshot())))
        clock.now = t
        if not shard.owns(event.exchange, event.symbol):
            continue
        record(core, event)
        btc = core.heatmap.coins.get("BTC")
        if btc is not None and (not steps or steps[-1] != btc.step):
            steps.append(btc.step)
    for t in renders:
        clock.now = t
        bodies.append((t, exposition.render_snapshot(core.snapshot())))
    return bodies, steps


class VictoriaMetrics:
    """A real single-node VictoriaMetrics on loopback, fed through its import API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def request(self, path: str, params: dict[str, str], body: bytes | None = None) -> Any:
        query = urllib.parse.urlencode(params)
        request = urllib.request.Request(f"{self.url}{path}?{query}", data=body)  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            data = response.read()
        return json.loads(data) if data else None

    def import_body(self, body: str, at: float, labels: dict[str, str]) -> None:
        params = {"timestamp": str(int(at * 1000))}
        extra = "&".join(f"extra_label={k}={v}" for k, v in labels.items())
        query = urllib.parse.urlencode(params) + "&" + extra
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.url}/api/v1/import/prometheus?{query}", data=body.encode()
        )
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - loopback
            pass

    def query(self, expr: str, at: float, setup: int) -> dict[frozenset[tuple[str, str]], float]:
        answer = self.request(
            "/api/v1/query", {"query": expr, "time": str(at), "extra_label": f"setup={setup}"}
        )
        assert answer["status"] == "success", (expr, answer)
        result: dict[frozenset[tuple[str, str]], float] = {}
        data = answer["data"]
        if data["resultType"] == "scalar":
            return {frozenset(): float(data["result"][1])}
        for series in data["result"]:
            labels = frozenset(series["metric"].items())
            result[labels] = float(series["value"][1])
        return result


@pytest.fixture(scope="module")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    binary = shutil.which("victoria-metrics")
    if binary is None:
        unavailable("victoria-metrics is not installed", "apt-get install victoria-metrics")
    port = free_port()
    storage: Path = tmp_path_factory.mktemp("victoria-metrics")
    process = subprocess.Popen(
        [
            binary,
            f"-storageDataPath={storage}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=ERROR",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):  # noqa: S310 - loopback
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    stderr = process.stderr.read().decode() if process.stderr else ""
                    pytest.fail(f"victoria-metrics did not start: {stderr[-2000:]}")
                time.sleep(0.1)
        yield VictoriaMetrics(url)
    finally:
        process.terminate()
        process.wait(timeout=20)


@dataclass(frozen=True)
class Loaded:
    victoria: VictoriaMetrics
    feed: Input
    # (shard count, index) -> the BTC bin steps that replica held, in order
    steps: dict[tuple[int, int], list[float]]


@pytest.fixture(scope="module")
def loaded(victoria: VictoriaMetrics) -> Loaded:
    """Every setup's replicas' bodies, imported."""
    feed = simulated_input()
    steps = {}
    for count in SHARD_COUNTS:
        for index in range(1, count + 1):
            labels = {"setup": str(count), "instance": f"{index}/{count}", "job": "cryptoliq"}
            bodies, steps[count, index] = run_replica(feed, Shard(index, count))
            for at, body in bodies:
                victoria.import_body(body, at, labels)
    victoria.request("/internal/resetRollupResultCache", {})
    victoria.request("/internal/force_flush", {})
    return Loaded(victoria, feed, steps)


def as_query(expr: str, variables: dict[str, str]) -> str:
    variable = LABEL_VALUES.match(expr)
    if variable is not None:
        label = variable.group("label")
        expr = f"group by ({label}) ({variable.group('selector')})"
    for builtin, value in BUILTINS:
        expr = expr.replace(builtin, value)
    for name, value in variables.items():
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    return expr


def compared_expressions() -> list[tuple[str, str]]:
    """(where, PromQL) of every dashboard expression and every recording rule's expression;
    those reading recorded series are covered by the rules' own expressions."""
    found: list[tuple[str, str]] = []
    for path in DASHBOARD_FILES:
        dashboard = load_dashboard(path)
        variables = defaults(dashboard)
        found.extend(
            (expression.name, as_query(expression.expr, variables))
            for expression in dashboard_expressions(dashboard)
        )
    found.extend(
        (f"rule {rule['record']}", str(rule["expr"]))
        for path in RULE_FILES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "record" in rule
    )
    return found


def test_shards_partition_the_markets() -> None:
    markets = [(venue, symbol(coin)) for venue in VENUES for coin in COINS]
    for count in SHARD_COUNTS:
        owners = [
            [i for i in range(1, count + 1) if Shard(i, count).owns(*market)] for market in markets
        ]
        assert all(len(owner) == 1 for owner in owners), count
        if count > 1:  # every replica serves some markets, and every coin is split
            assert {owner[0] for owner in owners} == set(range(1, count + 1))


def test_every_replica_changes_the_btc_step_at_the_hour(loaded: Loaded) -> None:
    """The input crosses an octave: every replica holding BTC goes from 100 to 250, once."""
    assert loaded.steps[1, 1] == [100.0, 250.0]
    for (count, index), steps in loaded.steps.items():
        assert steps in ([100.0, 250.0], []), (count, index, steps)  # [] holds no BTC market
    assert sum(steps == [100.0, 250.0] for steps in loaded.steps.values()) >= 4


@pytest.mark.parametrize("count", [c for c in SHARD_COUNTS if c > 1])
def test_every_dashboard_expression_adds_up_across_shards(loaded: Loaded, count: int) -> None:
    victoria, at = loaded.victoria, loaded.feed.renders[-1]
    problems: list[str] = []
    compared = 0
    for where, expr in compared_expressions():
        if PER_PROCESS.search(expr) or RECORDED.search(expr):
            continue
        single = victoria.query(expr, at, 1)
        sharded = victoria.query(expr, at, count)
        if any(name == "instance" for labels in single for name, _ in labels):
            continue  # one series per replica: nothing to add up
        if not single:
            problems.append(f"{where}: no data in the single exporter: {expr}")
            continue
        compared += 1
        if single.keys() != sharded.keys():
            missing = sorted(map(sorted, single.keys() - sharded.keys()))[:3]
            extra = sorted(map(sorted, sharded.keys() - single.keys()))[:3]
            problems.append(f"{where}: series differ: missing {missing}, extra {extra}")
            continue
        for labels, value in single.items():
            other = sharded[labels]
            same = (math.isnan(value) and math.isnan(other)) or math.isclose(
                value, other, rel_tol=REL_TOL, abs_tol=ABS_TOL
            )
            if not same:
                problems.append(f"{where} {sorted(labels)}: {value!r} vs {other!r} ({expr})")
                break
    assert not problems, "\n".join(problems)
    # Of the 127 expressions (dashboards and recording rules), COMPARED_COUNT hold data and are
    # sums over markets; the rest are a process's own, read recorded series, or keep an
    # instance label.
    assert compared == COMPARED_COUNT
