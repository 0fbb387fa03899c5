"""The heatmap model of one coin: estimated open positions by liquidation price.

State: ``coins[m, side, band, j]``, coins of base currency held by estimated positions of market
``m`` (an exchange's perpetual of this coin) and leverage band ``band`` (``LEVERAGE_BANDS``)
whose liquidation price lies in fine bin ``j``; side 0 is long, 1 is short. Fine bin ``j``
covers ``[(base + j) * fine, (base + j + 1) * fine)`` where ``fine = step / SUB`` and ``step``
is the emitted bin width; ``step``, ``base`` and the number of fine bins are the price octave's
(grid.py), alike in every replica. The fine grid makes sweeps precise (a bin is removed only
once the price has crossed all of it) while metrics show ``step`` bins.

The modelled positions stand for a share of all open positions: every change keeps them one.
Turnover (decay) and liquidations (sweeps) close positions that, the open interest being what
its readings say, were replaced by new ones at the current price; a fall in open interest
closes the same fraction of the modelled positions; a rise opens the difference.

Each market has lazy scale factors per side (``actual = stored * scale``) so that decay and
proportional closes cost O(1) instead of touching every bin. An update costs a fixed few dozen
vectorised operations (an opening fills the bins its leverage density covers, a sweep zeroes a
slice, a close multiplies a scale); nothing loops per bin or per position in Python. Readers
(``views``) share the state array copy-on-write: the next update copies it first, so taking a
view costs nothing per bin. See docs/heatmap-model.md for the model and its assumptions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

import numpy as np
import numpy.typing as npt

from exporter.heatmap.grid import (
    SUB,
    ZONE_ALIGN_SECONDS,
    ZONE_MARGIN,
    zone_array,
    zone_bins,
    zone_holds,
    zone_of,
    zone_step,
)
from exporter.heatmap.leverage import BAND_COUNT, Density, kernel_of

if TYPE_CHECKING:
    from exporter.heatmap.params import HeatmapParams

LONG: Final = 0
SHORT: Final = 1
_RENORMALISE_BELOW: Final = 1e-150
# Coins closed by turnover or liquidation are reopened with the side's next opening, or once
# they exceed this share of the side's coins: an opening costs O(bins), and what closes between
# two polls is mostly tiny.
REPLACEMENT_BATCH: Final = 0.05
LONG_SEGMENTS: Final = BAND_COUNT  # a density's segments: the long bands, then the short ones
FloatArray = npt.NDArray[np.float64]
# What an open-interest reading did: opened or closed the change ("applied"), nothing because it
# had not changed, in coins or in USD ("unchanged"), or nothing because it had been unchanged
# too long ("stale") or had just moved again after that ("resumed").
Reading = Literal["applied", "unchanged", "stale", "resumed"]


@dataclass
class MarketBook:
    """Per-market bookkeeping around its rows of the coin's state array."""

    row: int
    scale: list[float] = field(default_factory=lambda: [1.0, 1.0])  # [side]
    time_s: float | None = None  # time of the last update
    open_interest: float | None = None  # coins, at the last update
    price: float | None = None  # mark price at the last update
    long_top: int = -1  # highest fine bin that may hold long positions
    short_bottom: int = 1 << 62  # lowest fine bin that may hold short positions
    unchanged_since: float | None = None  # time the open interest took its current value
    stale_readings: int = 0  # readings in the current stale stretch (see Reading)
    total: list[float] = field(default_factory=lambda: [0.0, 0.0])  # [side] coins held
    # [side] coins closed by turnover or liquidation, not yet reopened (REPLACEMENT_BATCH)
    pending: list[float] = field(default_factory=lambda: [0.0, 0.0])


