"""Typed, validated events: the only shapes that cross from collectors into the core.

Collectors translate each exchange's wire format into these; the core never sees raw exchange
data. Validation happens at construction so a bad value is rejected with a reason (which the
caller counts in ``cryptoliq_invalid_messages_total``) and is never stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal, get_args

import numpy as np
import numpy.typing as npt

Side = Literal["long", "short"]
SIDES: Final[tuple[Side, ...]] = ("long", "short")

# Bounds that no genuine message reaches; a value past them is a parsing or feed error.
MAX_PRICE_USD: Final = 1e8
MAX_NOTIONAL_USD: Final = 1e9  # the largest liquidations on record are ~1e8
MAX_OPEN_INTEREST_USD: Final = 1e12
# Coins, not USD: a meme coin at 1e-6 USD makes a 1e9 USD order 1e15 coins.
MAX_QUANTITY: Final = 1e15
# Earliest plausible exchange timestamp (2017-01-01): catches seconds sent where ms are expected.
MIN_TIMESTAMP_MS: Final = 1_483_228_800_000
# How far an exchange clock may run ahead of ours before a timestamp is treated as corrupt.
MAX_CLOCK_AHEAD_MS: Final = 300_000


class Reason(StrEnum):
    """Why a message was rejected: the bounded value set of the ``reason`` label."""

    MALFORMED = "malformed"  # not parseable at all (bad JSON, binary, wrong shape)
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_SYMBOL = "unknown_symbol"
    INVALID_SIDE = "invalid_side"
    NOT_FINITE = "not_finite"
    NOT_POSITIVE = "not_positive"
    OUT_OF_RANGE = "out_of_range"
    BAD_TIMESTAMP = "bad_timestamp"


class InvalidEventError(ValueError):
    """A message that cannot become an event; ``reason`` is the metric label value."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


