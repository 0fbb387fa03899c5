"""The baseline of the heatmap benchmarks: the same model, one position at a time.

What a first implementation of ``exporter.heatmap.model`` would look like with the five-point
leverage mix (``heatmap_leverage: mix``): a list of positions per market, each with its side,
fine price bin and coins, decayed, swept, closed and opened one by one in plain Python. It
follows the model's rules to the bin (same grid, same sweep edges, turnover and swept positions
reopened at the price, the same proportional close), so after the same readings it holds the
same coins per bin (``benchmarks.heatmap`` checks that) and differs only in how it computes
them. It has no array to fall off: the model drops positions that leave its grid, this keeps
them (the benchmark histories never push any off), and it has no stale-data check (the
benchmark readings are never stale).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from exporter.heatmap.grid import SUB, zone_holds, zone_of, zone_step
from exporter.heatmap.leverage import kernel_of
from exporter.heatmap.model import LONG, REPLACEMENT_BATCH, SHORT

if TYPE_CHECKING:
    from exporter.heatmap.params import HeatmapParams


@dataclass(slots=True)
class Position:
    side: int
    bin: int  # absolute fine bin: the liquidation price lies in [bin, bin + 1) x fine
    coins: float


@dataclass(slots=True)
class LoopMarket:
    positions: list[Position] = field(default_factory=list)
    time_s: float | None = None
    open_interest: float | None = None
    price: float | None = None
    pending: list[float] = field(default_factory=lambda: [0.0, 0.0])  # turnover to reopen


class LoopHeatmap:
    """One coin's positions as Python objects; ``update`` mirrors ``CoinHeatmap.update``."""

    def __init__(self, coin: str, params: HeatmapParams, price: float) -> None:
        self.params = params
        # (side, liquidation factor, weight) of the five-point mix, as the model places them.
        self.tiers = [
            (side, factor, weight)
            for side in (LONG, SHORT)
            for factor, weight, _band in kernel_of(params, coin).points[side]
        ]
        self.trend = params.side_attribution == "trend"
        self.zone = zone_of(price)
        self.step = zone_step(self.zone, params.bin_fraction)
        self.markets: dict[str, LoopMarket] = {}

    def copy(self) -> LoopHeatmap:
        twin = LoopHeatmap.__new__(LoopHeatmap)
        twin.params, twin.tiers, twin.step = self.params, self.tiers, self.step
        twin.zone = self.zone
        twin.trend = self.trend
        twin.markets = {
            name: LoopMarket(
                [Position(p.side, p.bin, p.coins) for p in m.positions],
                m.time_s,
                m.open_interest,
                m.price,
                list(m.pending),
            )
            for name, m in self.markets.items()
        }
        return twin

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
        if not zone_holds(self.zone, price):
            self._restep(price)
        book = self.markets.setdefault(market, LoopMarket())
        fine = self.step / SUB
        turnover = self._decay(book, time_s)
        book.pending = [book.pending[LONG] + turnover[LONG], book.pending[SHORT] + turnover[SHORT]]
        opened = [0.0, 0.0]
        # Sweep: longs in bins whose lower edge the low reached, shorts whose upper edge the
        # high reached; they are replaced by new positions at the price (pending).
        first_long = math.ceil((price if low is None else low) / fine)
        last_short = math.floor((price if high is None else high) / fine)
        kept = []
        for p in book.positions:
            if p.bin >= first_long if p.side == LONG else p.bin < last_short:
                book.pending[p.side] += p.coins
            else:
                kept.append(p)
        book.positions = kept
        self._change(book, open_interest, price, opened)
        for side in (LONG, SHORT):
            # What turnover and sweeps closed reopens with the side's next opening or past 1 %
            # of its coins.
            total = sum(p.coins for p in book.positions if p.side == side)
            pending = book.pending[side]
            if pending > 0 and (opened[side] > 0 or pending > REPLACEMENT_BATCH * total):
                opened[side] += pending
                book.pending[side] = 0.0
            if opened[side] > 0:
                self._open(book, side, opened[side], price)
        book.open_interest = open_interest
        book.price = price

    def _change(
        self, book: LoopMarket, open_interest: float, price: float, opened: list[float]
    ) -> None:
        """Open (into ``opened``) or close the change in open interest."""
        if book.open_interest is None or book.price is None:
            return
        delta = open_interest - book.open_interest
        if delta > 0:
            if not self.trend:
                opened[LONG] += delta
                opened[SHORT] += delta
            else:
                opened[LONG if price >= book.price else SHORT] += delta
        elif delta < 0:
            keep = open_interest / book.open_interest
            self._close(book, keep)
            book.pending = [book.pending[LONG] * keep, book.pending[SHORT] * keep]

    def _decay(self, book: LoopMarket, time_s: float) -> list[float]:
        """Decay every position; returns the coins per side to reopen at the price (turnover)."""
        opened = [0.0, 0.0]
        if book.time_s is not None and time_s > book.time_s:
            hours = (time_s - book.time_s) / 3600.0
            factor = 0.5 ** (hours / self.params.half_life_hours)
            for position in book.positions:
                opened[position.side] += position.coins * (1 - factor)
                position.coins *= factor
        book.time_s = time_s if book.time_s is None else max(book.time_s, time_s)
        return opened

    def _open(self, book: LoopMarket, side: int, coins: float, price: float) -> None:
        fine = self.step / SUB
        for tier_side, factor, weight in self.tiers:
            if tier_side == side:
                bin_index = math.floor(price * factor / fine)
                book.positions.append(Position(side, bin_index, coins * weight))

    @staticmethod
    def _close(book: LoopMarket, keep: float) -> None:
        if keep <= 0:
            book.positions = []
            return
        for position in book.positions:
            position.coins *= keep

    def _restep(self, price: float) -> None:
        """A new step: every position moves to the new bin of its old bin's centre."""
        old_fine = self.step / SUB
        self.zone = zone_of(price)
        self.step = zone_step(self.zone, self.params.bin_fraction)
        fine = self.step / SUB
        for book in self.markets.values():
            for position in book.positions:
                position.bin = math.floor((position.bin + 0.5) * old_fine / fine)

    def coins_by_bin(self) -> dict[tuple[int, int], float]:
        """``{(side, absolute fine bin): coins}`` over every market."""
        totals: dict[tuple[int, int], float] = {}
        for book in self.markets.values():
            for p in book.positions:
                totals[p.side, p.bin] = totals.get((p.side, p.bin), 0.0) + p.coins
        return totals

    def position_count(self) -> int:
        return sum(len(book.positions) for book in self.markets.values())
