"""``/metrics`` text written straight from a core ``Snapshot``: the fast path of a scrape.

Writes the rows of ``metrics.FAMILIES``, in their order, exactly as prometheus_client prints
them through ``metrics.SnapshotCollector`` (HELP and TYPE lines, label sets, value formatting;
tests compare the two byte for byte, in both the Prometheus text format and OpenMetrics),
without its per-sample cost: no ``Metric``/``Sample`` objects and no per-sample label sorting.
Label strings are built once per series and kept between scrapes. The heatmap grid (nearly all
of a large scrape) is the one family not written from its rows: its line prefixes are cached
per coin and grid, and its values are formatted in bulk.

``Exposition.steps`` writes a body a family or a coin at a time, so that ``exporter.app`` can
render on the event loop in slices of a couple of milliseconds. It reads only the snapshot
(heatmap views are copy-on-write: later updates do not reach them) and its own caches.

Escaping schemes that rewrite names (``escaping=dots``) are left to prometheus_client
(``reference_body``), as the slow path: no scraper asks for them by default.

Each served body is counted per family as it is written (a few additions per family), and the
next one carries those counts as ``cryptoliq_scrape_series``, as it carries the previous render
time; ``SeriesLog`` logs the total when it first appears and when it moves.
"""

from __future__ import annotations

import itertools
import logging
import math
import operator
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Final

import numpy as np
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics import exposition as openmetrics

from exporter import metrics
from exporter.heatmap.grid import format_price

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence

    import numpy.typing as npt

    from exporter.core import Snapshot
    from exporter.heatmap.views import CoinView
    from exporter.histogram import Exemplar
    from exporter.metrics import AnyFamily, Family, HistogramFamily, HistogramRow, Sample

# Escaping schemes under which every name of the contract prints unchanged (they only touch
# names outside the legacy character set). "dots" rewrites every underscore: not written here.
NAME_PRESERVING_ESCAPINGS: Final = frozenset(
    {openmetrics.UNDERSCORES, openmetrics.ALLOWUTF8, openmetrics.VALUES}
)
# Entries of the label-string cache before it is dropped and rebuilt (bounded memory; label
# values are bounded, so this only triggers after markets come and go for a long time).
LABEL_CACHE_LIMIT: Final = 100_000
# Samples of one family written per step of a sliced render (a few ms): families of thousands of
# series (the liquidation map of every heatmap coin) must not hold the event loop in one go.
SAMPLES_PER_STEP: Final = 2_000
# Histograms (9 samples each, with exemplars in OpenMetrics) written per step, likewise.
HISTOGRAMS_PER_STEP: Final = 200
# Heatmap grid labels are built for the view's bins plus this fraction of them on each side.
GRID_MARGIN_DIVISOR: Final = 4
_GO_EXPONENT_FROM: Final = 1e6  # Go's %g switches to an exponent from here (see go_float)
# The series count is logged again when its total moved by more than this share since the last
# line, at most once per SERIES_LOG_INTERVAL_SECONDS, naming the SERIES_LOG_LARGEST largest
# families: a configuration that multiplies the series shows in the log within minutes, a
# heatmap grid that breathes by a few percent does not fill it.
SERIES_LOG_CHANGE: Final = 0.10
SERIES_LOG_INTERVAL_SECONDS: Final = 600.0
SERIES_LOG_LARGEST: Final = 3

logger = logging.getLogger(__name__)
# Every family of the contract by the name its samples carry: the keys of a body's counts.
_FAMILY_NAMES: Final = tuple(family.exposed_name for family in metrics.FAMILIES)


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What a scrape's ``Accept`` header asks for."""

    content_type: str
    openmetrics: bool
    fast: bool  # False: an escaping this module does not write (use prometheus_client)
    encoder: Callable[[CollectorRegistry], bytes]  # prometheus_client's encoder for it


def negotiate(accept: str | None) -> Negotiated:
    """prometheus_client's content negotiation (``choose_encoder``), kept as is."""
    encoder, content_type = choose_encoder(accept or "")
    function = encoder.func if isinstance(encoder, partial) else encoder
    keywords = encoder.keywords if isinstance(encoder, partial) else {}
    escaping = keywords.get("escaping", openmetrics.UNDERSCORES)
    return Negotiated(
        content_type=content_type,
        openmetrics=function is openmetrics.generate_latest,
        fast=escaping in NAME_PRESERVING_ESCAPINGS,
        encoder=encoder,
    )


