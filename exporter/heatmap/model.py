"""The heatmap model of one coin: estimated open positions by liquidation price.

State: ``coins[m, side, j]``, coins of base currency held by estimated positions of market ``m``
(an exchange's perpetual of this coin) whose liquidation price lies in fine bin ``j``; side 0 is
long, 1 is short. Fine bin ``j`` covers ``[(base + j) * fine, (base + j + 1) * fine)`` where
``fine = step / SUB`` and ``step`` is the emitted bin width. The fine grid makes sweeps precise
(a bin is removed only once the price has crossed all of it) while metrics show ``step`` bins.

Each market has lazy scale factors per side (``actual = stored * scale``) so that decay and
proportional closes cost O(1) instead of touching every bin. An update costs a fixed few dozen
operations (a scalar write per leverage tier, a slice per sweep, a sum per close); nothing loops
per bin or per position. Readers (``views``) share the state array copy-on-write: the next
update copies it first, so taking a view costs nothing per bin.
See docs/heatmap-model.md for the model and its assumptions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from exporter.heatmap.grid import HYSTERESIS, nice_step, step_still_fits

if TYPE_CHECKING:
    from exporter.heatmap.params import HeatmapParams

LONG: Final = 0
SHORT: Final = 1
SUB: Final = 4  # fine bins per emitted bin
_RENORMALISE_BELOW: Final = 1e-150
FloatArray = npt.NDArray[np.float64]


@dataclass
class MarketBook:
    """Per-market bookkeeping around its rows of the coin's state array."""

    row: int
    scale: list[float] = field(default_factory=lambda: [1.0, 1.0])  # [side]
    time_s: float | None = None  # time of the last update
    open_interest: float | None = None  # coins, at the last update
    price: float | None = None  # mark price at the last update
    low: float = math.inf  # extremes of the price observed since the last update
    high: float = -math.inf
    long_top: int = -1  # highest fine bin that may hold long positions
    short_bottom: int = 1 << 62  # lowest fine bin that may hold short positions


