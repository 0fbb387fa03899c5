"""Turns a core ``Snapshot`` into Prometheus metric families (the metric contract lives here).

``collect()`` does no I/O and builds fresh families on every scrape, so a series whose market
disappeared disappears from the scrape instead of going stale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from exporter import __version__

if TYPE_CHECKING:
    from collections.abc import Iterator

    from exporter.core import Snapshot

PREFIX = "cryptoliq_"
SYMBOL_LABELS = ["exchange", "symbol", "coin", "side"]
WINDOW_LABELS = [*SYMBOL_LABELS, "window"]
MARKET_LABELS = ["exchange", "symbol", "coin"]


class SnapshotCollector(Collector):
    """Renders one snapshot; build a new one per scrape (it holds no state of its own)."""

    def __init__(self, snapshot: Snapshot, last_render_seconds: float | None = None) -> None:
        self._snapshot = snapshot
        self._last_render_seconds = last_render_seconds

    def collect(self) -> Iterator[Metric]:
        yield from self._liquidation_counters()
        yield self._size_histogram()
        yield from self._windows()
        yield from self._open_interest()
        yield from self._health()

    def _liquidation_counters(self) -> Iterator[Metric]:
        snap = self._snapshot
        orders = CounterMetricFamily(
            PREFIX + "liquidations",
            "Liquidation orders seen since start, by the side of the liquidated position.",
            labels=SYMBOL_LABELS,
        )
        usd = CounterMetricFamily(
            PREFIX + "liquidations_usd",
            "USD notional of liquidation orders seen since start.",
            labels=SYMBOL_LABELS,
        )
        for key in sorted(snap.orders):
            orders.add_metric(list(key), snap.orders[key])
            usd.add_metric(list(key), snap.usd[key])
        yield orders
        yield usd

    def _size_histogram(self) -> Metric:
        sizes = self._snapshot.sizes
        family = HistogramMetricFamily(
            PREFIX + "liquidation_size_usd",
            "Size of single liquidation orders in USD.",
            labels=["exchange", "coin", "side"],
        )
        labels = ["+Inf" if b == float("inf") else repr(float(b)) for b in sizes.bounds]
        for row in sorted(range(len(sizes.keys)), key=lambda i: sizes.keys[i]):
            buckets = list(zip(labels, sizes.cumulative[row].tolist(), strict=True))
            family.add_metric(list(sizes.keys[row]), buckets, float(sizes.sums[row]))
        return family

    def _windows(self) -> Iterator[Metric]:
        totals = self._snapshot.windows
        usd = GaugeMetricFamily(
            PREFIX + "liquidations_window_usd",
            "USD notional of liquidations in the trailing window.",
            labels=WINDOW_LABELS,
        )
        orders = GaugeMetricFamily(
            PREFIX + "liquidations_window_orders",
            "Number of liquidation orders in the trailing window.",
            labels=WINDOW_LABELS,
        )
        largest = GaugeMetricFamily(
            PREFIX + "liquidation_largest_usd",
            "USD notional of the largest single liquidation order in the trailing window.",
            labels=WINDOW_LABELS,
        )
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
        usd = GaugeMetricFamily(
            PREFIX + "open_interest_usd", "Open interest in USD.", labels=MARKET_LABELS
        )
        coins = GaugeMetricFamily(
            PREFIX + "open_interest_coins",
            "Open interest in coins of the base currency.",
            labels=MARKET_LABELS,
        )
        mark = GaugeMetricFamily(
            PREFIX + "mark_price_usd", "Mark price in USD.", labels=MARKET_LABELS
        )
        for oi in sorted(self._snapshot.open_interest, key=lambda o: (o.exchange, o.symbol)):
            labels = [oi.exchange, oi.symbol, oi.coin]
            usd.add_metric(labels, oi.usd)
            coins.add_metric(labels, oi.coins)
            mark.add_metric(labels, oi.mark_price)
        yield usd
        yield coins
        yield mark

    def _health(self) -> Iterator[Metric]:
        health = self._snapshot.health
        up = GaugeMetricFamily(
            PREFIX + "exchange_up",
            "1 while every stream of the exchange has its latest connection or poll succeeding.",
            labels=["exchange"],
        )
        restarts = CounterMetricFamily(
            PREFIX + "collector_restarts",
            "Times a collector task died unexpectedly and was restarted.",
            labels=["exchange"],
        )
        dropped = CounterMetricFamily(
            PREFIX + "liquidations_dropped_late",
            "Liquidations older than the longest window when they arrived (not in window totals).",
            labels=["exchange"],
        )
        for exchange in health.exchanges:
            up.add_metric([exchange], 1.0 if health.up[exchange] else 0.0)
            restarts.add_metric([exchange], health.restarts.get(exchange, 0))
            dropped.add_metric([exchange], health.dropped_late.get(exchange, 0))
        yield up
        yield restarts
        yield dropped

        last = GaugeMetricFamily(
            PREFIX + "last_message_timestamp_seconds",
            "Unix time of the last message received on the stream.",
            labels=["exchange", "stream"],
        )
        for (exchange, stream), seconds in sorted(health.last_message_s.items()):
            last.add_metric([exchange, stream.value], seconds)
        yield last
        yield _counter(
            "messages",
            "Messages received on the stream, valid or not.",
            ["exchange", "stream"],
            {(e, s.value): n for (e, s), n in health.messages.items()},
        )
        yield _counter(
            "invalid_messages",
            "Messages rejected and skipped, by reason.",
            ["exchange", "stream", "reason"],
            {(e, s.value, r.value): n for (e, s, r), n in health.invalid.items()},
        )
        yield _counter(
            "reconnects",
            "Reconnections (WebSocket) or retried polls (REST) after a failure.",
            ["exchange", "stream"],
            {(e, s.value): n for (e, s), n in health.reconnects.items()},
        )
        info = InfoMetricFamily(PREFIX + "build", "Exporter version.", labels=["version"])
        info.add_metric([__version__], {})
        yield info
        if self._last_render_seconds is not None:
            render = GaugeMetricFamily(
                PREFIX + "scrape_render_seconds",
                "Seconds the previous /metrics response took to build and render.",
            )
            render.add_metric([], self._last_render_seconds)
            yield render


def _counter(
    name: str, documentation: str, labels: list[str], values: dict[tuple[str, ...], int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(PREFIX + name, documentation, labels=labels)
    for key in sorted(values):
        family.add_metric(list(key), values[key])
    return family