def go_float(value: float) -> str:
    """A sample value as prometheus_client prints it (``floatToGoString``)."""
    value = float(value)  # counts arrive as int
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    text = repr(value)
    return _exponent_form(text) if value > 0 else text


def _exponent_form(text: str) -> str:
    """``repr`` of a positive finite value as Go prints it: 1234567.5 is 1.2345675e+06."""
    dot = text.find(".")
    if dot <= 6:  # below 1e6, or already an exponent (1e+16)
        return text
    mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
    return f"{mantissa}e+{dot - 1:02d}"


def go_floats(values: npt.NDArray[np.float64]) -> list[str]:
    """``go_float`` of every value, in bulk: one C-level ``repr`` of the whole list, then a
    fix-up of the values it does not print alike (>= 1e6, infinities, NaN)."""
    if values.size == 0:
        return []
    items: list[float] = values.tolist()
    texts = repr(items)[1:-1].split(", ")
    large = values >= _GO_EXPONENT_FROM
    for i in np.flatnonzero(large & (values < math.inf)).tolist():
        texts[i] = _exponent_form(texts[i])
    for i in np.flatnonzero(~(large | (values < _GO_EXPONENT_FROM)) | np.isinf(values)).tolist():
        texts[i] = go_float(items[i])  # infinities and NaN
    return texts


def escape_label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _header(family: AnyFamily, *, openmetrics_format: bool) -> str:
    """The HELP and TYPE lines of ``family``."""
    if not openmetrics_format:
        help_text = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
        name, kind = family.exposed_name, family.text_type
    else:
        help_text = escape_label_value(family.documentation)  # OpenMetrics escapes quotes too
        name, kind = family.name, family.kind
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


@dataclass(slots=True)
class _GridLabels:
    """Line prefixes of one coin's ``cryptoliq_heatmap_usd`` series, for bins ``first`` to
    ``first + len(long) - 1`` of one step and label precision."""

    step: float
    decimals: int
    first: int
    long: list[str]
    short: list[str]


class _Page:
    """One body being written: its parts, its format, the exposition's label strings, and
    the series written per family (by exposed name; every family of the contract, zeros too)."""

    __slots__ = ("counts", "label_string", "openmetrics", "parts")

    def __init__(
        self, label_string: Callable[[tuple[str, ...], tuple[str, ...]], str], *, om: bool
    ) -> None:
        self.label_string = label_string
        self.openmetrics = om
        self.parts: list[str] = []
        self.counts: dict[str, int] = dict.fromkeys(_FAMILY_NAMES, 0)

    def header(self, family: AnyFamily) -> None:
        self.parts.append(_header(family, openmetrics_format=self.openmetrics))

    def samples(self, family: Family, rows: Sequence[Sample]) -> None:
        """One sample per ``(label values, value)`` row (the header is written before)."""
        name = family.exposed_name
        labels = self.label_string
        names = family.labels
        self.parts.extend(
            f"{name}{labels(names, values) if names else ''} {go_float(value)}\n"
            for values, value in rows
        )
        self.counts[name] += len(rows)

    def histogram(self, family: HistogramFamily, rows: Iterable[HistogramRow]) -> None:
        """Per row its buckets, ``_count`` (the ``+Inf`` bucket) and ``_sum`` (the header is
        written before)."""
        name, names = family.name, family.labels
        bucket_names = (*names, "le")
        labels = self.label_string
        exemplar_text = _exemplar_text if self.openmetrics else _no_exemplar
        for values, buckets, total in rows:
            self.counts[name] += len(buckets) + 2
            self.parts.extend(
                f"{name}_bucket{labels(bucket_names, (*values, le))} {go_float(count)}"
                f"{exemplar_text(exemplar)}\n"
                for le, count, exemplar in buckets
            )
            label_text = labels(names, values)
            self.parts.append(f"{name}_count{label_text} {go_float(buckets[-1][1])}\n")
            self.parts.append(f"{name}_sum{label_text} {go_float(total)}\n")


def _exemplar_text(exemplar: Exemplar | None) -> str:
    """`` # {labels} value timestamp`` after a bucket's value (OpenMetrics only)."""
    if exemplar is None:
        return ""
    labels = ",".join(f'{n}="{escape_label_value(v)}"' for n, v in exemplar.labels)
    return f" # {{{labels}}} {go_float(exemplar.value)} {exemplar.timestamp_s}"


def _no_exemplar(exemplar: Exemplar | None) -> str:
    """The Prometheus text format has no exemplars."""
    del exemplar
    return ""


