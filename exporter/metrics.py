"""Turns a core ``Snapshot`` into Prometheus metric families (the metric contract lives here).

``collect()`` does no I/O and builds fresh families on every scrape, so a series whose market
disappeared disappears from the scrape instead of going stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from exporter import __version__
from exporter.events import Reason
from exporter.health import LostReason, Stream
from exporter.heatmap.grid import format_price
from exporter.heatmap.views import SIDE_NAMES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from exporter.core import Snapshot
    from exporter.health import HealthSnapshot

PREFIX = "cryptoliq_"
SYMBOL_LABELS = ["exchange", "symbol", "coin", "side"]
WINDOW_LABELS = [*SYMBOL_LABELS, "window"]
MARKET_LABELS = ["exchange", "symbol", "coin"]

Kind = Literal["counter", "gauge", "histogram", "info"]


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family of the contract: what both renderers (``SnapshotCollector`` here and
    ``exporter.exposition``) print in its HELP and TYPE lines and label sets.

    ``name`` is the family name as prometheus_client has it: counters without ``_total``, the
    info family without ``_info``.
    """

    name: str
    kind: Kind
    documentation: str
    labels: tuple[str, ...] = ()

    # Empty prometheus_client families to add samples to, one per kind.

    def counter(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labels)

    def gauge(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=self.labels)

    def histogram(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labels)

    def info(self) -> InfoMetricFamily:
        return InfoMetricFamily(self.name, self.documentation, labels=self.labels)


LIQUIDATIONS = Family(
    PREFIX + "liquidations",
    "counter",
    "Liquidation orders seen since start, by the side of the liquidated position.",
    tuple(SYMBOL_LABELS),
)
LIQUIDATIONS_USD = Family(
    PREFIX + "liquidations_usd",
    "counter",
    "USD notional of liquidation orders seen since start.",
    tuple(SYMBOL_LABELS),
)
SIZE_HISTOGRAM = Family(
    PREFIX + "liquidation_size_usd",
    "histogram",
    "Size of single liquidation orders in USD.",
    ("exchange", "coin", "side"),
)
WINDOW_USD = Family(
    PREFIX + "liquidations_window_usd",
    "gauge",
    "USD notional of liquidations in the trailing window.",
    tuple(WINDOW_LABELS),
)
WINDOW_ORDERS = Family(
    PREFIX + "liquidations_window_orders",
    "gauge",
    "Number of liquidation orders in the trailing window.",
    tuple(WINDOW_LABELS),
)
WINDOW_LARGEST = Family(
    PREFIX + "liquidation_largest_usd",
    "gauge",
    "USD notional of the largest single liquidation order in the trailing window.",
    tuple(WINDOW_LABELS),
)
OPEN_INTEREST_USD = Family(
    PREFIX + "open_interest_usd", "gauge", "Open interest in USD.", tuple(MARKET_LABELS)
)
OPEN_INTEREST_COINS = Family(
    PREFIX + "open_interest_coins",
    "gauge",
    "Open interest in coins of the base currency.",
    tuple(MARKET_LABELS),
)
MARK_PRICE = Family(PREFIX + "mark_price_usd", "gauge", "Mark price in USD.", tuple(MARKET_LABELS))
HEATMAP_USD = Family(
    PREFIX + "heatmap_usd",
    "gauge",
    "Estimated USD (at the mark price) of positions whose liquidation price lies in the "
    "price bin starting at `price`.",
    ("coin", "side", "price"),
)
HEATMAP_BIN_WIDTH = Family(
    PREFIX + "heatmap_bin_width_usd", "gauge", "Width of the heatmap price bins.", ("coin",)
)
CLUSTER_PRICE = Family(
    PREFIX + "liquidation_cluster_price_usd",
    "gauge",
    "Centre price of the rank-th largest heatmap bin (long: below the mark price).",
    ("coin", "side", "rank"),
)
CLUSTER_USD = Family(
    PREFIX + "liquidation_cluster_usd",
    "gauge",
    "Estimated USD in the rank-th largest heatmap bin.",
    ("coin", "side", "rank"),
)
AT_RISK = Family(
    PREFIX + "liquidation_at_risk_usd",
    "gauge",
    "Estimated USD liquidated if the price moved by `move` against the side.",
    ("coin", "side", "move"),
)
HIT_RATIO = Family(
    PREFIX + "heatmap_hit_ratio",
    "gauge",
    "Share of the last 24 h's liquidation USD whose price fell in the model's top-decile "
    "bins at that moment.",
    ("coin",),
)
LIFT = Family(
    PREFIX + "heatmap_lift",
    "gauge",
    "heatmap_hit_ratio divided by what a uniform guess of as many bins would score.",
    ("coin",),
)
SCORED_USD = Family(
    PREFIX + "heatmap_scored_usd",
    "gauge",
    "Liquidation USD of the last 24 h that the accuracy figures are based on.",
    ("coin",),
)
EXCHANGE_UP = Family(
    PREFIX + "exchange_up",
    "gauge",
    "1 while every stream of the exchange has its latest connection or poll succeeding.",
    ("exchange",),
)
COLLECTOR_RESTARTS = Family(
    PREFIX + "collector_restarts",
    "counter",
    "Times a collector task died unexpectedly and was restarted.",
    ("exchange",),
)
DROPPED_LATE = Family(
    PREFIX + "liquidations_dropped_late",
    "counter",
    "Liquidations older than the longest window when they arrived (not in window totals).",
    ("exchange",),
)
DUPLICATES = Family(
    PREFIX + "liquidations_duplicate",
    "counter",
    "Liquidations seen before (re-sent after a reconnect) and skipped.",
    ("exchange",),
)
LOST = Family(
    PREFIX + "liquidations_lost",
    "counter",
    "Liquidations a venue sent that could not be counted, by reason (totals are understated "
    "by at least this much).",
    ("exchange", "reason"),
)
BACKFILL_FAILURES = Family(
    PREFIX + "backfill_failures",
    "counter",
    "Markets whose history could not be fetched at start-up (their heatmap starts empty).",
    ("exchange",),
)
LAST_MESSAGE = Family(
    PREFIX + "last_message_timestamp_seconds",
    "gauge",
    "Unix time of the last message received on the stream.",
    ("exchange", "stream"),
)
MESSAGES = Family(
    PREFIX + "messages",
    "counter",
    "Messages received on the stream, valid or not.",
    ("exchange", "stream"),
)
INVALID_MESSAGES = Family(
    PREFIX + "invalid_messages",
    "counter",
    "Messages rejected and skipped, by reason.",
    ("exchange", "stream", "reason"),
)
RECONNECTS = Family(
    PREFIX + "reconnects",
    "counter",
    "Reconnections (WebSocket) or retried polls (REST) after a failure.",
    ("exchange", "stream"),
)
BUILD_INFO = Family(PREFIX + "build", "info", "Exporter version.", ("version",))
ASYNCIO_TASKS = Family(
    PREFIX + "asyncio_tasks",
    "gauge",
    "Tasks on the exporter's event loop at this scrape: steady in a healthy process.",
)
SCRAPE_RENDER_SECONDS = Family(
    PREFIX + "scrape_render_seconds",
    "gauge",
    "Seconds the previous /metrics response took to build and render.",
)


