"""The metric contract: every family ``/metrics`` shows, in exposition order, each with the one
function that turns a core ``Snapshot`` into its rows; and ``SnapshotCollector``, which renders
those rows through prometheus_client (the reference that ``exporter.exposition`` matches).

``collect()`` does no I/O and builds fresh families on every scrape, so a series whose market
disappeared disappears from the scrape instead of going stale.

Adding a family: define it here with its rows function and put it in ``FAMILIES`` where it is
to be exposed. Both renderers, the contract tests and the README check follow from that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Final, Literal, Protocol, TypeAlias, TypeVar

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar as ClientExemplar
from prometheus_client.utils import floatToGoString

from exporter import __version__
from exporter.events import Reason
from exporter.health import LostReason, Stream
from exporter.heatmap.book import STALE_SOURCES
from exporter.heatmap.grid import format_price, label_decimals
from exporter.heatmap.params import LEVERAGE_BANDS
from exporter.heatmap.views import SIDE_NAMES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

    import numpy as np
    import numpy.typing as npt

    from exporter.core import Snapshot, SymbolKey
    from exporter.events import MarketContext, OpenInterest
    from exporter.heatmap.book import Accuracy
    from exporter.heatmap.views import Cluster, CoinView
    from exporter.histogram import Exemplar
    from exporter.rolling import WindowTotals

PREFIX = "cryptoliq_"
SYMBOL_LABELS = ("exchange", "symbol", "coin", "side")
WINDOW_LABELS = (*SYMBOL_LABELS, "window")
MARKET_LABELS = ("exchange", "symbol", "coin")

Sample: TypeAlias = "tuple[tuple[str, ...], float]"
"""(label values in the family's label order, value): one series."""
HistogramRow: TypeAlias = (
    "tuple[tuple[str, ...], Sequence[tuple[str, float, Exemplar | None]], float]"
)
"""(label values, ``(le, cumulative count, exemplar)`` per bucket ending with ``+Inf``, sum)."""
Rows: TypeAlias = "Callable[[Snapshot, float | None], Iterable[Sample] | None]"
"""(snapshot, seconds the previous render took or None) -> the family's series in exposition
order, or None when the family is left out of this scrape altogether (no HELP/TYPE either)."""


@dataclass(frozen=True, slots=True)
class Family:
    """A counter, gauge or info family of the contract and where its rows come from.

    ``name`` is the family name as prometheus_client has it: counters without ``_total``, the
    info family without ``_info``.
    """

    name: str
    kind: Literal["counter", "gauge", "info"]
    documentation: str
    labels: tuple[str, ...]
    rows: Rows

    @property
    def exposed_name(self) -> str:
        """The name its samples (and the text format's HELP/TYPE lines) carry."""
        return self.name + {"counter": "_total", "info": "_info"}.get(self.kind, "")

    @property
    def text_type(self) -> str:
        """Its ``# TYPE`` in the Prometheus text format, which has no info type."""
        return "gauge" if self.kind == "info" else self.kind


@dataclass(frozen=True, slots=True)
class HistogramFamily:
    """A histogram family of the contract; its rows are whole histograms, one per label set."""

    name: str
    documentation: str
    labels: tuple[str, ...]
    rows: Callable[[Snapshot], Iterable[HistogramRow]]
    kind: ClassVar[Literal["histogram"]] = "histogram"

    @property
    def exposed_name(self) -> str:
        return self.name

    @property
    def text_type(self) -> str:
        return self.kind


AnyFamily: TypeAlias = "Family | HistogramFamily"


# --- rows -------------------------------------------------------------------------------------
# Sorted by label values unless the order is given (windows, moves, exchanges as configured).


def _liquidation_rows(values: Callable[[Snapshot], Mapping[SymbolKey, float]]) -> Rows:
    def rows(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
        chosen = values(snap)
        return ((key, chosen[key]) for key in sorted(snap.orders))

    return rows


def _sizes(snap: Snapshot) -> Iterator[HistogramRow]:
    sizes = snap.sizes
    les = bucket_labels(sizes.bounds)
    cumulative = sizes.cumulative.tolist()
    sums = sizes.sums.tolist()
    exemplars = sizes.exemplars
    for row in sorted(range(len(sizes.keys)), key=lambda i: sizes.keys[i]):
        buckets = tuple(zip(les, cumulative[row], exemplars[row], strict=True))
        yield sizes.keys[row], buckets, sums[row]


def _window_rows(field: Callable[[WindowTotals[SymbolKey]], npt.NDArray[np.generic]]) -> Rows:
    def rows(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
        totals = snap.windows
        values = field(totals).tolist()
        windows = [w.name for w in totals.windows]
        for row in sorted(range(len(totals.keys)), key=lambda i: totals.keys[i]):
            key = totals.keys[row]
            for w, window in enumerate(windows):
                yield (*key, window), values[row][w]

    return rows


class _MarketReading(Protocol):
    @property
    def exchange(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def coin(self) -> str: ...


M = TypeVar("M", bound=_MarketReading)


def _market_rows(
    readings: Callable[[Snapshot], Iterable[M]], field: Callable[[M], float | None]
) -> Rows:
    """One series per market, by exchange and symbol; a market whose venue does not give the
    figure (None) has none."""

    def rows(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
        for reading in sorted(readings(snap), key=lambda r: (r.exchange, r.symbol)):
            value = field(reading)
            if value is not None:
                yield (reading.exchange, reading.symbol, reading.coin), value

    return rows


def _open_interest(field: Callable[[OpenInterest], float]) -> Rows:
    return _market_rows(lambda snap: snap.open_interest, field)


def _context_rows(field: Callable[[MarketContext], float | None]) -> Rows:
    return _market_rows(lambda snap: snap.market_context, field)


def _next_funding(context: MarketContext) -> float | None:
    next_ms = context.next_funding_ms
    return None if next_ms is None else next_ms / 1000.0


def _long_short(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
    readings = sorted(snap.long_short, key=lambda r: (r.exchange, r.symbol, r.source))
    return (((r.exchange, r.symbol, r.coin, r.source, r.period), r.ratio) for r in readings)


def _heatmap_grid(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
    """Every bin of every coin, both sides: what ``exporter.exposition`` writes in bulk."""
    for view in snap.heatmap.views:
        for side, values in zip(SIDE_NAMES, view.usd.tolist(), strict=True):
            for i, value in enumerate(values):
                price = format_price(view.first_index + i, view.step, view.decimals)
                yield (view.coin, side, price), value


def _bin_width(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
    return (((view.coin,), view.step) for view in snap.heatmap.views)


_BAND_NAMES: Final = tuple(name for name, _ in LEVERAGE_BANDS)


def _map_prices(view: CoinView) -> list[str]:
    """``price`` labels of the view's liquidation-map bins (their lower edges)."""
    step, first = view.map_step, view.map_first
    decimals = label_decimals(step)
    return [format_price(first + i, step, decimals) for i in range(view.map_count)]


def _liquidation_map(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
    """Every map bin of every coin, side and leverage band, zeros included."""
    for view in snap.heatmap.views:
        prices = _map_prices(view)
        for side, bands in zip(SIDE_NAMES, view.map_usd.tolist(), strict=True):
            for band, values in zip(_BAND_NAMES, bands, strict=True):
                for price, value in zip(prices, values, strict=True):
                    yield (view.coin, side, band, price), value


def _map_cumulative(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
    for view in snap.heatmap.views:
        prices = _map_prices(view)
        for side, values in zip(SIDE_NAMES, view.cumulative.tolist(), strict=True):
            for price, value in zip(prices, values, strict=True):
                yield (view.coin, side, price), value


def _map_bin_width(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
    return (((view.coin,), view.map_step) for view in snap.heatmap.views)


def _stale_readings(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
    """Every enabled exchange and source, zeros too."""
    counts = snap.heatmap.stale_readings
    return (
        ((e, source), counts.get((e, source), 0))
        for e in snap.health.exchanges
        for source in STALE_SOURCES
    )


def _book_ratio(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
    for view in snap.heatmap.views:
        for side, ratio in zip(SIDE_NAMES, view.book_ratio, strict=True):
            yield (view.coin, side), ratio


def _positions_coins(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
    for view in snap.heatmap.views:
        for side, coins in zip(SIDE_NAMES, view.positions.tolist(), strict=True):
            yield (view.coin, side), coins


def _heatmap_open_interest(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
    return (((view.coin,), view.open_interest) for view in snap.heatmap.views)


def _cluster_rows(field: Callable[[Cluster], float]) -> Rows:
    def rows(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
        for view in snap.heatmap.views:
            for cluster in view.clusters:
                yield (view.coin, cluster.side, str(cluster.rank)), field(cluster)

    return rows


def _at_risk(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
    for view in snap.heatmap.views:
        for side, values in zip(SIDE_NAMES, view.at_risk.tolist(), strict=True):
            for move, value in zip(view.moves, values, strict=True):
                yield (view.coin, side, move_label(move)), value


def _accuracy_rows(field: Callable[[Accuracy], float]) -> Rows:
    def rows(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
        accuracy = snap.heatmap.accuracy
        return (((coin,), field(accuracy[coin])) for coin in sorted(accuracy))

    return rows


def _heatmap_ready(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
    ready = snap.heatmap.ready
    return (((coin,), 1.0 if ready[coin] else 0.0) for coin in sorted(ready))


def _backfill_progress(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
    progress = snap.health.backfill_progress
    return (((e,), progress.get(e, 0.0)) for e in snap.health.exchanges)


def _exchange_up(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
    health = snap.health
    return (((e,), 1.0 if health.up[e] else 0.0) for e in health.exchanges)


def _venue_info(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
    completeness = snap.health.completeness
    return (((e, completeness[e]), 1.0) for e in snap.health.exchanges)


def _task_restarts(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
    restarts = snap.health.restarts
    return (((task,), restarts[task]) for task in sorted(restarts))


def _per_exchange(counts: Callable[[Snapshot], Mapping[str, int]]) -> Rows:
    """Every enabled exchange, zeros too, in the configured order."""

    def rows(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
        chosen = counts(snap)
        return (((e,), chosen.get(e, 0)) for e in snap.health.exchanges)

    return rows


def _last_message(snap: Snapshot, _render: float | None) -> Iterator[Sample]:
    last = snap.health.last_message_s
    return (((e, s.value), last[e, s]) for e, s in sorted(last))


def _per_stream(counts: Callable[[Snapshot], Mapping[tuple[str, Stream], int]]) -> Rows:
    """Every (exchange, stream) starts at zero, so rate() and increase() work from the first
    failure on and dashboards need no "or 0" tricks."""

    def rows(snap: Snapshot, _render: float | None) -> list[Sample]:
        chosen = counts(snap)
        keys = [(e, s) for e in snap.health.exchanges for s in Stream]
        return sorted(((e, s.value), chosen.get((e, s), 0)) for e, s in keys)

    return rows


def _invalid(snap: Snapshot, _render: float | None) -> list[Sample]:
    invalid = snap.health.invalid
    keys = [(e, s, r) for e in snap.health.exchanges for s in Stream for r in Reason]
    return sorted(((e, s.value, r.value), invalid.get((e, s, r), 0)) for e, s, r in keys)


def _lost(snap: Snapshot, _render: float | None) -> list[Sample]:
    lost = snap.health.lost
    keys = [(e, r) for e in snap.health.exchanges for r in LostReason]
    return sorted(((e, r.value), lost.get((e, r), 0)) for e, r in keys)


def _asyncio_tasks(snap: Snapshot, _render: float | None) -> list[Sample] | None:
    tasks = snap.health.tasks
    return None if tasks is None else [((), tasks)]


def _shard_info(snap: Snapshot, _render: float | None) -> list[Sample]:
    return [((str(snap.shard.index), str(snap.shard.count)), 1.0)]


def _build_info(_snap: Snapshot, _render: float | None) -> list[Sample]:
    return [((__version__,), 1)]


def _render_seconds(_snap: Snapshot, render: float | None) -> list[Sample] | None:
    return None if render is None else [((), render)]


def _no_series_counts(_snap: Snapshot, _render: float | None) -> None:
    """``SCRAPE_SERIES`` is not in the snapshot: the renderers write it from the counts of
    the previous render they are given (``series_rows``), or leave it out."""


def series_rows(series: Mapping[str, int]) -> Iterator[Sample]:
    """``SCRAPE_SERIES`` rows from ``{family name as exposed: series}``, sorted by name."""
    return (((name,), series[name]) for name in sorted(series))


# --- families, in exposition order (FAMILIES below) ------------------------------------------

LIQUIDATIONS = Family(
    PREFIX + "liquidations",
    "counter",
    "Liquidation orders seen since start, by the side of the liquidated position.",
    SYMBOL_LABELS,
    _liquidation_rows(lambda snap: snap.orders),
)
LIQUIDATIONS_USD = Family(
    PREFIX + "liquidations_usd",
    "counter",
    "USD notional of liquidation orders seen since start.",
    SYMBOL_LABELS,
    _liquidation_rows(lambda snap: snap.usd),
)
SIZE_HISTOGRAM = HistogramFamily(
    PREFIX + "liquidation_size_usd",
    "Size of single liquidation orders in USD.",
    ("exchange", "coin", "side"),
    _sizes,
)
WINDOW_USD = Family(
    PREFIX + "liquidations_window_usd",
    "gauge",
    "USD notional of liquidations in the trailing window.",
    WINDOW_LABELS,
    _window_rows(lambda totals: totals.usd),
)
WINDOW_ORDERS = Family(
    PREFIX + "liquidations_window_orders",
    "gauge",
    "Number of liquidation orders in the trailing window.",
    WINDOW_LABELS,
    _window_rows(lambda totals: totals.orders),
)
WINDOW_LARGEST = Family(
    PREFIX + "liquidation_largest_usd",
    "gauge",
    "USD notional of the largest single liquidation order in the trailing window.",
    WINDOW_LABELS,
    _window_rows(lambda totals: totals.largest),
)
OPEN_INTEREST_USD = Family(
    PREFIX + "open_interest_usd",
    "gauge",
    "Open interest in USD.",
    MARKET_LABELS,
    _open_interest(lambda oi: oi.usd),
)
OPEN_INTEREST_COINS = Family(
    PREFIX + "open_interest_coins",
    "gauge",
    "Open interest in coins of the base currency.",
    MARKET_LABELS,
    _open_interest(lambda oi: oi.coins),
)
MARK_PRICE = Family(
    PREFIX + "mark_price_usd",
    "gauge",
    "Mark price in USD.",
    MARKET_LABELS,
    _open_interest(lambda oi: oi.mark_price),
)
INDEX_PRICE = Family(
    PREFIX + "index_price_usd",
    "gauge",
    "Index price in USD (the venue's spot reference; mark - index is the basis).",
    MARKET_LABELS,
    _context_rows(lambda c: c.index_price),
)
FUNDING_RATE = Family(
    PREFIX + "funding_rate",
    "gauge",
    "Funding rate of the current interval, a fraction of position value paid at the next "
    "funding time (positive: longs pay shorts); per interval, see "
    "cryptoliq_funding_interval_seconds.",
    MARKET_LABELS,
    _context_rows(lambda c: c.funding_rate),
)
FUNDING_PREDICTED_RATE = Family(
    PREFIX + "funding_predicted_rate",
    "gauge",
    "The venue's predicted funding rate of the interval after the current one (venues that "
    "publish one).",
    MARKET_LABELS,
    _context_rows(lambda c: c.predicted_funding_rate),
)
FUNDING_NEXT = Family(
    PREFIX + "funding_next_timestamp_seconds",
    "gauge",
    "Unix time of the next funding payment.",
    MARKET_LABELS,
    _context_rows(_next_funding),
)
FUNDING_INTERVAL = Family(
    PREFIX + "funding_interval_seconds",
    "gauge",
    "Seconds between funding payments (1 h, 4 h, 8 h by venue and market).",
    MARKET_LABELS,
    _context_rows(lambda c: c.funding_interval_s),
)
LONG_SHORT_RATIO = Family(
    PREFIX + "long_short_ratio",
    "gauge",
    "The venue's long/short ratio over `period`; source: accounts (accounts net long / net "
    "short), top_accounts (the same among its top traders), top_positions (top traders' long "
    "/ short position size).",
    (*MARKET_LABELS, "source", "period"),
    _long_short,
)
HEATMAP_USD = Family(
    PREFIX + "heatmap_usd",
    "gauge",
    "Estimated USD (at the mark price) of positions whose liquidation price lies in the "
    "price bin starting at `price`.",
    ("coin", "side", "price"),
    _heatmap_grid,
)
HEATMAP_BIN_WIDTH = Family(
    PREFIX + "heatmap_bin_width_usd",
    "gauge",
    "Width of the heatmap price bins.",
    ("coin",),
    _bin_width,
)
LIQUIDATION_MAP_USD = Family(
    PREFIX + "liquidation_map_usd",
    "gauge",
    "The heatmap now, in wider bins by leverage band ("
    + ", ".join(
        f"{name}: up to {top:g}x" if top < math.inf else f"{name}: above"
        for name, top in LEVERAGE_BANDS
    )
    + "): estimated USD of positions whose liquidation price lies in the bin from `price`.",
    ("coin", "side", "leverage", "price"),
    _liquidation_map,
)
LIQUIDATION_MAP_CUMULATIVE = Family(
    PREFIX + "liquidation_map_cumulative_usd",
    "gauge",
    "Estimated USD liquidated by a move to the map bin: longs by a fall to its lower edge "
    "`price`, shorts by a rise to its upper edge.",
    ("coin", "side", "price"),
    _map_cumulative,
)
LIQUIDATION_MAP_BIN_WIDTH = Family(
    PREFIX + "liquidation_map_bin_width_usd",
    "gauge",
    "Width of the liquidation-map price bins.",
    ("coin",),
    _map_bin_width,
)
HEATMAP_BOOK_RATIO = Family(
    PREFIX + "heatmap_book_ratio",
    "gauge",
    "Coins held by the side's estimated positions divided by the coin's open interest: the "
    "share of open interest the heatmap shows.",
    ("coin", "side"),
    _book_ratio,
)
HEATMAP_POSITIONS = Family(
    PREFIX + "heatmap_positions_coins",
    "gauge",
    "Coins held by the side's estimated positions over the coin's heatmap markets: "
    "heatmap_book_ratio's numerator, which adds up across replicas (--shard).",
    ("coin", "side"),
    _positions_coins,
)
HEATMAP_OPEN_INTEREST = Family(
    PREFIX + "heatmap_open_interest_coins",
    "gauge",
    "Open interest of the coin's heatmap markets in coins: heatmap_book_ratio's denominator, "
    "which adds up across replicas (--shard).",
    ("coin",),
    _heatmap_open_interest,
)
HEATMAP_STALE_READINGS = Family(
    PREFIX + "heatmap_stale_readings",
    "counter",
    "Open-interest readings that opened and closed no positions because the open interest "
    "had not changed for heatmap_stale_after_seconds (stale upstream data), or moved again "
    "after such a stretch; source: live (polls) or history (backfill replays).",
    ("exchange", "source"),
    _stale_readings,
)
CLUSTER_PRICE = Family(
    PREFIX + "liquidation_cluster_price_usd",
    "gauge",
    "Centre price of the rank-th largest heatmap bin (long: below the mark price).",
    ("coin", "side", "rank"),
    _cluster_rows(lambda cluster: cluster.price),
)
CLUSTER_USD = Family(
    PREFIX + "liquidation_cluster_usd",
    "gauge",
    "Estimated USD in the rank-th largest heatmap bin.",
    ("coin", "side", "rank"),
    _cluster_rows(lambda cluster: cluster.usd),
)
AT_RISK = Family(
    PREFIX + "liquidation_at_risk_usd",
    "gauge",
    "Estimated USD liquidated if the price moved by `move` against the side.",
    ("coin", "side", "move"),
    _at_risk,
)
HIT_RATIO = Family(
    PREFIX + "heatmap_hit_ratio",
    "gauge",
    "Share of the last 24 h's liquidation USD whose price fell in the model's top-decile "
    "bins at that moment.",
    ("coin",),
    _accuracy_rows(lambda accuracy: accuracy.hit_ratio),
)
LIFT = Family(
    PREFIX + "heatmap_lift",
    "gauge",
    "heatmap_hit_ratio divided by what a uniform guess of as many bins would score.",
    ("coin",),
    _accuracy_rows(lambda accuracy: accuracy.lift),
)
SCORED_USD = Family(
    PREFIX + "heatmap_scored_usd",
    "gauge",
    "Liquidation USD of the last 24 h that the accuracy figures are based on.",
    ("coin",),
    _accuracy_rows(lambda accuracy: accuracy.scored_usd),
)
HEATMAP_READY = Family(
    PREFIX + "heatmap_ready",
    "gauge",
    "1 once every market of the coin has its history in the heatmap (or it was given up); 0 "
    "while live readings wait for a backfill.",
    ("coin",),
    _heatmap_ready,
)
EXCHANGE_UP = Family(
    PREFIX + "exchange_up",
    "gauge",
    "1 while the exchange's liquidation and open-interest streams have their latest connection "
    "or poll succeeding.",
    ("exchange",),
    _exchange_up,
)
VENUE_INFO = Family(
    PREFIX + "venue_info",
    "gauge",
    "1 per enabled exchange; completeness: complete (its public feed sends every liquidation) "
    "or sampled (a sample: its totals are lower bounds).",
    ("exchange", "completeness"),
    _venue_info,
)
TASK_RESTARTS = Family(
    PREFIX + "task_restarts",
    "counter",
    "Times a supervised background task (an exchange's collector, the demo, the state "
    "snapshots) died unexpectedly and was restarted.",
    ("task",),
    _task_restarts,
)
DROPPED_LATE = Family(
    PREFIX + "liquidations_dropped_late",
    "counter",
    "Liquidations older than the longest window when they arrived (not in window totals).",
    ("exchange",),
    _per_exchange(lambda snap: snap.health.dropped_late),
)
DUPLICATES = Family(
    PREFIX + "liquidations_duplicate",
    "counter",
    "Liquidations seen before (re-sent after a reconnect) and skipped.",
    ("exchange",),
    _per_exchange(lambda snap: snap.health.duplicates),
)
OTHER_SHARD = Family(
    PREFIX + "liquidations_other_shard",
    "counter",
    "Liquidations an all-market feed brought for markets another shard (--shard) serves: "
    "left to that shard, not counted here (0 unsharded).",
    ("exchange",),
    _per_exchange(lambda snap: snap.health.other_shard),
)
BACKFILL_FAILURES = Family(
    PREFIX + "backfill_failures",
    "counter",
    "Markets whose history could not be fetched at start-up (their heatmap starts empty).",
    ("exchange",),
    _per_exchange(lambda snap: snap.health.backfill_failures),
)
BACKFILL_PROGRESS = Family(
    PREFIX + "backfill_progress_ratio",
    "gauge",
    "Share of the exchange's markets whose start-up history backfill is through (recorded or "
    "given up); 1 when done or disabled.",
    ("exchange",),
    _backfill_progress,
)
LAST_MESSAGE = Family(
    PREFIX + "last_message_timestamp_seconds",
    "gauge",
    "Unix time of the last message received on the stream.",
    ("exchange", "stream"),
    _last_message,
)
MESSAGES = Family(
    PREFIX + "messages",
    "counter",
    "Messages received on the stream, valid or not.",
    ("exchange", "stream"),
    _per_stream(lambda snap: snap.health.messages),
)
INVALID_MESSAGES = Family(
    PREFIX + "invalid_messages",
    "counter",
    "Messages rejected and skipped, by reason.",
    ("exchange", "stream", "reason"),
    _invalid,
)
RECONNECTS = Family(
    PREFIX + "reconnects",
    "counter",
    "Reconnections (WebSocket) or retried polls (REST) after a failure.",
    ("exchange", "stream"),
    _per_stream(lambda snap: snap.health.reconnects),
)
LOST = Family(
    PREFIX + "liquidations_lost",
    "counter",
    "Liquidations a venue sent that could not be counted, by reason (totals are understated "
    "by at least this much).",
    ("exchange", "reason"),
    _lost,
)
ASYNCIO_TASKS = Family(
    PREFIX + "asyncio_tasks",
    "gauge",
    "Tasks on the exporter's event loop at this scrape: steady in a healthy process.",
    (),
    _asyncio_tasks,
)
BUILD_INFO = Family(PREFIX + "build", "info", "Exporter version.", ("version",), _build_info)
SHARD_INFO = Family(
    PREFIX + "shard",
    "info",
    "The markets this replica serves: shard `index` of `count` (--shard; 1 of 1 serves all).",
    ("index", "count"),
    _shard_info,
)
SCRAPE_RENDER_SECONDS = Family(
    PREFIX + "scrape_render_seconds",
    "gauge",
    "Seconds the previous /metrics response took to build and render.",
    (),
    _render_seconds,
)
SCRAPE_SERIES = Family(
    PREFIX + "scrape_series",
    "gauge",
    "Series of the family (by its name as exposed; a histogram's buckets, _count and _sum "
    "together) in the previous /metrics response; process_ and python_ series not included.",
    ("family",),
    _no_series_counts,
)

FAMILIES: Final[tuple[AnyFamily, ...]] = (
    LIQUIDATIONS,
    LIQUIDATIONS_USD,
    SIZE_HISTOGRAM,
    WINDOW_USD,
    WINDOW_ORDERS,
    WINDOW_LARGEST,
    OPEN_INTEREST_USD,
    OPEN_INTEREST_COINS,
    MARK_PRICE,
    INDEX_PRICE,
    FUNDING_RATE,
    FUNDING_PREDICTED_RATE,
    FUNDING_NEXT,
    FUNDING_INTERVAL,
    LONG_SHORT_RATIO,
    HEATMAP_USD,
    HEATMAP_BIN_WIDTH,
    LIQUIDATION_MAP_USD,
    LIQUIDATION_MAP_CUMULATIVE,
    LIQUIDATION_MAP_BIN_WIDTH,
    HEATMAP_BOOK_RATIO,
    HEATMAP_POSITIONS,
    HEATMAP_OPEN_INTEREST,
    CLUSTER_PRICE,
    CLUSTER_USD,
    AT_RISK,
    HIT_RATIO,
    LIFT,
    SCORED_USD,
    HEATMAP_READY,
    HEATMAP_STALE_READINGS,
    EXCHANGE_UP,
    VENUE_INFO,
    TASK_RESTARTS,
    DROPPED_LATE,
    DUPLICATES,
    OTHER_SHARD,
    BACKFILL_FAILURES,
    BACKFILL_PROGRESS,
    LAST_MESSAGE,
    MESSAGES,
    INVALID_MESSAGES,
    RECONNECTS,
    LOST,
    ASYNCIO_TASKS,
    BUILD_INFO,
    SHARD_INFO,
    SCRAPE_RENDER_SECONDS,
    SCRAPE_SERIES,
)
"""Every family of ``/metrics`` (besides prometheus_client's process_/python_), in the order
both renderers write them."""


class SnapshotCollector(Collector):
    """Renders one snapshot; build a new one per scrape (it holds no state of its own).

    The reference rendering: ``exporter.exposition`` writes the same rows directly and faster
    (tests compare the two byte for byte); this one serves what that one does not support.
    """

    def __init__(
        self,
        snapshot: Snapshot,
        last_render_seconds: float | None = None,
        *,
        series: Mapping[str, int] | None = None,
    ) -> None:
        self._snapshot = snapshot
        self._last_render_seconds = last_render_seconds
        self._series = series  # SCRAPE_SERIES: the previous render's counts, if any

    def collect(self) -> Iterator[Metric]:
        for family in FAMILIES:
            if isinstance(family, HistogramFamily):
                yield _histogram(family, self._snapshot)
                continue
            if family is SCRAPE_SERIES and self._series is not None:
                rows: Iterable[Sample] | None = series_rows(self._series)
            else:
                rows = family.rows(self._snapshot, self._last_render_seconds)
            if rows is not None:
                yield _metric(family, rows)


def _histogram(family: HistogramFamily, snapshot: Snapshot) -> Metric:
    metric = HistogramMetricFamily(family.name, family.documentation, labels=family.labels)
    for labels, buckets, total in family.rows(snapshot):
        metric.add_metric(labels, [_bucket(*bucket) for bucket in buckets], total)
    return metric


def _bucket(
    le: str, count: float, exemplar: Exemplar | None
) -> tuple[str, float] | tuple[str, float, ClientExemplar]:
    """A bucket as prometheus_client takes it, with its exemplar if it has one."""
    if exemplar is None:
        return le, count
    return le, count, ClientExemplar(dict(exemplar.labels), exemplar.value, exemplar.timestamp_s)


def _metric(family: Family, rows: Iterable[Sample]) -> Metric:
    name, documentation, labels = family.name, family.documentation, family.labels
    if family.kind == "info":
        info = InfoMetricFamily(name, documentation, labels=labels)
        for values, _one in rows:
            info.add_metric(values, {})
        return info
    metric = (CounterMetricFamily if family.kind == "counter" else GaugeMetricFamily)(
        name, documentation, labels=labels
    )
    for values, value in rows:
        metric.add_metric(values, value)
    return metric


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