class Exposition:
    """Renders snapshots to exposition text; keep one per exporter (it caches label strings
    and remembers the series of the last body it served). ``clock`` (seconds, monotonic) paces
    the series log."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._labels: dict[tuple[tuple[str, ...], tuple[str, ...]], str] = {}
        self._grids: dict[str, _GridLabels] = {}
        self._series: dict[str, int] | None = None
        self._series_log = SeriesLog(clock)
        self._process = CollectorRegistry(auto_describe=False)
        self._process.register(ProcessCollector(registry=None))
        self._process.register(PlatformCollector(registry=None))

    def render(
        self, snapshot: Snapshot, accept: str | None, last_render_seconds: float | None
    ) -> tuple[bytes, str]:
        """The whole ``/metrics`` body for ``accept`` and its content type, in one go."""
        negotiated = negotiate(accept)
        if not negotiated.fast:
            slow = reference_body(snapshot, negotiated, last_render_seconds, series=self._series)
            return slow, negotiated.content_type
        steps = self.steps(snapshot, negotiated, last_render_seconds)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                body: bytes = done.value
                return body, negotiated.content_type

    def steps(
        self, snapshot: Snapshot, negotiated: Negotiated, last_render_seconds: float | None
    ) -> Generator[None, None, bytes]:
        """The body for ``negotiated`` (which must be ``fast``), written a step at a time: each
        ``next()`` writes one family or one coin's grid (well under a millisecond), so that the
        event loop can render a large body in slices; the generator returns the body.

        ``process_*`` and ``python_info`` come from prometheus_client's own collectors. The
        body carries the series counts of the previous one (``series``) and its own become the
        next one's.
        """
        page = _Page(self._label_string, om=negotiated.openmetrics)
        yield from self._sections(page, snapshot, last_render_seconds, self._series)
        self._series = page.counts
        self._series_log.rendered(page.counts)
        text = "".join(page.parts)
        yield
        process = negotiated.encoder(self._process)
        if negotiated.openmetrics:
            process = process.removesuffix(b"# EOF\n") + b"# EOF\n"  # ends the whole body
        return text.encode() + process

    @property
    def series(self) -> Mapping[str, int] | None:
        """Series per family (exposed name) of the last body ``steps`` wrote; None before."""
        return self._series

    def render_snapshot(
        self,
        snapshot: Snapshot,
        *,
        openmetrics_format: bool = False,
        last_render_seconds: float | None = None,
        series: Mapping[str, int] | None = None,
    ) -> str:
        """The snapshot's families, as ``SnapshotCollector`` gives them (no ``# EOF``), with
        ``series`` as the previous render's counts; remembers and logs nothing."""
        page = _Page(self._label_string, om=openmetrics_format)
        for _ in self._sections(page, snapshot, last_render_seconds, series):
            pass
        return "".join(page.parts)

    def _sections(
        self,
        page: _Page,
        snapshot: Snapshot,
        last_render_seconds: float | None,
        series: Mapping[str, int] | None,
    ) -> Iterator[None]:
        """``metrics.FAMILIES`` in order, a step per family (the heatmap grid: per coin)."""
        if len(self._labels) > LABEL_CACHE_LIMIT:
            self._labels = {}
        for family in metrics.FAMILIES:
            if family is metrics.HEATMAP_USD:
                yield from self._heatmap_grid(page, snapshot)
            elif isinstance(family, metrics.HistogramFamily):
                page.header(family)
                histograms = iter(family.rows(snapshot))
                while part := list(itertools.islice(histograms, HISTOGRAMS_PER_STEP)):
                    page.histogram(family, part)
                    yield
            else:
                if family is metrics.SCRAPE_SERIES and series is not None:
                    rows: Iterable[Sample] | None = metrics.series_rows(series)
                else:
                    rows = family.rows(snapshot, last_render_seconds)
                if rows is not None:
                    page.header(family)
                    rows = iter(rows)
                    while chunk := list(itertools.islice(rows, SAMPLES_PER_STEP)):
                        page.samples(family, chunk)
                        yield
            yield

    # --- helpers -------------------------------------------------------------------------

    def _label_string(self, names: tuple[str, ...], values: tuple[str, ...]) -> str:
        """``{a="x",b="y"}`` with names sorted, as prometheus_client prints them."""
        key = (names, values)
        text = self._labels.get(key)
        if text is None:
            pairs = sorted(zip(names, values, strict=True))
            text = "{" + ",".join(f'{n}="{escape_label_value(v)}"' for n, v in pairs) + "}"
            self._labels[key] = text
        return text

    # --- the heatmap grid: nearly all of a large scrape --------------------------------------

    def _heatmap_grid(self, page: _Page, snapshot: Snapshot) -> Iterator[None]:
        """``cryptoliq_heatmap_usd`` as its rows function has it, written in bulk from cached
        line prefixes and ``go_floats``; a step per coin."""
        views = snapshot.heatmap.views
        page.header(metrics.HEATMAP_USD)
        for view in views:
            long_labels, short_labels = self._grid_labels(view)
            for labels, values in zip((long_labels, short_labels), view.usd, strict=True):
                texts = go_floats(values)
                page.parts.append("\n".join(map(operator.add, labels, texts)))
                if texts:
                    page.parts.append("\n")
                page.counts[metrics.HEATMAP_USD.name] += len(texts)
            yield
        # The families after the grid read each view's clusters and at-risk figures, derived on
        # first use: derive them here, one coin per step, rather than all coins in one step.
        for view in views:
            view.clusters  # noqa: B018 - computes and keeps them
            view.at_risk  # noqa: B018 - likewise
            yield

    def _grid_labels(self, view: CoinView) -> tuple[list[str], list[str]]:
        """Line prefixes (``name{labels} ``) of the view's bins, long and short."""
        first, count = view.first_index, view.bin_count
        grid = self._grids.get(view.coin)
        if (
            grid is None
            or (grid.step, grid.decimals) != (view.step, view.decimals)
            or not grid.first <= first <= first + count <= grid.first + len(grid.long)
        ):
            # Some bins to spare on each side: the price may drift a while before a rebuild.
            margin = count // GRID_MARGIN_DIVISOR
            start = max(0, first - margin)
            grid = self._new_grid(
                view.coin, view.step, view.decimals, start, first + count + margin
            )
            self._grids[view.coin] = grid
        offset = first - grid.first
        return grid.long[offset : offset + count], grid.short[offset : offset + count]

    @staticmethod
    def _new_grid(coin: str, step: float, decimals: int, first: int, stop: int) -> _GridLabels:
        """Line prefixes of bins ``first`` to ``stop - 1``."""
        name = metrics.HEATMAP_USD.name
        coin_label = escape_label_value(coin)
        prices = [format_price(i, step, decimals) for i in range(first, stop)]
        # Label names sorted: coin, price, side.
        long = [f'{name}{{coin="{coin_label}",price="{p}",side="long"}} ' for p in prices]
        short = [f'{name}{{coin="{coin_label}",price="{p}",side="short"}} ' for p in prices]
        return _GridLabels(step, decimals, first, long, short)