class SnapshotCollector(Collector):
    """Renders one snapshot; build a new one per scrape (it holds no state of its own).

    The reference rendering: ``exporter.exposition`` writes the same text directly and faster
    (tests compare the two byte for byte); this one serves what that one does not support.
    """

    def __init__(self, snapshot: Snapshot, last_render_seconds: float | None = None) -> None:
        self._snapshot = snapshot
        self._last_render_seconds = last_render_seconds

    def collect(self) -> Iterator[Metric]:
        yield from self._liquidation_counters()
        yield self._size_histogram()
        yield from self._windows()
        yield from self._open_interest()
        yield from self._heatmap()
        yield from self._health()

    def _liquidation_counters(self) -> Iterator[Metric]:
        snap = self._snapshot
        orders = LIQUIDATIONS.counter()
        usd = LIQUIDATIONS_USD.counter()
        for key in sorted(snap.orders):
            orders.add_metric(list(key), snap.orders[key])
            usd.add_metric(list(key), snap.usd[key])
        yield orders
        yield usd

    def _size_histogram(self) -> Metric:
        sizes = self._snapshot.sizes
        family = SIZE_HISTOGRAM.histogram()
        labels = bucket_labels(sizes.bounds)
        for row in sorted(range(len(sizes.keys)), key=lambda i: sizes.keys[i]):
            buckets = list(zip(labels, sizes.cumulative[row].tolist(), strict=True))
            family.add_metric(list(sizes.keys[row]), buckets, float(sizes.sums[row]))
        return family

    def _windows(self) -> Iterator[Metric]:
        totals = self._snapshot.windows
        usd = WINDOW_USD.gauge()
        orders = WINDOW_ORDERS.gauge()
        largest = WINDOW_LARGEST.gauge()
        usd_rows = totals.usd.tolist()
        order_rows = totals.orders.tolist()
        largest_rows = totals.largest.tolist()
        for row in sorted(range(len(totals.keys)), key=lambda i: totals.keys[i]):
            key = list(totals.keys[row])
            for w, window in enumerate(totals.windows):
                labels = [*key, window.name]
                usd.add_metric(labels, usd_rows[row][w])
                orders.add_metric(labels, order_rows[row][w])
                largest.add_metric(labels, largest_rows[row][w])
        yield usd
        yield orders
        yield largest

    def _open_interest(self) -> Iterator[Metric]:
        usd = OPEN_INTEREST_USD.gauge()
        coins = OPEN_INTEREST_COINS.gauge()
        mark = MARK_PRICE.gauge()
        for oi in sorted(self._snapshot.open_interest, key=lambda o: (o.exchange, o.symbol)):
            labels = [oi.exchange, oi.symbol, oi.coin]
            usd.add_metric(labels, oi.usd)
            coins.add_metric(labels, oi.coins)
            mark.add_metric(labels, oi.mark_price)
        yield usd
        yield coins
        yield mark

    def _heatmap(self) -> Iterator[Metric]:
        snap = self._snapshot.heatmap
        grid = HEATMAP_USD.gauge()
        width = HEATMAP_BIN_WIDTH.gauge()
        cluster_price = CLUSTER_PRICE.gauge()
        cluster_usd = CLUSTER_USD.gauge()
        at_risk = AT_RISK.gauge()
        for view in snap.views:
            width.add_metric([view.coin], view.step)
            rows = view.usd.tolist()
            for side, values in zip(SIDE_NAMES, rows, strict=True):
                for i, value in enumerate(values):
                    price = format_price(view.first_index + i, view.step, view.decimals)
                    grid.add_metric([view.coin, side, price], value)
            for cluster in view.clusters:
                labels = [view.coin, cluster.side, str(cluster.rank)]
                cluster_price.add_metric(labels, cluster.price)
                cluster_usd.add_metric(labels, cluster.usd)
            for side, values in zip(SIDE_NAMES, view.at_risk.tolist(), strict=True):
                for move, value in zip(view.moves, values, strict=True):
                    at_risk.add_metric([view.coin, side, move_label(move)], value)
        yield from (grid, width, cluster_price, cluster_usd, at_risk)

        hit_ratio = HIT_RATIO.gauge()
        lift = LIFT.gauge()
        scored = SCORED_USD.gauge()
        for coin, accuracy in sorted(snap.accuracy.items()):
            hit_ratio.add_metric([coin], accuracy.hit_ratio)
            lift.add_metric([coin], accuracy.lift)
            scored.add_metric([coin], accuracy.scored_usd)
        yield from (hit_ratio, lift, scored)

    def _health(self) -> Iterator[Metric]:
        health = self._snapshot.health
        up = EXCHANGE_UP.gauge()
        for exchange in health.exchanges:
            up.add_metric([exchange], 1.0 if health.up[exchange] else 0.0)
        yield up
        for family, counts in exchange_counters(health):
            metric = family.counter()
            for exchange in health.exchanges:
                metric.add_metric([exchange], counts.get(exchange, 0))
            yield metric

        last = LAST_MESSAGE.gauge()
        for (exchange, stream), seconds in sorted(health.last_message_s.items()):
            last.add_metric([exchange, stream.value], seconds)
        yield last
        for family, values in health_counters(health):
            metric = family.counter()
            for key in sorted(values):
                metric.add_metric(list(key), values[key])
            yield metric
        if health.tasks is not None:
            tasks = ASYNCIO_TASKS.gauge()
            tasks.add_metric([], health.tasks)
            yield tasks
        info = BUILD_INFO.info()
        info.add_metric([__version__], {})
        yield info
        if self._last_render_seconds is not None:
            render = SCRAPE_RENDER_SECONDS.gauge()
            render.add_metric([], self._last_render_seconds)
            yield render


