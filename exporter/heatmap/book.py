"""All coins' heatmaps: routes events to them, scores them, and snapshots them for a scrape."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from exporter.heatmap.leverage import BAND_COUNT
from exporter.heatmap.model import CoinHeatmap, MarketBook, Reading
from exporter.heatmap.selection import CoinSelection, HeatmapCoins
from exporter.heatmap.views import CoinView, build_view
from exporter.rolling import RollingTotals, Window

if TYPE_CHECKING:
    from collections.abc import Callable

    from exporter.events import Liquidation, MarketHistory, OpenInterest
    from exporter.heatmap.params import HeatmapParams

log = logging.getLogger(__name__)

ACCURACY_WINDOW = Window("24h", 24 * 3600, 60)
# Live readings of a market held back while its history is fetched (a backfill takes at most
# minutes; polls come at most once a second); past this the oldest go.
HELD_READINGS = 1_000
# Where a stale reading came from (the ``source`` of cryptoliq_heatmap_stale_readings_total):
# a poll, or a backfill replaying history (whose stretches are long over).
LIVE: Final = "live"
HISTORY: Final = "history"
STALE_SOURCES: Final = (LIVE, HISTORY)
# The grid's layout (exporter/heatmap/grid.py), in the snapshot signature: positions saved on
# another layout (the price-centred array before shards) are not restored; the windows are.
GRID: Final = "octave-zones-v1"


@dataclass(frozen=True, slots=True)
class Accuracy:
    """Over the last 24 h: share of realized liquidation USD in the model's top bins, and that
    share divided by what a uniform guess of the same number of bins would expect."""

    hit_ratio: float
    lift: float
    scored_usd: float


@dataclass(frozen=True, slots=True)
class HeatmapSnapshot:
    views: tuple[CoinView, ...]
    accuracy: dict[str, Accuracy]
    # coin -> whether every market of it has its history in (or given up): until then its
    # map shows only what arrived live, or nothing.
    ready: dict[str, bool]
    # (exchange, source) -> open-interest readings that opened and closed nothing as stale
    # data; source: "live" (polls) or "history" (backfill replays)
    stale_readings: dict[tuple[str, str], int]


def market_key(exchange: str, symbol: str) -> str:
    return f"{exchange}:{symbol}"


class HeatmapBook:
    """One ``CoinHeatmap`` per coin (all its exchanges' markets together)."""

    def __init__(
        self,
        params: HeatmapParams,
        clock: Callable[[], float],
        selection: CoinSelection | None = None,
    ) -> None:
        """``selection``: the coins that get a heatmap (default: every coin); readings and
        history of the others never reach a model."""
        self.params = params
        self._clock = clock
        self.selection = selection if selection is not None else CoinSelection(HeatmapCoins())
        self.coins: dict[str, CoinHeatmap] = {}
        self._prices: dict[str, float] = {}
        self._scoring_views: dict[str, tuple[int, CoinView]] = {}
        self._scores: RollingTotals[tuple[str, str]] = RollingTotals(clock, [ACCURACY_WINDOW])
        # market -> (coin, live readings waiting for its history, oldest first); coins with
        # a heatmap only: the markets of the others wait in _awaiting, holding nothing.
        self._held: dict[str, tuple[str, list[OpenInterest]]] = {}
        self._awaiting: dict[str, str] = {}
        self._stale: dict[tuple[str, str], int] = {}  # (exchange, source) -> stale readings

    def _heatmap(self, coin: str, price: float) -> CoinHeatmap:
        heatmap = self.coins.get(coin)
        if heatmap is None:
            heatmap = CoinHeatmap(coin, self.params, price)
            self.coins[coin] = heatmap
        return heatmap

    def expect_history(self, exchange: str, symbol: str, coin: str) -> None:
        """The market's history is being fetched: hold its live readings until it is in
        (``replay``) or given up (``end_history``), so the past is applied before them."""
        market = market_key(exchange, symbol)
        if self.selection.selects(coin):
            self._held.setdefault(market, (coin, []))
        else:
            self._awaiting[market] = coin

    def end_history(self, exchange: str, symbol: str) -> None:
        """No (more) history is coming: apply what was held back, in order."""
        market = market_key(exchange, symbol)
        self._awaiting.pop(market, None)
        held = self._held.pop(market, None)
        for event in held[1] if held else ():
            self._apply(event)

    def observe_open_interest(self, event: OpenInterest) -> None:
        """A reading newer than the market's last: ranks its coin (``CoinSelection``), then
        goes to the coin's heatmap, held back while the market's history is awaited, or
        nowhere if the coin has no heatmap."""
        for coin in self.selection.observe(event):
            self.drop(coin)
        if not self.selection.selects(event.coin):
            return
        market = market_key(event.exchange, event.symbol)
        if self._awaiting.pop(market, None) is not None:  # chosen while its history is awaited
            self._held[market] = (event.coin, [])
        held = self._held.get(market)
        if held is not None:
            readings = held[1]
            readings.append(event)
            del readings[:-HELD_READINGS]
            return
        self._apply(event)

    def _apply(self, event: OpenInterest) -> None:
        heatmap = self._heatmap(event.coin, event.mark_price)
        market = market_key(event.exchange, event.symbol)
        reading = heatmap.update(
            market,
            time_s=event.timestamp_ms / 1000.0,
            open_interest=event.coins,
            price=event.mark_price,
        )
        if reading in ("stale", "resumed"):
            self._count_stale((event.exchange, LIVE), market, reading, heatmap.markets[market])
        self._prices[event.coin] = event.mark_price

    def _count_stale(
        self, key: tuple[str, str], market: str, reading: Reading, book: MarketBook
    ) -> None:
        """Count a reading taken as stale data under (exchange, source); log the start and the
        end of each stretch."""
        self._stale[key] = self._stale.get(key, 0) + 1
        if reading == "resumed":
            log.info(
                "heatmap: %s open interest moves again; the step over the stale stretch is "
                "not applied either",
                market,
            )
        elif book.stale_readings == 1:
            log.warning(
                "heatmap: %s open interest unchanged for over %g s: taken as stale upstream "
                "data, it opens and closes no positions until it moves",
                market,
                self.params.stale_after_seconds,
            )

    def replay(self, history: MarketHistory) -> int:
        """Rebuild a market's positions from its past; returns the steps replayed.

        Each 5-minute step sweeps with the candle's low and high, then opens or closes the
        change in open interest at the close. Skipped if live readings are already newer.
        Live readings held back for it (``expect_history``) that are newer follow.
        """
        market = market_key(history.exchange, history.symbol)
        if not self.selection.selects(history.coin):
            self._awaiting.pop(market, None)
            return 0
        held = self._held.pop(market, None)
        end_ms = int(history.timestamps_ms[-1]) if len(history) else None
        replayed = self._replay(history)
        for event in held[1] if held else ():
            if end_ms is None or event.timestamp_ms > end_ms:
                self._apply(event)
        return replayed

    def drop(self, coin: str) -> None:
        """Forget the coin's heatmap, its series with it (the coin lost its place in the
        selection); a later return starts from live data. Its markets still awaiting their
        history stop holding readings."""
        if self.coins.pop(coin, None) is not None:
            setting = self.selection.setting
            log.info("heatmap: %s is no longer a heatmap coin (%s); map dropped", coin, setting)
        self._prices.pop(coin, None)
        self._scoring_views.pop(coin, None)
        for market, (held_coin, _) in list(self._held.items()):
            if held_coin == coin:
                del self._held[market]
                self._awaiting[market] = coin

    def _replay(self, history: MarketHistory) -> int:
        if len(history) == 0:
            return 0
        closes = history.close.tolist()
        heatmap = self._heatmap(history.coin, closes[-1])
        market = market_key(history.exchange, history.symbol)
        book = heatmap.markets.get(market)
        end_s = float(history.timestamps_ms[-1]) / 1000.0
        # A market the model already follows (restored from a snapshot, or live readings came
        # first) takes only the rows after its last reading: older ones would sweep and open
        # again what it holds.
        after = book.time_s if book is not None and book.time_s is not None else -math.inf
        if after >= end_s:
            log.info("heatmap: %s history is older than live data; skipped", market)
            return 0
        times = (history.timestamps_ms / 1000.0).tolist()
        interest = history.open_interest_coins.tolist()
        lows = history.low.tolist()
        highs = history.high.tolist()
        replayed = 0
        for t, oi, close, low, high in zip(times, interest, closes, lows, highs, strict=True):
            if t <= after:
                continue
            reading = heatmap.update(
                market, time_s=t, open_interest=oi, price=close, low=low, high=high
            )
            replayed += 1
            if reading in ("stale", "resumed"):
                key = (history.exchange, HISTORY)
                self._count_stale(key, market, reading, heatmap.markets[market])
        self._prices.setdefault(history.coin, closes[-1])
        return replayed

    def score(self, event: Liquidation) -> None:
        """Score the model as it stood when this liquidation happened."""
        view = self._scoring_view(event.coin)
        if view is None:
            return
        hit, uniform_share = view.score(event.side, event.price)
        t = event.timestamp_ms / 1000.0
        self._scores.add((event.coin, "all"), t, event.notional_usd)
        self._scores.add((event.coin, "uniform"), t, event.notional_usd * uniform_share)
        if hit:
            self._scores.add((event.coin, "hit"), t, event.notional_usd)

    def _scoring_view(self, coin: str) -> CoinView | None:
        heatmap = self.coins.get(coin)
        if heatmap is None:
            return None
        cached = self._scoring_views.get(coin)
        if cached is not None and cached[0] == heatmap.version:
            return cached[1]
        view = build_view(heatmap, self._prices[coin])
        self._scoring_views[coin] = (heatmap.version, view)
        return view

    def accuracy(self) -> dict[str, Accuracy]:
        totals = self._scores.totals()
        usd = {key: float(totals.usd[i, 0]) for i, key in enumerate(totals.keys)}
        result = {}
        for coin in self.coins:
            scored = usd.get((coin, "all"), 0.0)
            uniform = usd.get((coin, "uniform"), 0.0)
            if scored > 0 and uniform > 0:
                hits = usd.get((coin, "hit"), 0.0)
                result[coin] = Accuracy(hits / scored, hits / uniform, scored)
        return result

    def snapshot(self) -> HeatmapSnapshot:
        views = tuple(
            build_view(self.coins[coin], self._prices[coin])
            for coin in sorted(self.coins)
            if coin in self._prices
        )
        ready = dict.fromkeys(self.coins, True)
        for coin, _ in self._held.values():
            ready[coin] = False
        return HeatmapSnapshot(views, self.accuracy(), ready, dict(self._stale))

    # --- snapshots (exporter.persistence) -----------------------------------------------

    def _signature(self) -> list[Any]:
        """What must match for saved positions to mean the same thing."""
        p = self.params
        return [
            [p.leverage_model, p.leverage_median, p.leverage_sigma, p.leverage_min, p.leverage_max],
            sorted([float(k), float(v)] for k, v in p.leverage_mix.items()),
            sorted([str(k), float(v)] for k, v in p.mmr.items()),
            p.side_attribution,
            p.bin_fraction,
            p.range_fraction,
            GRID,
        ]

    def export_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray[Any, Any]]]:
        coins = []
        arrays: dict[str, np.ndarray[Any, Any]] = {}
        for coin, heatmap in sorted(self.coins.items()):
            if coin not in self._prices:
                continue
            coins.append(
                {
                    "coin": coin,
                    "price": self._prices[coin],
                    "zone": heatmap.zone,
                    "step": heatmap.step,
                    "base": heatmap.base,
                    "bins": heatmap.bins,
                    "dropped_coins": heatmap.dropped_coins,
                    "markets": [
                        {"key": key, **asdict(book), "scale": [float(x) for x in book.scale]}
                        for key, book in heatmap.markets.items()
                    ],
                }
            )
            arrays[f"{coin}.coins"] = heatmap.coins.copy()
        scores_header, scores_arrays = self._scores.export_state()
        arrays |= {f"scores.{k}": v for k, v in scores_arrays.items()}
        header = {"signature": self._signature(), "coins": coins, "scores": scores_header}
        return header, arrays

    def import_state(self, header: dict[str, Any], arrays: dict[str, np.ndarray[Any, Any]]) -> None:
        """Take over a snapshot (into a fresh book). One saved with other model settings is
        skipped with a warning (its positions would mean something else); a damaged one raises
        ValueError or KeyError before anything changes."""
        if header["signature"] != json.loads(json.dumps(self._signature())):
            log.warning("heatmap: the snapshot was made with other model settings; not restored")
            return
        restored: dict[str, CoinHeatmap] = {}
        prices: dict[str, float] = {}
        for saved in header["coins"]:
            coin = str(saved["coin"])
            heatmap = CoinHeatmap(coin, self.params, float(saved["price"]))
            heatmap.set_zone(int(saved["zone"]))  # kept within the hour: maybe not the price's
            state = arrays[f"{coin}.coins"]
            markets = saved["markets"]
            shape = (len(markets), 2, BAND_COUNT, heatmap.bins)
            grid = (float(saved["step"]), int(saved["base"]), int(saved["bins"]))
            if state.shape != shape or grid != (heatmap.step, heatmap.base, heatmap.bins):
                raise ValueError(f"heatmap state of {coin} has shape {state.shape}")
            heatmap.dropped_coins = float(saved["dropped_coins"])
            heatmap.coins = state.astype(np.float64, copy=True)
            for market in markets:
                # low/high: older snapshots kept other markets' prices per market; no longer
                fields = {
                    k: v for k, v in market.items() if k not in {"key", "scale", "low", "high"}
                }
                book = MarketBook(**fields, scale=[float(x) for x in market["scale"]])
                heatmap.markets[str(market["key"])] = book
            restored[coin] = heatmap
            prices[coin] = float(saved["price"])
        scores: RollingTotals[tuple[str, str]] = RollingTotals(self._clock, [ACCURACY_WINDOW])
        scores.import_state(
            header["scores"],
            {k.removeprefix("scores."): v for k, v in arrays.items() if k.startswith("scores.")},
            key_type=tuple,
        )
        self.coins, self._prices, self._scores = restored, prices, scores
        self._scoring_views.clear()
