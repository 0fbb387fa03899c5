"""The 5-minute open-interest and candle history a fake venue serves (the heatmap backfill's
source), and the row selection the venues' history endpoints share.

By default a market's history is the packaged real Binance BTCUSDT path
(``data/binance_btcusdt_5m_price_oi_2026-06.csv``, 4406 rows, ~15 days) laid out on the
5-minute grid so that its last row is the candle open at the fake's current time, with prices
scaled so the last close is the market's mark price and open interest (coins = USD / open: a
reading stamped t is a snapshot at t, the candle's open, see ``exporter.collectors.history``)
scaled so the last reading is the market's open interest. It is fixed at the first request for
the market, like a venue's past; `FakeExchange.set_history` replaces it.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Final

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

CANDLE_MS: Final = 300_000
DATA_PACKAGE: Final = "exporter.fakeexchange"
DATA_FILE: Final = "data/binance_btcusdt_5m_price_oi_2026-06.csv"


@dataclass(frozen=True, eq=False)
class FakeHistory:
    """One market's past, oldest first: open time (ms), open interest (coins) and OHLC (USD)."""

    ts_ms: npt.NDArray[np.int64]
    open_interest_coins: npt.NDArray[np.float64]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        n = self.ts_ms.shape
        columns = (self.open_interest_coins, self.open, self.high, self.low, self.close)
        if self.ts_ms.ndim != 1 or any(c.shape != n for c in columns):
            raise ValueError("history columns must be one-dimensional and of one length")
        if np.any(np.diff(self.ts_ms) <= 0):
            raise ValueError("history timestamps must be strictly ascending")

    @classmethod
    def of(
        cls,
        *,
        timestamps_ms: npt.ArrayLike,
        open_interest_coins: npt.ArrayLike,
        open: npt.ArrayLike,  # noqa: A002 - the venues' own name for the column
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
    ) -> FakeHistory:
        """Copies of the given columns as int64 / float64 arrays."""

        def floats(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
            return np.array(values, dtype=np.float64)

        return cls(
            np.array(timestamps_ms, dtype=np.int64),
            floats(open_interest_coins),
            floats(open),
            floats(high),
            floats(low),
            floats(close),
        )

    def __len__(self) -> int:
        return int(self.ts_ms.shape[0])

    def pick(
        self,
        first_ms: int | None,
        last_ms: int | None,
        limit: int,
        *,
        newest: bool,
        period_ms: int = CANDLE_MS,
    ) -> list[int]:
        """Row indices, oldest first: rows in ``[first_ms, last_ms]`` (None: unbounded) on the
        ``period_ms`` grid, at most ``limit`` of them, the newest ones if ``newest`` else the
        oldest ones (venues anchor a page at its end or at its start)."""
        mask = self.ts_ms % period_ms == 0
        if first_ms is not None:
            mask &= self.ts_ms >= first_ms
        if last_ms is not None:
            mask &= self.ts_ms <= last_ms
        rows = np.flatnonzero(mask)
        chosen = rows[-limit:] if newest else rows[:limit]
        return [int(i) for i in chosen]

    def volume_coins(self, i: int) -> float:
        """A plausible 5-minute volume in coins (the data has none): 1 % of open interest."""
        return float(self.open_interest_coins[i]) * 0.01


@functools.cache
def _btc_path() -> tuple[npt.NDArray[np.float64], ...]:
    """(open, high, low, close, open interest in coins) of the packaged CSV, read once."""
    text = resources.files(DATA_PACKAGE).joinpath(DATA_FILE).read_text(encoding="utf-8")
    table = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1, usecols=(2, 3, 4, 5, 6))
    open_, high, low, close, oi_usd = (np.ascontiguousarray(table[:, i]) for i in range(5))
    columns = (open_, high, low, close, oi_usd / open_)
    for column in columns:
        column.flags.writeable = False
    return columns


def default_history(now_ms: int, mark_price: float, open_interest_coins: float) -> FakeHistory:
    """The packaged BTC path ending at the candle open at ``now_ms``, scaled to this market."""
    open_, high, low, close, coins = _btc_path()
    n = close.shape[0]
    last = now_ms // CANDLE_MS * CANDLE_MS
    ts = last - np.arange(n - 1, -1, -1, dtype=np.int64) * CANDLE_MS
    price = mark_price / close[-1]
    return FakeHistory(
        ts,
        coins * (open_interest_coins / coins[-1]),
        open_ * price,
        high * price,
        low * price,
        close * price,
    )