# prometheus_client's formatting of ``le`` (untyped there, hence the annotation here).
_go_float_string: Final[Callable[[float], str]] = floatToGoString


def bucket_labels(bounds: tuple[float, ...]) -> list[str]:
    """``le`` label values of the size histogram's bounds, as prometheus_client's ``Histogram``
    (and Go's client) write them: ``1e+06``, not ``1000000.0``, or the series would not match
    those of a histogram another client exports with the same buckets."""
    return [_go_float_string(b) for b in bounds]


def move_label(move: float) -> str:
    """``move`` label value of an at-risk move: 0.01 is ``1%``."""
    return f"{move * 100:g}%"


def exchange_counters(health: HealthSnapshot) -> list[tuple[Family, dict[str, int]]]:
    """The per-exchange counters of ``health`` (every enabled exchange is shown, zeros too)."""
    return [
        (COLLECTOR_RESTARTS, health.restarts),
        (DROPPED_LATE, health.dropped_late),
        (DUPLICATES, health.duplicates),
        (BACKFILL_FAILURES, health.backfill_failures),
    ]


def health_counters(
    health: HealthSnapshot,
) -> list[tuple[Family, dict[tuple[str, ...], int]]]:
    """The per-stream counters of ``health``, keyed by their label values.

    Every (exchange, stream[, reason]) starts at zero, so rate() and increase() work from the
    first failure on and dashboards need no "or 0" tricks."""
    exchanges = health.exchanges
    streams = [(e, s) for e in exchanges for s in Stream]
    return [
        (MESSAGES, {(e, s.value): health.messages.get((e, s), 0) for e, s in streams}),
        (
            INVALID_MESSAGES,
            {
                (e, s.value, r.value): health.invalid.get((e, s, r), 0)
                for e, s in streams
                for r in Reason
            },
        ),
        (RECONNECTS, {(e, s.value): health.reconnects.get((e, s), 0) for e, s in streams}),
        (
            LOST,
            {
                (e, r.value): health.lost.get((e, r), 0)
                for e in health.exchanges
                for r in LostReason
            },
        ),
    ]
