"""Which coins get a heatmap: every coin, the coins listed, or the top N by open interest.

A heatmap is a model in memory and about a thousand series per coin; the totals, windows and
open-interest gauges of a market are a few dozen and every coin keeps them. ``CoinSelection``
decides, from the ``heatmap_coins`` setting and the open interest seen so far, which coins the
``HeatmapBook`` keeps a model for. Pure and synchronous: fed readings, it answers.

``top:N`` ranks coins by open interest in USD, the sum over a coin's markets (every exchange)
of each market's latest reading, re-ranked at every reading. A coin enters when it ranks in the
top N and leaves only when it ranks below ``keep`` = ⌈1.5·N⌉, so coins near the N-th place do
not flap between having a map and not: at most ``keep`` ranked coins hold a heatmap at once
(coins restored from a snapshot keep theirs until their first reading ranks them).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable

    from exporter.events import OpenInterest

TOP_PREFIX: Final = "top:"  # the setting's spelling: top:10
# A coin chosen by rank keeps its heatmap until it ranks below this multiple of N.
KEEP_FACTOR: Final = 1.5


@dataclass(frozen=True, slots=True)
class HeatmapCoins:
    """The ``heatmap_coins`` setting: the ``coins`` listed, or the ``top`` N coins by open
    interest; neither: every coin."""

    coins: tuple[str, ...] | None = None
    top: int | None = None

    def __post_init__(self) -> None:
        if self.coins is not None and self.top is not None:
            raise ValueError("heatmap coins are a list or top:N, not both")
        if self.coins is not None and not self.coins:
            raise ValueError("a list of heatmap coins needs at least one coin")
        if self.top is not None and self.top < 1:
            raise ValueError(f"top:{self.top}: N must be at least 1")

    @property
    def keep(self) -> int | None:
        """``top``: the rank a chosen coin must fall below to lose its heatmap."""
        return None if self.top is None else math.ceil(KEEP_FACTOR * self.top)

    @property
    def most(self) -> int | None:
        """The most coins that hold a heatmap at once (None: as many as are watched)."""
        return len(self.coins) if self.coins is not None else self.keep

    def __str__(self) -> str:
        if self.coins is not None:
            return ",".join(self.coins)
        return "all" if self.top is None else f"{TOP_PREFIX}{self.top}"


class CoinSelection:
    """The coins that have a heatmap now.

    ``observe`` takes every open-interest reading (newer than the market's last) and returns
    the coins that lost their place by it; ``selects`` says whether a coin has one. A list or
    ``all`` never changes; ``top`` follows the ranking (module docstring).
    """

    def __init__(self, setting: HeatmapCoins) -> None:
        self.setting = setting
        self._listed = frozenset(setting.coins) if setting.coins is not None else None
        # coin -> market -> USD of its latest reading; coin -> their sum
        self._markets: dict[str, dict[str, float]] = {}
        self._usd: dict[str, float] = {}
        # (-usd, coin) ascending: index i holds the coin of rank i + 1 (ties by name)
        self._ranking: list[tuple[float, str]] = []
        self._selected: set[str] = set()

    def selects(self, coin: str) -> bool:
        if self._listed is not None:
            return coin in self._listed
        return self.setting.top is None or coin in self._selected

    def wants(self, coin: str) -> bool | None:
        """Whether the coin's history should be fetched: ``selects``, except that ``top``
        knows nothing before its first reading (None: ask again once readings came in)."""
        if self.setting.top is not None and not self._ranking and coin not in self._selected:
            return None
        return self.selects(coin)

    def selected(self) -> tuple[str, ...]:
        """``top``: the coins chosen now, by rank (those restored and not read yet last)."""
        ranked = [coin for _, coin in self._ranking if coin in self._selected]
        return (*ranked, *sorted(self._selected.difference(ranked)))

    def restore(self, coins: Iterable[str]) -> tuple[str, ...]:
        """Coins whose heatmaps come back from a snapshot; returns those that must go (not
        listed). Under ``top`` each keeps its place until its first reading ranks it."""
        if self.setting.top is not None:
            self._selected.update(coins)
            return ()
        return tuple(coin for coin in coins if not self.selects(coin))

    def observe(self, event: OpenInterest) -> tuple[str, ...]:
        """Rank by this reading; returns the coins that lost their heatmap by it."""
        top, keep = self.setting.top, self.setting.keep
        if top is None or keep is None:
            return ()
        coin = event.coin
        markets = self._markets.setdefault(coin, {})
        markets[f"{event.exchange}:{event.symbol}"] = event.usd
        total = math.fsum(markets.values())
        before = self._usd.get(coin)
        if before is not None:
            del self._ranking[bisect_left(self._ranking, (-before, coin))]
        self._usd[coin] = total
        insort(self._ranking, (-total, coin))
        # Only this coin moved, so only three places can have crossed a line: its own, rank
        # keep + 1 (a coin it pushed down) and rank top (a coin that moved up past it).
        lost: list[str] = []
        rank = bisect_left(self._ranking, (-total, coin)) + 1
        if rank <= top:
            self._selected.add(coin)
        elif rank > keep and coin in self._selected:
            self._selected.remove(coin)
            lost.append(coin)
        if len(self._ranking) > keep:
            pushed = self._ranking[keep][1]
            if pushed in self._selected:
                self._selected.remove(pushed)
                lost.append(pushed)
        if len(self._ranking) >= top:
            self._selected.add(self._ranking[top - 1][1])
        return tuple(lost)
