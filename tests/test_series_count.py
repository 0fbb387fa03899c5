"""``cryptoliq_scrape_series``: the series of each family in the previous ``/metrics`` body,
counted as the fast writer writes them, carried by the next body (byte for byte as
prometheus_client renders the same counts), and logged when the total first appears and when
it moves."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics

from exporter.core import Core
from exporter.events import POSITIONING_SOURCES, LongShortRatio, MarketContext, Reason
from exporter.exposition import (
    SERIES_LOG_INTERVAL_SECONDS,
    Exposition,
    SeriesLog,
    negotiate,
)
from exporter.health import LostReason, Stream
from exporter.heatmap.book import STALE_SOURCES
from exporter.heatmap.selection import HeatmapCoins
from exporter.metrics import FAMILIES, SCRAPE_SERIES, HistogramFamily, SnapshotCollector
from tests.conftest import FakeClock, make_liquidation, make_open_interest

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pytest

    from exporter.core import Snapshot

EXCHANGES = ("binance", "okx")
WINDOWS = 5  # 5m, 1h, 4h, 12h, 24h
BUCKETS = 7  # 100, 1k, 10k, 100k, 1M, 10M, +Inf
OM = "application/openmetrics-text;version=1.0.0"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]")


def known_core(clock: FakeClock, heatmap_coins: HeatmapCoins) -> Core:
    """Two exchanges; liquidations on two keys (binance BTC long twice, okx ETH short), one
    ETH market on okx with open interest, full market context and the three ratios."""
    core = Core(EXCHANGES, clock, heatmap_coins=heatmap_coins)
    core.record_liquidation(make_liquidation(clock))
    core.record_liquidation(make_liquidation(clock, notional_usd=2e6, quantity=25))
    core.record_liquidation(
        make_liquidation(clock, exchange="okx", symbol="ETH/USDT:USDT", coin="ETH", side="short")
    )
    for step in range(6):  # a rising open interest: positions for the heatmap, if ETH has one
        clock.now += 300
        core.record_open_interest(make_open_interest(clock, coins=1000.0 + 50 * step))
    now_ms = int(clock.now * 1000)
    core.record_market_context(
        MarketContext(
            exchange="okx",
            symbol="ETH/USDT:USDT",
            coin="ETH",
            index_price=2899.0,
            funding_rate=0.0001,
            predicted_funding_rate=0.00012,
            next_funding_ms=now_ms + 3_600_000,
            funding_interval_s=28_800.0,
            timestamp_ms=now_ms,
            received_ms=now_ms,
        )
    )
    for source in POSITIONING_SOURCES:
        core.record_long_short(
            LongShortRatio("okx", "ETH/USDT:USDT", "ETH", source, "5m", 1.1, now_ms, now_ms)
        )
    return core


def counted(body: str) -> dict[str, int]:
    """Samples per family of a text body, counted line by line (independently of the
    writer): a histogram's ``_bucket``, ``_count`` and ``_sum`` under its family."""
    family_of = {f.exposed_name: f.exposed_name for f in FAMILIES}
    for family in FAMILIES:
        if isinstance(family, HistogramFamily):
            family_of |= {family.name + s: family.name for s in ("_bucket", "_count", "_sum")}
    counts = dict.fromkeys((f.exposed_name for f in FAMILIES), 0)
    for line in body.splitlines():
        match = SAMPLE.match(line)
        if match and match[1] in family_of:
            counts[family_of[match[1]]] += 1
    return counts


def reference(
    snapshot: Snapshot, last: float | None, series: Mapping[str, int] | None, *, om: bool
) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot, last, series=series))
    return (openmetrics.generate_latest if om else generate_latest)(registry).decode()


def test_exact_counts_of_a_known_state(clock: FakeClock) -> None:
    """Hand-counted, with no heatmap (heatmap_coins lists a coin that never trades): every
    family below exactly; a family not listed (added later) as a line count of the body finds
    it; the total is their sum."""
    core = known_core(clock, HeatmapCoins(coins=("XRP",)))
    exposition = Exposition(clock)
    body, _ = exposition.render(core.snapshot(), None, None)
    first = exposition.series
    assert first is not None
    exchanges = len(EXCHANGES)
    heatmap = {f.exposed_name: 0 for f in FAMILIES if f.labels[:1] == ("coin",)}
    assert "cryptoliq_heatmap_usd" in heatmap
    expected = heatmap | {
        "cryptoliq_liquidations_total": 2,  # two (exchange, symbol, coin, side) keys
        "cryptoliq_liquidations_usd_total": 2,
        "cryptoliq_liquidation_size_usd": 2 * (BUCKETS + 2),  # buckets, _count, _sum
        "cryptoliq_liquidations_window_usd": 2 * WINDOWS,
        "cryptoliq_liquidations_window_orders": 2 * WINDOWS,
        "cryptoliq_liquidation_largest_usd": 2 * WINDOWS,
        "cryptoliq_open_interest_usd": 1,
        "cryptoliq_open_interest_coins": 1,
        "cryptoliq_mark_price_usd": 1,
        "cryptoliq_index_price_usd": 1,
        "cryptoliq_funding_rate": 1,
        "cryptoliq_funding_predicted_rate": 1,
        "cryptoliq_funding_next_timestamp_seconds": 1,
        "cryptoliq_funding_interval_seconds": 1,
        "cryptoliq_long_short_ratio": 3,
        "cryptoliq_heatmap_stale_readings_total": exchanges * len(STALE_SOURCES),
        "cryptoliq_exchange_up": exchanges,
        "cryptoliq_venue_info": exchanges,
        "cryptoliq_task_restarts_total": exchanges,  # each exchange's collector, from 0
        "cryptoliq_liquidations_dropped_late_total": exchanges,
        "cryptoliq_liquidations_duplicate_total": exchanges,
        "cryptoliq_backfill_failures_total": exchanges,
        "cryptoliq_backfill_progress_ratio": exchanges,
        "cryptoliq_last_message_timestamp_seconds": 0,  # no message yet
        "cryptoliq_messages_total": exchanges * len(Stream),
        "cryptoliq_invalid_messages_total": exchanges * len(Stream) * len(Reason),
        "cryptoliq_reconnects_total": exchanges * len(Stream),
        "cryptoliq_liquidations_lost_total": exchanges * len(LostReason),
        "cryptoliq_asyncio_tasks": 0,  # the app sets it at a scrape
        "cryptoliq_build_info": 1,
        "cryptoliq_scrape_render_seconds": 0,  # the first body: no previous render
        "cryptoliq_scrape_series": 0,
    }
    assert {name: first[name] for name in expected} == expected
    assert first == counted(body.decode())  # every family, those not listed too
    assert set(first) == {f.exposed_name for f in FAMILIES}
    body, _ = exposition.render(core.snapshot(), None, 0.01)
    second = exposition.series
    assert second is not None
    assert second == dict(first) | {
        "cryptoliq_scrape_render_seconds": 1,
        "cryptoliq_scrape_series": len(FAMILIES),  # every family, zeros too
    }
    assert second == counted(body.decode())