def reference_body(
    snapshot: Snapshot,
    negotiated: Negotiated,
    last_render_seconds: float | None,
    *,
    series: Mapping[str, int] | None = None,
) -> bytes:
    """The body as prometheus_client renders ``SnapshotCollector``: the path for what
    ``Exposition`` does not write (and the reference it is tested against). Slow: tens of
    microseconds per series."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics.SnapshotCollector(snapshot, last_render_seconds, series=series))
    registry.register(ProcessCollector(registry=None))
    registry.register(PlatformCollector(registry=None))
    return negotiated.encoder(registry)


class SeriesLog:
    """Logs a body's series at INFO (the total and the largest families): after the first
    render, then when the total has moved by more than ``SERIES_LOG_CHANGE`` of the last
    logged one, at most once per ``SERIES_LOG_INTERVAL_SECONDS`` of ``clock``."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._logged: tuple[float, int] | None = None  # (clock, total) of the last line

    def rendered(self, counts: Mapping[str, int]) -> bool:
        """Note a render's counts; whether that logged a line."""
        total = sum(counts.values())
        now = self._clock()
        if self._logged is not None:
            logged_at, logged_total = self._logged
            if abs(total - logged_total) <= SERIES_LOG_CHANGE * logged_total:
                return False
            if now - logged_at < SERIES_LOG_INTERVAL_SECONDS:
                return False
        largest = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        logger.info(
            "/metrics has %s series%s; largest families: %s",
            f"{total:,}",
            "" if self._logged is None else f" (was {self._logged[1]:,})",
            ", ".join(f"{name} {count:,}" for name, count in largest[:SERIES_LOG_LARGEST]),
        )
        self._logged = (now, total)
        return True
