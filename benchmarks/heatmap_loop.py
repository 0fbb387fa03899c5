"""The baseline of the heatmap benchmarks: the same model, one position at a time.

What a first implementation of ``exporter.heatmap.model`` would look like: a list of positions
per market, each with its side, fine price bin and coins, decayed, swept, closed and opened one
by one in plain Python. It follows the model's rules to the bin (same grid, same sweep edges,
same decay and proportional close), so after the same readings it holds the same coins per bin
(``benchmarks.heatmap`` checks that) and differs only in how it computes them. It has no array
to fall off: the model drops positions that leave its grid, this keeps them (the benchmark
histories never push any off).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from exporter.heatmap.grid import nice_step, step_still_fits
from exporter.heatmap.model import LONG, SHORT, SUB

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


class LoopHeatmap:
    """One coin's positions as Python objects; ``update`` mirrors ``CoinHeatmap.update``."""

    def __init__(self, coin: str, params: HeatmapParams, price: float) -> None:
        self.params = params
        factors = params.liquidation_factors(coin).tolist()
        weights = params.weights().tolist()
        self.tiers = [
            (side, factor, weight)
            for side in (LONG, SHORT)
            for factor, weight in zip(factors[side], weights, strict=True)
        ]
        self.step = nice_step(params.bin_fraction * price)
        self.markets: dict[str, LoopMarket] = {}

    def copy(self) -> LoopHeatmap:
        twin = LoopHeatmap.__new__(LoopHeatmap)
        twin.params, twin.tiers, twin.step = self.params, self.tiers, self.step
        twin.markets = {
            name: LoopMarket(
                [Position(p.side, p.bin, p.coins) for p in m.positions],
                m.time_s,
                m.open_interest,
                m.price,
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
        if not step_still_fits(self.step, price, self.params.bin_fraction):
            self._restep(price)
        book = self.markets.setdefault(market, LoopMarket())
        fine = self.step / SUB
        # Decay every position.
        if book.time_s is not None and time_s > book.time_s:
            hours = (time_s - book.time_s) / 3600.0
            factor = 0.5 ** (hours / self.params.half_life_hours)
            for position in book.positions:
                position.coins *= factor
        book.time_s = time_s if book.time_s is None else max(book.time_s, time_s)
        # Sweep: longs in bins whose lower edge the low reached, shorts whose upper edge the
        # high reached.
        first_long = math.ceil((price if low is None else low) / fine)
        last_short = math.floor((price if high is None else high) / fine)
        book.positions = [
            p
            for p in book.positions
            if not (p.bin >= first_long if p.side == LONG else p.bin < last_short)
        ]
        # Open or close the change in open interest.
        if book.open_interest is not None and book.price is not None:
            delta = open_interest - book.open_interest
            if delta > 0:
                self._open(book, delta, price, rising=price >= book.price)
            elif delta < 0:
                self._close(book, -delta)
        book.open_interest = open_interest
        book.price = price

    def _open(self, book: LoopMarket, coins: float, price: float, *, rising: bool) -> None:
        fine = self.step / SUB
        trend = self.params.side_attribution == "trend"
        for side, factor, weight in self.tiers:
            if trend and (side == LONG) != rising:
                continue
            bin_index = math.floor(price * factor / fine)
            book.positions.append(Position(side, bin_index, coins * weight))

    @staticmethod
    def _close(book: LoopMarket, coins: float) -> None:
        for side in (LONG, SHORT):
            total = 0.0
            for position in book.positions:
                if position.side == side:
                    total += position.coins
            if total <= coins:
                book.positions = [p for p in book.positions if p.side != side]
            elif total > 0:
                keep = 1.0 - coins / total
                for position in book.positions:
                    if position.side == side:
                        position.coins *= keep

    def _restep(self, price: float) -> None:
        """A new step: every position moves to the new bin of its old bin's centre."""
        old_fine = self.step / SUB
        self.step = nice_step(self.params.bin_fraction * price)
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
