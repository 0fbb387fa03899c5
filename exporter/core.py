"""The exporter's in-memory state: where typed events land and where scrapes read from.

Synchronous and I/O-free: collectors call ``record_*`` from the event loop, ``/metrics`` takes a
``snapshot()`` (a consistent copy) and renders it. Time comes from the injected clock.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias, TypeVar

from exporter.health import Health, HealthSnapshot
from exporter.heatmap import HeatmapBook, HeatmapParams, HeatmapSnapshot
from exporter.heatmap.selection import CoinSelection, HeatmapCoins
from exporter.histogram import Exemplar, HistogramCounts, SizeHistogram
from exporter.rolling import RollingTotals, Window, WindowTotals
from exporter.shard import WHOLE, Shard

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

    from exporter.events import (
        Liquidation,
        LongShortRatio,
        MarketContext,
        MarketHistory,
        OpenInterest,
    )

# (exchange, symbol, coin, side) and (exchange, coin, side): the label sets of the contract.
SymbolKey: TypeAlias = tuple[str, str, str, str]
CoinKey: TypeAlias = tuple[str, str, str]

# The default smallest liquidation shown as an exemplar (the live feed).
DEFAULT_EXEMPLAR_MIN_USD: Final = 10_000.0
# OpenMetrics: an exemplar's label names and values together hold at most 128 characters.
EXEMPLAR_LABEL_CHARACTERS: Final = 128


def liquidation_exemplar(event: Liquidation) -> Exemplar:
    """The exemplar of one liquidation: exchange, symbol, side and price, its USD and time.
    A symbol that would take the labels past OpenMetrics' 128 characters is left out (the
    series' ``coin`` still names the market's coin)."""
    labels: tuple[tuple[str, str], ...] = (
        ("exchange", event.exchange),
        ("price", repr(event.price)),
        ("side", event.side),
        ("symbol", event.symbol),
    )
    if sum(len(name) + len(value) for name, value in labels) > EXEMPLAR_LABEL_CHARACTERS:
        labels = labels[:-1]
    return Exemplar(labels, event.notional_usd, event.timestamp_ms / 1000.0)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one scrape shows, copied at one instant."""

    time_s: float
    orders: dict[SymbolKey, int]
    usd: dict[SymbolKey, float]
    windows: WindowTotals[SymbolKey]
    sizes: HistogramCounts[CoinKey]
    open_interest: tuple[OpenInterest, ...]
    market_context: tuple[MarketContext, ...]
    long_short: tuple[LongShortRatio, ...]
    health: HealthSnapshot
    heatmap: HeatmapSnapshot
    shard: Shard = WHOLE


K = TypeVar("K", bound=Hashable)


class _Timed(Protocol):
    @property
    def timestamp_ms(self) -> int: ...


R = TypeVar("R", bound=_Timed)


def _keep_newest(store: dict[K, R], key: K, event: R) -> bool:
    """Store ``event`` under ``key`` unless a newer one is there; whether it was stored."""
    current = store.get(key)
    if current is not None and event.timestamp_ms < current.timestamp_ms:
        return False
    store[key] = event
    return True


