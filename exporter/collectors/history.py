"""Past open interest and 5-minute candles of one market, for the heatmap backfill.

The venues differ only in data (page sizes, how far back open-interest history reaches, which
ccxt field holds coins, the request budget of their history endpoints): see `HistoryLimits`.
Walking pages and aligning the two series happens here once.

Every page asks for an exact window of ``rows`` times ``[start, end]`` on the 5-minute grid
(candle open times, reading times), so the venues' different anchoring (Binance klines fill a
page from ``startTime``; Bybit and OKX from the end, newest first; OKX bounds are exclusive)
cannot shift or drop rows. ccxt turns ``since`` and ``params['until'] = end + 5 min - 1 ms``
into each venue's own bounds: Binance ``startTime``/``endTime``, Bybit ``startTime``/``endTime``
and ``start``/``end``, OKX ``begin``/``end`` and ``before``/``after`` (``until + 1`` and
``until`` respectively, exclusive).

An open-interest reading stamped t is the open interest at t, so it goes with the candle that
closes at t (opens at t - 5 min): the step from the previous reading swept that candle's low and
high and ended at its close, while the candle that opens at t comes after the reading (and, for
the newest, has not closed). The venues document only "timestamp"; Binance's data settles it.
The USD value it serves with a reading at t is the coins at the price at t: in coins by the open
of the candle that starts at t, the series churns a third as much as by that candle's close, and
its 5-minute changes follow the return of the candle ending at t (r = 0.79), not of the one
starting there (r = -0.04).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

import numpy as np

from exporter.events import MAX_PRICE_USD, Reason

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    import numpy.typing as npt

TIMEFRAME: Final = "5m"
CANDLE_MS: Final = 300_000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class HistoryLimits:
    """How one venue serves 5-minute open-interest history and candles.

    ``*_rows`` are rows per request (the venue's maximum, or a cheaper size where the request
    weight depends on it). ``open_interest_days`` is how far back the open-interest endpoint
    reaches (None: no documented limit). ``*_budget`` is ``(requests, seconds)`` we allow
    ourselves on that endpoint, half the venue's own limit, where ccxt's throttle alone would
    exceed it (None: ccxt's throttle is enough). ``open_interest_coins`` is the field of ccxt's
    open-interest structure that holds the amount in coins, or in contracts (of the market's
    ``contractSize`` coins) where ``open_interest_in_contracts`` says so (Gate).
    """

    open_interest_rows: int
    candle_rows: int
    open_interest_days: float | None = None
    open_interest_budget: tuple[int, float] | None = None
    candle_budget: tuple[int, float] | None = None
    open_interest_coins: str = "openInterestAmount"
    open_interest_in_contracts: bool = False


class RequestPacer:
    """At most ``requests`` per ``seconds`` on average, in bursts of up to ``requests``.

    The generic cell-rate algorithm: each request moves a theoretical arrival time on by
    ``seconds / requests``; a request waits while that time is more than the burst ahead of
    now. Clock and sleep are injected, so the pacing is tested without real waiting.
    """

    def __init__(
        self,
        requests: int,
        seconds: float,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        if requests < 1 or seconds <= 0:
            raise ValueError(f"need requests >= 1 and seconds > 0, got {requests}, {seconds}")
        self._interval = seconds / requests
        self._burst = seconds - self._interval
        self._clock = clock
        self._sleep = sleep
        self._arrival = -math.inf

    async def wait(self) -> None:
        """Return when one more request fits the budget."""
        now = self._clock()
        arrival = max(self._arrival, now)
        delay = arrival - self._burst - now
        self._arrival = arrival + self._interval
        if delay > 0:
            await self._sleep(delay)


def grid_window(since_ms: int, until_ms: int) -> tuple[int, int]:
    """The first and last candle open times inside ``[since_ms, until_ms]``."""
    first = -(-since_ms // CANDLE_MS) * CANDLE_MS
    last = until_ms // CANDLE_MS * CANDLE_MS
    return first, last


async def fetch_pages(
    fetch_page: Callable[[int, int, int], Awaitable[Mapping[int, T]]],
    first_ms: int,
    last_ms: int,
    rows: int,
    pacer: RequestPacer | None,
) -> dict[int, T]:
    """Rows keyed by open time over ``[first_ms, last_ms]``, newest window first.

    ``fetch_page(start, end, rows)`` answers one window; rows outside it are ignored, and the
    next window ends below the oldest row served. The walk stops at the first empty window:
    the venue holds nothing older (OKX is said to keep days, not weeks, of 5-minute open
    interest), so asking further back would only spend budget.
    """
    found: dict[int, T] = {}
    end = last_ms
    while end >= first_ms:
        start = max(first_ms, end - (rows - 1) * CANDLE_MS)
        if pacer is not None:
            await pacer.wait()
        page = await fetch_page(start, end, rows)
        inside = {ts: row for ts, row in page.items() if start <= ts <= end}
        if not inside:
            break
        found.update(inside)
        # Below the oldest row served: a venue that answers fewer rows than asked (newest
        # first, as Bybit and OKX do) leaves no hole.
        end = min(inside) - CANDLE_MS
    return found


def open_interest_rows(entries: object, coins_field: str) -> dict[int, float]:
    """``{reading time: coins}`` from ccxt open-interest structures; incomplete entries skipped."""
    rows: dict[int, float] = {}
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict):
            continue
        ts, coins = entry.get("timestamp"), _number(entry.get(coins_field))
        if isinstance(ts, int) and coins is not None:
            rows[ts] = coins
    return rows


def candle_rows(candles: object) -> dict[int, tuple[float, float, float]]:
    """``{open time: (low, high, close)}`` from ccxt OHLCV rows; incomplete rows skipped."""
    rows: dict[int, tuple[float, float, float]] = {}
    for candle in candles if isinstance(candles, list) else ():
        if not isinstance(candle, list) or len(candle) < 5:
            continue
        ts = candle[0]
        high, low, close = (_number(v) for v in candle[2:5])
        if isinstance(ts, int) and low is not None and high is not None and close is not None:
            rows[ts] = (low, high, close)
    return rows


def candle_window(open_interest: Mapping[int, float]) -> tuple[int, int]:
    """Open times of the candles that close at the oldest and the newest reading: one candle
    before the readings' own window, so neither end loses its row."""
    return min(open_interest) - CANDLE_MS, max(open_interest) - CANDLE_MS


@dataclass(frozen=True, slots=True)
class AlignedHistory:
    """The readings that have their candle, oldest first: reading time, open interest and the
    low, high and close of the candle that closes at it; and the rows rejected by reason."""

    timestamps_ms: npt.NDArray[np.int64]
    open_interest_coins: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    rejected: dict[Reason, int]


def align(
    open_interest: Mapping[int, float], candles: Mapping[int, tuple[float, float, float]]
) -> AlignedHistory:
    """Pair the reading at t with the candle that opens at t - 5 min (``candles`` is keyed by
    open time); a reading without that candle is dropped, and so is a row no genuine market
    prints (not finite, not positive, low above high, absurd price)."""
    times = sorted(t for t in open_interest if t - CANDLE_MS in candles)
    ts = np.array(times, dtype=np.int64)
    oi = np.array([open_interest[t] for t in times], dtype=np.float64)
    prices = np.array([candles[t - CANDLE_MS] for t in times], dtype=np.float64).reshape(
        len(times), 3
    )
    low, high, close = prices[:, 0], prices[:, 1], prices[:, 2]
    finite = np.isfinite(oi) & np.isfinite(prices).all(axis=1)
    with np.errstate(invalid="ignore"):
        positive = (oi >= 0) & (low > 0) & (close > 0)
        in_range = (low <= high) & (high <= MAX_PRICE_USD)
    rejected = {
        Reason.NOT_FINITE: int(np.count_nonzero(~finite)),
        Reason.NOT_POSITIVE: int(np.count_nonzero(finite & ~positive)),
        Reason.OUT_OF_RANGE: int(np.count_nonzero(finite & positive & ~in_range)),
    }
    keep = finite & positive & in_range
    return AlignedHistory(
        ts[keep],
        oi[keep],
        low[keep],
        high[keep],
        close[keep],
        {reason: n for reason, n in rejected.items() if n},
    )


def _number(value: object) -> float | None:
    """A JSON number as float; None for anything else (ccxt's parsers give None when absent)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