class CoinHeatmap:
    """Estimated positions of every market of one coin on one shared price grid."""

    def __init__(self, coin: str, params: HeatmapParams, price: float) -> None:
        self.coin = coin
        self.params = params
        self.kernel = kernel_of(params, coin)
        self._stale_after = params.stale_after_seconds
        self._trend = params.side_attribution == "trend"
        self._half_life_hours = params.half_life_hours
        self.markets: dict[str, MarketBook] = {}
        self._aligned_hour = math.nan  # the hour (ZONE_ALIGN_SECONDS) the zone was last aligned
        self.set_zone(zone_of(price))
        self.coins = np.zeros((0, 2, BAND_COUNT, self.bins))
        self.dropped_coins = 0.0  # positions that fell off the state array
        self.version = 0  # bumps on every change: lets readers cache derived views
        self._shared = False  # a reader holds self.coins: copy it before changing it

    # --- grid ---------------------------------------------------------------------------

    def set_zone(self, zone: int) -> None:
        """The grid of price octave ``zone`` (grid.py): its step, and its state array's first
        fine bin and length (per market and side; the positions are the caller's business)."""
        self.zone = zone
        self.step = zone_step(zone, self.params.bin_fraction)
        self.base = zone_array(zone, self.step)
        self.bins = zone_bins(zone, self.step, self.params.range_fraction)
        self._ramp = np.arange(self.bins + 1, dtype=np.float64)  # fine-bin edges, for _open
        # Prices at which the zone surely holds, a relative 1e-9 inside its margins so that
        # rounding errs on the safe side: only prices outside take follow_price's exact check.
        self._zone_band = (
            math.ldexp(1.0 - ZONE_MARGIN, zone) * (1.0 + 1e-9),
            math.ldexp(1.0 + ZONE_MARGIN, zone + 1) * (1.0 - 1e-9),
        )

    @property
    def fine(self) -> float:
        return self.step / SUB

    def _restep(self, price: float) -> None:
        """Take the step of the price's zone and move every fine bin's coins to the new bin of
        its centre."""
        old_fine, old_base, old_bins = self.fine, self.base, self.bins
        self.set_zone(zone_of(price))
        centres = (old_base + np.arange(old_bins) + 0.5) * old_fine
        target = np.floor(centres / self.fine).astype(np.int64) - self.base
        inside = (target >= 0) & (target < self.bins)
        rebinned = np.zeros((len(self.markets), 2, BAND_COUNT, self.bins))
        for book in self.markets.values():
            for side in (LONG, SHORT):
                for band in range(BAND_COUNT):
                    actual = self.coins[book.row, side, band] * book.scale[side]
                    np.add.at(rebinned[book.row, side, band], target[inside], actual[inside])
                    self.dropped_coins += float(actual[~inside].sum())
            book.scale = [1.0, 1.0]
            book.total = rebinned[book.row].sum(axis=(1, 2)).tolist()
            self._refresh_frontiers(book, rebinned)
        self.coins = rebinned
        self.version += 1

    @staticmethod
    def _refresh_frontiers(book: MarketBook, coins: FloatArray) -> None:
        longs = np.flatnonzero(coins[book.row, LONG].any(axis=0))
        shorts = np.flatnonzero(coins[book.row, SHORT].any(axis=0))
        book.long_top = int(longs[-1]) if longs.size else -1
        book.short_bottom = int(shorts[0]) if shorts.size else 1 << 62

    def follow_price(self, price: float, time_s: float) -> None:
        """Keep the grid fit for ``price`` at ``time_s``: the step and array of its zone at the
        first reading of each hour, or at once when the price left the zone by more than the
        margin (grid.py)."""
        hour = math.floor(time_s / ZONE_ALIGN_SECONDS)
        if hour != self._aligned_hour:
            self._aligned_hour = hour
            if zone_of(price) != self.zone:
                self._restep(price)
        low, high = self._zone_band
        if not low <= price < high and not zone_holds(self.zone, price):
            self._restep(price)

    # --- markets ------------------------------------------------------------------------

    def book(self, market: str) -> MarketBook:
        book = self.markets.get(market)
        if book is None:
            book = MarketBook(row=len(self.markets))
            self.markets[market] = book
            self.coins = np.concatenate([self.coins, np.zeros((1, *self.coins.shape[1:]))])
        return book

    # --- the update ---------------------------------------------------------------------

    def update(
        self,
        market: str,
        *,
        time_s: float,
        open_interest: float,
        price: float,
        low: float | None = None,
        high: float | None = None,
    ) -> Reading:
        """One open-interest reading of ``market``: decay, sweep, then open or close.

        ``low``/``high`` are the market's price extremes since its previous reading (defaults:
        ``price``). Only the market's own prices sweep its positions: a market's state depends
        on its own readings alone, so replicas holding different markets of a coin add up to
        the one-process map (``--shard``).
        """
        if self._shared:
            self.coins = self.coins.copy()
            self._shared = False
        self.follow_price(price, time_s)
        book = self.markets.get(market) or self.book(market)
        reading = self._staleness(book, time_s, open_interest, price)
        self._turnover(book, time_s)
        self._sweep(book, price if low is None else low, price if high is None else high)
        opened = [0.0, 0.0]
        if reading == "applied" and book.open_interest is not None and book.price is not None:
            if open_interest > book.open_interest:
                delta = open_interest - book.open_interest
                if not self._trend:
                    opened = [opened[LONG] + delta, opened[SHORT] + delta]
                elif price >= book.price:  # the side that moved the price opened
                    opened[LONG] += delta
                else:
                    opened[SHORT] += delta
            elif open_interest < book.open_interest:
                self._close(book, open_interest / book.open_interest)
        for side in (LONG, SHORT):
            pending = book.pending[side]
            if pending > 0 and (opened[side] > 0 or pending > REPLACEMENT_BATCH * book.total[side]):
                opened[side] += pending
                book.pending[side] = 0.0
        if opened[LONG] > 0 or opened[SHORT] > 0:
            self._open(book, opened, price)
        book.open_interest = open_interest
        book.price = price
        self.version += 1
        return reading

    def _staleness(
        self, book: MarketBook, time_s: float, open_interest: float, price: float
    ) -> Reading:
        """Open interest that stayed the same, in coins or in USD, for longer than
        ``stale_after_seconds`` is an upstream gap carried forward, not a quiet market (real
        readings never repeat exactly): readings past that open and close nothing, and neither
        does the step when it moves again (the change over the whole gap)."""
        since, last = book.unchanged_since, book.time_s
        previous, previous_price = book.open_interest, book.price
        # No open interest at all (a new or emptied market) is a real state, never stale.
        same = (
            previous is not None
            and previous > 0
            and previous_price is not None
            and (
                math.isclose(open_interest, previous, rel_tol=1e-9)
                or math.isclose(open_interest * price, previous * previous_price, rel_tol=1e-9)
            )
        )
        if not same:
            held = 0.0 if since is None or last is None else last - since
            book.unchanged_since = time_s
            book.stale_readings = 0
            return "resumed" if held > self._stale_after else "applied"
        if since is not None and time_s - since > self._stale_after:
            book.stale_readings += 1
            return "stale"
        return "unchanged"  # in USD, say, while the price moved: no coins opened or closed

    def _turnover(self, book: MarketBook, time_s: float) -> None:
        """Turnover at constant open interest: positions close at the half-life's rate and as
        many open at the price (the open interest did not change): added to ``book.pending``."""
        if book.time_s is not None and time_s > book.time_s:
            hours = (time_s - book.time_s) / 3600.0
            factor = 0.5 ** (hours / self._half_life_hours)
            total, pending = book.total, book.pending
            book.pending = [
                pending[LONG] + total[LONG] * (1 - factor),
                pending[SHORT] + total[SHORT] * (1 - factor),
            ]
            book.total = [total[LONG] * factor, total[SHORT] * factor]
            scale = book.scale = [book.scale[LONG] * factor, book.scale[SHORT] * factor]
            if min(scale) < _RENORMALISE_BELOW:
                self.coins[book.row] *= np.array(scale)[:, None, None]
                book.scale = [1.0, 1.0]
        book.time_s = time_s if book.time_s is None else max(book.time_s, time_s)

    def _sweep(self, book: MarketBook, low: float, high: float) -> None:
        """Remove the positions whose whole bin the price crossed; as many coins reopen at the
        price (``book.pending``): a liquidation alone does not change the open interest.

        A long bin goes once the low reached its lower edge (every position in it has its
        liquidation price at or above the low); a short bin once the high reached its upper edge.
        """
        fine, base = self.fine, self.base
        swept = book.pending
        first_long = max(0, math.ceil(low / fine - base))
        if first_long <= book.long_top:  # no long coins lie above long_top
            crossed = self.coins[book.row, LONG, :, first_long : book.long_top + 1]
            coins = float(crossed.sum()) * book.scale[LONG]
            swept[LONG] += coins
            book.total[LONG] = max(0.0, book.total[LONG] - coins)
            crossed[...] = 0.0
            book.long_top = first_long - 1
        last_short = min(self.bins, math.floor(high / fine - base))
        if last_short > book.short_bottom:  # nor short coins below short_bottom
            crossed = self.coins[book.row, SHORT, :, max(0, book.short_bottom) : last_short]
            coins = float(crossed.sum()) * book.scale[SHORT]
            swept[SHORT] += coins
            book.total[SHORT] = max(0.0, book.total[SHORT] - coins)
            crossed[...] = 0.0
            book.short_bottom = last_short

    def _open(self, book: MarketBook, coins: list[float], price: float) -> None:
        """New positions of ``coins[side]`` at ``price``, spread over the leverage assumption."""
        if self.kernel.density is not None:
            self._open_density(book, self.kernel.density, coins, price)
            return
        for side in (LONG, SHORT):
            if coins[side] > 0:
                self._open_points(book, side, coins[side], price)

    def _open_density(
        self, book: MarketBook, density: Density, coins: list[float], price: float
    ) -> None:
        """Each fine bin gets the share of the density whose liquidation price lies in it:
        differences of the cumulative distribution at the bin edges, both sides in one pass.
        A fine bin goes to the leverage band of its lower edge."""
        fine, base, bins = self.fine, self.base, self.bins
        low = density.ranges[LONG if coins[LONG] > 0 else SHORT][0]
        high = density.ranges[SHORT if coins[SHORT] > 0 else LONG][1]
        first = max(0, math.floor(price * low / fine) - base)
        last = min(bins - 1, math.floor(price * high / fine) - base)
        if last < first:  # the whole opening lies off the grid
            self.dropped_coins += coins[LONG] + coins[SHORT]
            return
        # Table positions of the bin edges, rounded to the nearest entry (+ 0.5, truncated).
        per_edge = fine / price / density.spacing
        positions = self._ramp[: last - first + 2] * per_edge
        positions += (base + first) * per_edge - density.origin / density.spacing + 0.5
        shares = density.table.take(positions.astype(np.intp))
        # What lies inside the grid of each side (the rest is dropped).
        below, above = float(shares[0]), float(shares[-1])
        inside = (min(above, 1.0) - min(below, 1.0), max(above, 1.0) - max(below, 1.0))
        mass = shares[1:] - shares[:-1]
        stops = shares[:-1].searchsorted(density.uppers).tolist()
        split = stops[LONG_SEGMENTS - 1]  # the first bin whose lower edge is a short's
        straddle = 0 < split <= mass.size and shares[split] > 1.0
        if straddle:
            # A bin holding both sides (bins wider than the nearest liquidation distance): its
            # short part goes to the short side, in the band of the nearest shorts.
            side, band = density.rows[LONG_SEGMENTS]
            self.coins[book.row, side, band, first + split - 1] += (
                (shares[split] - 1.0) * coins[SHORT] / book.scale[SHORT]
            )
            mass[split - 1] = 1.0 - shares[split - 1]
        mass[:split] *= coins[LONG] / book.scale[LONG]
        mass[split:] *= coins[SHORT] / book.scale[SHORT]
        rows = self.coins[book.row]
        start = 0
        for (side, band), stop in zip(density.rows, stops, strict=True):
            if stop > start:
                rows[side, band, first + start : first + stop] += mass[start:stop]
                start = stop
        for side in (LONG, SHORT):
            placed = coins[side] * inside[side]
            self.dropped_coins += coins[side] - placed
            book.total[side] += placed
        # The frontiers the sweeps start from: the last bin the longs reached, the first the
        # shorts did (the bins themselves, not the densities' ranges: a bin edge read from the
        # table may fall just beyond a range).
        if coins[LONG] > 0 and split > 0:
            book.long_top = max(book.long_top, first + split - 1)
        if coins[SHORT] > 0 and split <= mass.size:
            book.short_bottom = min(book.short_bottom, first + split - (1 if straddle else 0))

    def _open_points(self, book: MarketBook, side: int, coins: float, price: float) -> None:
        """The five-point mix: a plain loop over the side's (leverage) points, whose five
        scalar updates cost less than the numpy calls that would vectorise them."""
        fine, base, bins = self.fine, self.base, self.bins
        target = self.coins[book.row, side]
        per_weight = coins / book.scale[side]
        placed = 0.0
        edge = book.long_top if side == LONG else book.short_bottom
        for factor, weight, band in self.kernel.points[side]:
            index = math.floor(price * factor / fine) - base
            if not 0 <= index < bins:
                self.dropped_coins += coins * weight
                continue
            target[band, index] += per_weight * weight
            placed += coins * weight
            edge = max(edge, index) if side == LONG else min(edge, index)
        book.total[side] += placed
        if side == LONG:
            book.long_top = edge
        else:
            book.short_bottom = edge

    def _close(self, book: MarketBook, keep: float) -> None:
        """Open interest fell to ``keep`` of what it was: the modelled positions are part of
        all open positions, so each side keeps that same fraction, every bin alike."""
        book.total = [book.total[LONG] * keep, book.total[SHORT] * keep]
        book.pending = [book.pending[LONG] * keep, book.pending[SHORT] * keep]
        for side in (LONG, SHORT):
            if keep > 0:
                book.scale[side] *= keep
            else:
                self.coins[book.row, side] = 0.0
                book.scale[side] = 1.0

    # --- reading ------------------------------------------------------------------------

    def actual_coins(self) -> FloatArray:
        """``[side, j]``: coins per fine bin over all markets and bands."""
        return combine(self.coins, self.scales())

    def scales(self) -> FloatArray:
        """``[market, side]``: what each market's stored coins are multiplied by (a new array).

        Read as of the last update: decay is turnover, which the next update reopens at the
        then price, so a reading between updates has nothing to take away."""
        if not self.markets:
            return np.zeros((0, 2))
        return np.array([b.scale for b in self.markets.values()])

    def share(self) -> tuple[FloatArray, FloatArray]:
        """The state array and ``scales()``, for a reader to ``combine`` later: taking a
        view of the model costs O(markets), not O(bins). The array is shared, not copied; the
        next update copies it before changing anything (copy on write)."""
        self._shared = True
        return self.coins, self.scales()

    def side_totals(self) -> FloatArray:
        """Coins per side held by each market's estimated positions: ``[market, side]``."""
        scales = np.array([b.scale for b in self.markets.values()])
        totals: FloatArray = self.coins.sum(axis=(2, 3)) * scales
        return totals


def combine_bands(coins: FloatArray, scales: FloatArray) -> FloatArray:
    """``[side, band, j]``: ``sum over m of coins[m, side, band, j] * scales[m, side]``."""
    if coins.shape[0] == 0:
        return np.zeros(coins.shape[1:])
    combined: FloatArray = np.einsum("msbj,ms->sbj", coins, scales)
    return combined


def combine(coins: FloatArray, scales: FloatArray) -> FloatArray:
    """``[side, j]``: ``combine_bands`` summed over the bands."""
    summed: FloatArray = combine_bands(coins, scales).sum(axis=1)
    return summed