class Core:
    """Counters, rolling windows, size histogram, latest open interest, funding and long/short
    ratios and health of every coin; heatmaps of the coins ``heatmap_coins`` chooses (default:
    every coin). Liquidations of at least ``exemplar_min_usd`` become exemplars of the size
    histogram (None: none do)."""

    def __init__(
        self,
        exchanges: tuple[str, ...],
        clock: Callable[[], float],
        windows: tuple[Window, ...] | None = None,
        heatmap: HeatmapParams | None = None,
        heatmap_coins: HeatmapCoins | None = None,
        *,
        exemplar_min_usd: float | None = DEFAULT_EXEMPLAR_MIN_USD,
        shard: Shard = WHOLE,
    ) -> None:
        """``shard``: the markets this replica serves (its collectors' business); kept with
        the snapshots, which hold only those markets' windows and positions."""
        self._clock = clock
        self.shard = shard
        self._exemplar_min_usd = math.inf if exemplar_min_usd is None else exemplar_min_usd
        self.health = Health(exchanges, clock)
        self._orders: Counter[SymbolKey] = Counter()
        self._usd: dict[SymbolKey, float] = {}
        self._rolling: RollingTotals[SymbolKey] = RollingTotals(clock, windows)
        self._sizes: SizeHistogram[CoinKey] = SizeHistogram()
        self._open_interest: dict[tuple[str, str], OpenInterest] = {}
        self._market_context: dict[tuple[str, str], MarketContext] = {}
        self._long_short: dict[tuple[str, str, str], LongShortRatio] = {}
        self.heatmap_coins = CoinSelection(
            heatmap_coins if heatmap_coins is not None else HeatmapCoins()
        )
        self.heatmap = HeatmapBook(heatmap or HeatmapParams(), clock, self.heatmap_coins)

    def record_liquidation(self, event: Liquidation) -> None:
        """Count one validated liquidation everywhere it shows (scoring the heatmap only if
        its coin has one)."""
        key = (event.exchange, event.symbol, event.coin, event.side)
        self._orders[key] += 1
        self._usd[key] = self._usd.get(key, 0.0) + event.notional_usd
        exemplar = (
            liquidation_exemplar(event) if event.notional_usd >= self._exemplar_min_usd else None
        )
        self._sizes.observe((event.exchange, event.coin, event.side), event.notional_usd, exemplar)
        self.heatmap.score(event)
        if not self._rolling.add(key, event.timestamp_ms / 1000.0, event.notional_usd):
            self.health.dropped_late(event.exchange)

    def record_open_interest(self, event: OpenInterest) -> None:
        """Keep the newest reading per market; an older reading never overwrites a newer one."""
        if _keep_newest(self._open_interest, (event.exchange, event.symbol), event):
            self.heatmap.observe_open_interest(event)

    def record_market_context(self, event: MarketContext) -> None:
        """Keep the newest funding and index price per market."""
        _keep_newest(self._market_context, (event.exchange, event.symbol), event)

    def record_long_short(self, event: LongShortRatio) -> None:
        """Keep the newest ratio per market and source."""
        _keep_newest(self._long_short, (event.exchange, event.symbol, event.source), event)

    def wants_history(self, coin: str) -> bool | None:
        """Whether the backfill should fetch this coin's history: only a coin with a heatmap;
        None while ``top:N`` has no reading to rank by yet."""
        return self.heatmap_coins.wants(coin)

    def expect_history(self, exchange: str, symbol: str, coin: str) -> None:
        """A backfill of this market is under way: its live readings reach the heatmap after
        its past (the open-interest gauges show them at once)."""
        self.heatmap.expect_history(exchange, symbol, coin)

    def record_history(self, history: MarketHistory) -> None:
        """A market's past open interest and candles: rebuilds its part of the heatmap."""
        self.heatmap.replay(history)

    def end_history(self, exchange: str, symbol: str) -> None:
        """No (more) history is coming for this market."""
        self.heatmap.end_history(exchange, symbol)

    def export_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray[Any, Any]]]:
        """(JSON-able header, arrays) of what must survive a restart: windows and heatmap.

        Counters restart from zero (Prometheus handles counter resets); the windows and the
        heatmap are what a restart would otherwise lose for a day."""
        windows_header, windows_arrays = self._rolling.export_state()
        heatmap_header, heatmap_arrays = self.heatmap.export_state()
        header = {
            "saved_at": self._clock(),
            "shard": self.shard.label,
            "windows": windows_header,
            "heatmap": heatmap_header,
        }
        arrays = {f"windows.{k}": v for k, v in windows_arrays.items()}
        arrays |= {f"heatmap.{k}": v for k, v in heatmap_arrays.items()}
        return header, arrays

    def import_state(self, header: dict[str, Any], arrays: dict[str, np.ndarray[Any, Any]]) -> None:
        """Load what ``export_state`` wrote; raises ValueError/KeyError on any mismatch, before
        changing anything (a snapshot of another shard holds other markets)."""
        saved_shard = header.get("shard", WHOLE.label)
        if saved_shard != self.shard.label:
            raise ValueError(
                f"a snapshot of shard {saved_shard}, this exporter serves {self.shard}"
            )
        windows = {
            k.removeprefix("windows."): v for k, v in arrays.items() if k.startswith("windows.")
        }
        heatmap = {
            k.removeprefix("heatmap."): v for k, v in arrays.items() if k.startswith("heatmap.")
        }
        rolling: RollingTotals[SymbolKey] = RollingTotals(self._clock, self._rolling.windows)
        rolling.import_state(header["windows"], windows, key_type=tuple)
        book = HeatmapBook(self.heatmap.params, self._clock, self.heatmap_coins)
        book.import_state(header["heatmap"], heatmap)
        for coin in self.heatmap_coins.restore(tuple(book.coins)):
            book.drop(coin)  # not a heatmap coin any more
        self._rolling = rolling
        self.heatmap = book

    def _current_context(self) -> tuple[MarketContext, ...]:
        """Each market's funding and index price as of its latest open-interest poll: one that
        poll could not read (rejected, counted) is left out rather than shown stale."""
        current = []
        for key, context in self._market_context.items():
            reading = self._open_interest.get(key)
            if reading is None or context.received_ms >= reading.received_ms:
                current.append(context)
        return tuple(current)

    def snapshot(self) -> Snapshot:
        return Snapshot(
            time_s=self._clock(),
            orders=dict(self._orders),
            usd=dict(self._usd),
            windows=self._rolling.totals(),
            sizes=self._sizes.counts(),
            open_interest=tuple(self._open_interest.values()),
            market_context=self._current_context(),
            long_short=tuple(self._long_short.values()),
            health=self.health.snapshot(),
            heatmap=self.heatmap.snapshot(),
            shard=self.shard,
        )