def test_counts_match_the_body_and_the_next_body_carries_them(clock: FakeClock) -> None:
    """With ETH's heatmap: every family's count is what a line count of the body finds, the
    grid's is two sides of the view's bins, and the next body (text and OpenMetrics) is
    prometheus_client's rendering of the same counts, byte for byte."""
    core = known_core(clock, HeatmapCoins())
    exposition = Exposition(clock)
    snapshot = core.snapshot()
    assert [view.coin for view in snapshot.heatmap.views] == ["ETH"]
    body, _ = exposition.render(snapshot, None, 0.01)
    first = exposition.series
    assert first is not None
    assert first == counted(body.decode())
    assert first["cryptoliq_heatmap_usd"] == 2 * snapshot.heatmap.views[0].bin_count > 0
    for accept, om in ((None, False), (OM, True)):
        served, _ = exposition.render(snapshot, accept, 0.02)
        text = served.decode()
        expected = reference(snapshot, 0.02, first, om=om)
        assert text.startswith(expected.removesuffix("# EOF\n"))
        rows = re.findall(r'^cryptoliq_scrape_series\{family="([^"]+)"\} (\S+)$', text, re.M)
        assert {name: int(float(value)) for name, value in rows} == first
        # From the second body on, the counts are stable: the family's own rows included.
        first = exposition.series
        assert first == counted(text)
        assert first["cryptoliq_scrape_series"] == len(FAMILIES)


def test_render_snapshot_and_the_slow_path_take_the_counts_given(clock: FakeClock) -> None:
    """The pure renderings remember nothing; the prometheus_client path (escaping=dots)
    carries the served counts too."""
    core = known_core(clock, HeatmapCoins())
    exposition = Exposition(clock)
    snapshot = core.snapshot()
    series = {"cryptoliq_heatmap_usd": 12, "cryptoliq_build_info": 1}
    assert exposition.render_snapshot(snapshot, series=series) == reference(
        snapshot, None, series, om=False
    )
    assert exposition.series is None
    assert SCRAPE_SERIES.name not in exposition.render_snapshot(snapshot)
    exposition.render(snapshot, None, None)
    dots, _ = exposition.render(snapshot, f"{OM};escaping=dots", None)
    assert negotiate(f"{OM};escaping=dots").fast is False
    assert 'cryptoliq__scrape__series{family="cryptoliq_heatmap_usd"}' in dots.decode()


def test_log_rule(caplog: pytest.LogCaptureFixture) -> None:
    """The first render logs; then a move of more than 10 % of the last logged total, at most
    once per 10 minutes (a move that waits is logged once the interval is over)."""
    clock = FakeClock(0.0)
    log = SeriesLog(clock)
    caplog.set_level(logging.INFO, logger="exporter.exposition")
    interval = SERIES_LOG_INTERVAL_SECONDS

    def render(at: float, total: int) -> bool:
        clock.now = at
        return log.rendered({"cryptoliq_heatmap_usd": total - 100, "cryptoliq_build_info": 100})

    assert render(0, 10_000)
    first = "/metrics has 10,000 series; largest families: cryptoliq_heatmap_usd 9,900, "
    assert caplog.messages == [first + "cryptoliq_build_info 100"]
    assert not render(60, 11_000)  # +10 %: not more than 10 %
    assert not render(120, 11_001)  # more, but within 10 minutes of the last line
    assert render(interval, 11_001)  # 10 minutes after it
    assert caplog.messages[-1].startswith("/metrics has 11,001 series (was 10,000);")
    assert not render(interval + 60, 12_000)  # +9 % of 11,001
    assert not render(interval + 61, 9_000)  # -18 %, 61 s after the last line
    assert render(2 * interval, 9_000)
    assert len(caplog.messages) == 3


def test_served_renders_log_the_first_body(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="exporter.exposition")
    exposition = Exposition(clock)
    core = known_core(clock, HeatmapCoins())
    exposition.render(core.snapshot(), None, None)
    assert exposition.series is not None
    first = dict(exposition.series)
    exposition.render(core.snapshot(), None, 0.01)  # + the count family and the render time
    assert len(caplog.messages) == 1
    largest = sorted(first, key=lambda name: -first[name])[:3]
    assert caplog.messages[0] == (
        f"/metrics has {sum(first.values()):,} series; largest families: "
        + ", ".join(f"{name} {first[name]:,}" for name in largest)
    )