def _require_finite(name: str, value: object) -> float:
    """``value`` if it is a finite number (not a bool); else why not."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidEventError(Reason.WRONG_TYPE, f"{name}={value!r} is not a number")
    if not math.isfinite(value):
        raise InvalidEventError(Reason.NOT_FINITE, f"{name}={value!r}")
    return value


def _require_positive(name: str, value: object, upper: float, *, allow_zero: bool = False) -> None:
    value = _require_finite(name, value)
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidEventError(Reason.NOT_POSITIVE, f"{name}={value!r}")
    if value > upper:
        raise InvalidEventError(Reason.OUT_OF_RANGE, f"{name}={value!r} exceeds {upper:g}")


def _require_timestamp(timestamp_ms: object, received_ms: int) -> None:
    if not isinstance(timestamp_ms, int) or isinstance(timestamp_ms, bool):
        raise InvalidEventError(Reason.WRONG_TYPE, f"timestamp_ms={timestamp_ms!r}")
    if timestamp_ms < MIN_TIMESTAMP_MS or timestamp_ms > received_ms + MAX_CLOCK_AHEAD_MS:
        raise InvalidEventError(
            Reason.BAD_TIMESTAMP, f"timestamp_ms={timestamp_ms} received_ms={received_ms}"
        )


def _require_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidEventError(Reason.WRONG_TYPE, f"{name}={value!r} is not a non-empty string")


@dataclass(frozen=True, slots=True)
class Liquidation:
    """One forced order.

    ``side`` is the side of the POSITION that was liquidated (a forced sell closes a long).
    ``quantity`` is in coins of the base currency, ``notional_usd`` in USD, times in ms.
    """

    exchange: str
    symbol: str  # ccxt unified symbol, e.g. "BTC/USDT:USDT"
    coin: str  # base currency, e.g. "BTC"
    side: Side
    price: float
    quantity: float
    notional_usd: float
    timestamp_ms: int  # exchange time of the liquidation
    received_ms: int  # our time when the message arrived

    def __post_init__(self) -> None:
        _require_text("exchange", self.exchange)
        _require_text("symbol", self.symbol)
        _require_text("coin", self.coin)
        if self.side not in SIDES:
            raise InvalidEventError(Reason.INVALID_SIDE, f"side={self.side!r}")
        _require_positive("price", self.price, MAX_PRICE_USD)
        _require_positive("quantity", self.quantity, MAX_QUANTITY)
        _require_positive("notional_usd", self.notional_usd, MAX_NOTIONAL_USD)
        _require_timestamp(self.timestamp_ms, self.received_ms)


@dataclass(frozen=True, slots=True)
class OpenInterest:
    """Open interest of one market at one moment; ``coins`` in base currency, ``usd`` in USD."""

    exchange: str
    symbol: str
    coin: str
    coins: float
    usd: float
    mark_price: float
    timestamp_ms: int
    received_ms: int

    def __post_init__(self) -> None:
        _require_text("exchange", self.exchange)
        _require_text("symbol", self.symbol)
        _require_text("coin", self.coin)
        # A freshly listed market legitimately has zero open interest.
        _require_positive("coins", self.coins, MAX_QUANTITY * 1e3, allow_zero=True)
        _require_positive("usd", self.usd, MAX_OPEN_INTEREST_USD, allow_zero=True)
        _require_positive("mark_price", self.mark_price, MAX_PRICE_USD)
        _require_timestamp(self.timestamp_ms, self.received_ms)


@dataclass(frozen=True, slots=True, eq=False)
class MarketHistory:
    """Past open interest and 5-minute candles of one market, oldest first, for the heatmap
    backfill. Arrays share one length; ``open_interest_coins[i]`` is the open interest read at
    ``timestamps_ms[i]`` and ``low/high/close`` are the prices of the candle that closes then
    (``exporter.collectors.history.align``).
    """

    exchange: str
    symbol: str
    coin: str
    timestamps_ms: npt.NDArray[np.int64]
    open_interest_coins: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        _require_text("exchange", self.exchange)
        _require_text("symbol", self.symbol)
        _require_text("coin", self.coin)
        arrays = (self.open_interest_coins, self.low, self.high, self.close)
        n = self.timestamps_ms.shape[0]
        if self.timestamps_ms.ndim != 1 or any(a.shape != (n,) for a in arrays):
            raise InvalidEventError(Reason.MALFORMED, "history arrays differ in shape")
        if n and np.any(np.diff(self.timestamps_ms) <= 0):
            raise InvalidEventError(Reason.BAD_TIMESTAMP, "history timestamps not ascending")
        if not all(np.all(np.isfinite(a)) for a in arrays):
            raise InvalidEventError(Reason.NOT_FINITE, "history holds NaN or infinity")
        if np.any(self.open_interest_coins < 0) or np.any(self.low <= 0):
            raise InvalidEventError(Reason.NOT_POSITIVE, "history holds a negative value")
        if np.any(self.low > self.high) or np.any(self.high > MAX_PRICE_USD):
            raise InvalidEventError(Reason.OUT_OF_RANGE, "history low above high or absurd")

    def __len__(self) -> int:
        return int(self.timestamps_ms.shape[0])


# A funding rate past this per interval is a parsing or feed error: venues cap theirs at a few %.
MAX_FUNDING_RATE: Final = 0.5
# Funding intervals run from 1 h (Kraken, dYdX, Hyperliquid) to 8 h; a week is no genuine one.
MAX_FUNDING_INTERVAL_S: Final = 7 * 86_400.0
# How far ahead a next funding time may lie (a week: past the longest interval).
MAX_FUNDING_AHEAD_MS: Final = 7 * 86_400_000


def _require_rate(name: str, value: object) -> None:
    if value is None:
        return
    if abs(_require_finite(name, value)) > MAX_FUNDING_RATE:
        raise InvalidEventError(Reason.OUT_OF_RANGE, f"{name}={value!r} beyond ±{MAX_FUNDING_RATE}")


@dataclass(frozen=True, slots=True)
class MarketContext:
    """Funding and index price of one market, read with its open interest. None: the venue
    does not publish that figure (or not in the call the poll makes).

    ``funding_rate`` is the rate of the current interval, paid at ``next_funding_ms`` (positive:
    longs pay shorts), a fraction per interval of ``funding_interval_s``;
    ``predicted_funding_rate`` the venue's estimate for the interval after.
    """

    exchange: str
    symbol: str
    coin: str
    index_price: float | None
    funding_rate: float | None
    predicted_funding_rate: float | None
    next_funding_ms: int | None
    funding_interval_s: float | None
    timestamp_ms: int
    received_ms: int

    def __post_init__(self) -> None:
        _require_text("exchange", self.exchange)
        _require_text("symbol", self.symbol)
        _require_text("coin", self.coin)
        if self.index_price is not None:
            _require_positive("index_price", self.index_price, MAX_PRICE_USD)
        _require_rate("funding_rate", self.funding_rate)
        _require_rate("predicted_funding_rate", self.predicted_funding_rate)
        if self.next_funding_ms is not None:
            _require_timestamp(self.next_funding_ms, self.received_ms + MAX_FUNDING_AHEAD_MS)
        if self.funding_interval_s is not None:
            _require_positive("funding_interval_s", self.funding_interval_s, MAX_FUNDING_INTERVAL_S)
        _require_timestamp(self.timestamp_ms, self.received_ms)


PositioningSource = Literal["accounts", "top_accounts", "top_positions"]
POSITIONING_SOURCES: Final[tuple[PositioningSource, ...]] = get_args(PositioningSource)
# A long/short ratio past this is a feed error (one short account per million long ones).
MAX_LONG_SHORT_RATIO: Final = 1e6


@dataclass(frozen=True, slots=True)
class LongShortRatio:
    """A venue's long/short ratio of one market over ``period`` ending at ``timestamp_ms``.

    ``source``: ``accounts`` (all accounts with a position: long ones / short ones),
    ``top_accounts`` (the same among the venue's top traders, as it defines them: Binance's top
    20 % by margin, OKX's top 5 % by position value) or ``top_positions`` (top traders' long
    position size / short position size).
    """

    exchange: str
    symbol: str
    coin: str
    source: PositioningSource
    period: str  # the venue's statistics period, e.g. "5m"
    ratio: float
    timestamp_ms: int
    received_ms: int

    def __post_init__(self) -> None:
        _require_text("exchange", self.exchange)
        _require_text("symbol", self.symbol)
        _require_text("coin", self.coin)
        _require_text("period", self.period)
        if self.source not in POSITIONING_SOURCES:
            raise InvalidEventError(Reason.WRONG_TYPE, f"source={self.source!r}")
        _require_positive("ratio", self.ratio, MAX_LONG_SHORT_RATIO)
        _require_timestamp(self.timestamp_ms, self.received_ms)