class CoinHeatmap:
    """Estimated positions of every market of one coin on one shared price grid."""

    def __init__(self, coin: str, params: HeatmapParams, price: float) -> None:
        self.coin = coin
        self.params = params
        self.factors = params.liquidation_factors(coin)  # [side, leverage]
        self.weights = params.weights()
        # (side, liquidation factor, weight) of every tier, as Python floats for _open, and
        # the factors of the highest long and the lowest short liquidation price.
        self._tiers = [
            (side, float(factor), float(weight))
            for side in (LONG, SHORT)
            for factor, weight in zip(self.factors[side], self.weights, strict=True)
        ]
        self._top_long = float(self.factors[LONG].max())
        self._bottom_short = float(self.factors[SHORT].min())
        self._factor_range = (float(self.factors.min()), float(self.factors.max()))
        self._trend = params.side_attribution == "trend"
        self._half_life_hours = params.half_life_hours
        # Fine bins per market and side: enough for the emitted range at the finest allowed
        # step, while re-centring keeps the price in the middle half.
        emitted = math.ceil(max(8 * params.range_fraction, 1.6) / params.bin_fraction)
        self.bins = SUB * 2 * math.ceil(emitted / 2)
        self.markets: dict[str, MarketBook] = {}
        self.coins = np.zeros((0, 2, self.bins))
        self.step = nice_step(params.bin_fraction * price)
        self.base = 0
        self.dropped_coins = 0.0  # positions pushed off the grid by re-centring
        self.version = 0  # bumps on every change: lets readers cache derived views
        self._shared = False  # a reader holds self.coins: copy it before changing it
        # Prices for which follow_price surely has nothing to do, and the (step, base) they
        # were derived for: follow_price re-derives them whenever the grid changed.
        self._step_band = self._centre_band = (math.inf, -math.inf)
        self._bands_for = (math.nan, 0)
        self._centre(price)

    # --- grid ---------------------------------------------------------------------------

    @property
    def fine(self) -> float:
        return self.step / SUB

    def fine_position(self, price: float) -> float:
        """``price`` in fine-bin coordinates of the state array (fractional)."""
        return price / self.fine - self.base

    def _centre(self, price: float) -> None:
        """Shift the grid (by whole emitted bins) so that ``price`` sits in the middle."""
        new_base = (math.floor(price / self.fine) // SUB) * SUB - self.bins // 2
        shift = new_base - self.base
        if shift == 0:
            return
        shifted = np.zeros_like(self.coins)
        if abs(shift) < self.bins:
            if shift > 0:
                shifted[:, :, : self.bins - shift] = self.coins[:, :, shift:]
            else:
                shifted[:, :, -shift:] = self.coins[:, :, : self.bins + shift]
        for book in self.markets.values():
            stored_before = self.coins[book.row] @ np.ones(self.bins)
            stored_after = shifted[book.row] @ np.ones(self.bins)
            self.dropped_coins += float(((stored_before - stored_after) * book.scale).sum())
            book.long_top -= shift
            book.short_bottom -= shift
        self.coins = shifted
        self.base = new_base
        self.version += 1

    def _restep(self, price: float) -> None:
        """Choose a new step and move every fine bin's coins to the new bin of its centre."""
        new_step = nice_step(self.params.bin_fraction * price)
        old_fine, old_base = self.fine, self.base
        self.step = new_step
        self.base = (math.floor(price / self.fine) // SUB) * SUB - self.bins // 2
        centres = (old_base + np.arange(self.bins) + 0.5) * old_fine
        target = np.floor(centres / self.fine).astype(np.int64) - self.base
        inside = (target >= 0) & (target < self.bins)
        rebinned = np.zeros_like(self.coins)
        for book in self.markets.values():
            for side in (LONG, SHORT):
                actual = self.coins[book.row, side] * book.scale[side]
                np.add.at(rebinned[book.row, side], target[inside], actual[inside])
                self.dropped_coins += float(actual[~inside].sum())
            book.scale = [1.0, 1.0]
            self._refresh_frontiers(book, rebinned)
        self.coins = rebinned
        self.version += 1

    @staticmethod
    def _refresh_frontiers(book: MarketBook, coins: FloatArray) -> None:
        longs = np.flatnonzero(coins[book.row, LONG])
        shorts = np.flatnonzero(coins[book.row, SHORT])
        book.long_top = int(longs[-1]) if longs.size else -1
        book.short_bottom = int(shorts[0]) if shorts.size else 1 << 62

    def _refresh_bands(self) -> None:
        """Price ranges inside which the step surely fits and the price surely sits in the
        middle half of the array: a relative margin of 1e-9 keeps rounding on the safe side,
        and only prices outside them take the exact checks of ``follow_price``."""
        inner, outer = 1.0 + 1e-9, 1.0 - 1e-9
        fraction = self.params.bin_fraction
        self._bands_for = (self.step, self.base)
        self._step_band = (
            self.step / (fraction * HYSTERESIS[1]) * inner,
            self.step / (fraction * HYSTERESIS[0]) * outer,
        )
        self._centre_band = (
            (self.bins / 4 + self.base) * self.fine * inner,
            (3 * self.bins / 4 + self.base) * self.fine * outer,
        )

    def follow_price(self, price: float) -> None:
        """Keep the grid fit for ``price``: new step when it drifted far, re-centre when the
        price left the middle half of the array."""
        if self._bands_for != (self.step, self.base):  # a new grid (or one set from outside)
            self._refresh_bands()
        low, high = self._step_band
        if not low <= price <= high and not step_still_fits(
            self.step, price, self.params.bin_fraction
        ):
            self._restep(price)
            self._refresh_bands()
        low, high = self._centre_band
        if not low <= price <= high:
            position = self.fine_position(price)
            if not self.bins / 4 <= position <= 3 * self.bins / 4:
                self._centre(price)

    # --- markets ------------------------------------------------------------------------

    def book(self, market: str) -> MarketBook:
        book = self.markets.get(market)
        if book is None:
            book = MarketBook(row=len(self.markets))
            self.markets[market] = book
            self.coins = np.concatenate([self.coins, np.zeros((1, 2, self.bins))])
        return book

    def observe_price(self, price: float) -> None:
        """A price seen now (any market of the coin): widens every market's pending extremes."""
        for book in self.markets.values():
            book.low = min(book.low, price)
            book.high = max(book.high, price)

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
    ) -> None:
        """One open-interest reading of ``market``: decay, sweep, then open or close.

        ``low``/``high`` are price extremes since the previous reading (defaults: ``price``),
        on top of those gathered by ``observe_price``.
        """
        if self._shared:
            self.coins = self.coins.copy()
            self._shared = False
        self.follow_price(price)
        book = self.markets.get(market) or self.book(market)
        self._decay(book, time_s)
        self._sweep(
            book,
            min(book.low, price if low is None else low),
            max(book.high, price if high is None else high),
        )
        if book.open_interest is not None and book.price is not None:
            delta = open_interest - book.open_interest
            if delta > 0:
                self._open(book, delta, price, rising=price >= book.price)
            elif delta < 0:
                self._close(book, -delta)
        book.open_interest = open_interest
        book.price = price
        book.low, book.high = math.inf, -math.inf
        self.version += 1

    def _decay(self, book: MarketBook, time_s: float) -> None:
        if book.time_s is not None and time_s > book.time_s:
            hours = (time_s - book.time_s) / 3600.0
            factor = 0.5 ** (hours / self._half_life_hours)
            scale = book.scale = [book.scale[LONG] * factor, book.scale[SHORT] * factor]
            if min(scale) < _RENORMALISE_BELOW:
                self.coins[book.row] *= np.array(scale)[:, None]
                book.scale = [1.0, 1.0]
        book.time_s = time_s if book.time_s is None else max(book.time_s, time_s)

    def _sweep(self, book: MarketBook, low: float, high: float) -> None:
        """Remove the positions whose whole bin the price crossed.

        A long bin goes once the low reached its lower edge (every position in it has its
        liquidation price at or above the low); a short bin once the high reached its upper edge.
        """
        fine, base = self.fine, self.base
        first_long = max(0, math.ceil(low / fine - base))
        if first_long <= book.long_top:  # no long coins lie above long_top
            self.coins[book.row, LONG, first_long : book.long_top + 1] = 0.0
            book.long_top = first_long - 1
        last_short = min(self.bins, math.floor(high / fine - base))
        if last_short > book.short_bottom:  # nor short coins below short_bottom
            self.coins[book.row, SHORT, max(0, book.short_bottom) : last_short] = 0.0
            book.short_bottom = last_short

    def _open(self, book: MarketBook, coins: float, price: float, *, rising: bool) -> None:
        """New positions of ``coins`` at ``price``, spread over the leverage mix.

        A plain loop over the (side, leverage) tiers: ten scalar updates cost less than the
        numpy calls that would vectorise them.
        """
        # The side that moved the price is taken to have opened: longs in a rise.
        only = (LONG if rising else SHORT) if self._trend else None
        fine, base, bins = self.fine, self.base, self.bins
        scale = book.scale
        row = self.coins[book.row]
        # Rounding is monotonic: the extreme factors give the extreme bins.
        if (
            math.floor(price * self._factor_range[0] / fine) - base >= 0
            and math.floor(price * self._factor_range[1] / fine) - base < bins
        ):
            for side, factor, weight in self._tiers:
                if only is None or side == only:
                    row[side, math.floor(price * factor / fine) - base] += (
                        coins * weight / scale[side]
                    )
            top = math.floor(price * self._top_long / fine) - base
            bottom = math.floor(price * self._bottom_short / fine) - base
            book.long_top = max(book.long_top, top)
            book.short_bottom = min(book.short_bottom, bottom)
            return
        dropped = 0.0  # some positions fall off the grid
        for side, factor, weight in self._tiers:
            index = math.floor(price * factor / fine) - base
            amount = coins * weight / scale[side] if only is None or side == only else 0.0
            if not 0 <= index < bins:
                dropped += amount * scale[side]
                continue
            if amount:
                row[side, index] += amount
            if side == LONG:
                book.long_top = max(book.long_top, index)
            else:
                book.short_bottom = min(book.short_bottom, index)
        self.dropped_coins += dropped

    def _close(self, book: MarketBook, coins: float) -> None:
        """Open interest fell: every position on each side shrinks by the same fraction."""
        totals = (self.coins[book.row].sum(axis=1) * book.scale).tolist()
        for side in (LONG, SHORT):
            if totals[side] <= coins:
                self.coins[book.row, side] = 0.0
                book.scale[side] = 1.0
            elif totals[side] > 0:
                book.scale[side] *= 1.0 - coins / totals[side]

    # --- reading ------------------------------------------------------------------------

    def actual_coins(self, now_s: float | None = None) -> FloatArray:
        """``[side, j]``: coins per fine bin over all markets, decayed to ``now_s``."""
        return combine(self.coins, self.scales(now_s))

    def scales(self, now_s: float | None = None) -> FloatArray:
        """``[market, side]``: what each market's stored coins are multiplied by, decayed to
        ``now_s`` (a new array)."""
        if not self.markets:
            return np.zeros((0, 2))
        scales = np.array([b.scale for b in self.markets.values()])
        if now_s is not None:
            ages = np.array([max(0.0, now_s - (b.time_s or now_s)) for b in self.markets.values()])
            scales = scales * (0.5 ** (ages / 3600.0 / self.params.half_life_hours))[:, None]
        return scales

    def share(self, now_s: float | None = None) -> tuple[FloatArray, FloatArray]:
        """The state array and ``scales(now_s)``, for a reader to ``combine`` later: taking a
        view of the model costs O(markets), not O(bins). The array is shared, not copied; the
        next update copies it before changing anything (copy on write)."""
        self._shared = True
        return self.coins, self.scales(now_s)

    def side_totals(self) -> FloatArray:
        """Coins per side held by each market's estimated positions: ``[market, side]``."""
        scales = np.array([b.scale for b in self.markets.values()])
        totals: FloatArray = self.coins.sum(axis=2) * scales
        return totals


def combine(coins: FloatArray, scales: FloatArray) -> FloatArray:
    """``[side, j]``: ``sum over m of coins[m, side, j] * scales[m, side]``."""
    if coins.shape[0] == 0:
        return np.zeros(coins.shape[1:])
    combined: FloatArray = np.einsum("msj,ms->sj", coins, scales)
    return combined
