"""A seeded, synchronous market simulation that keeps the TRUE open positions.

The fake exchange and ``--demo`` mode drive it; a liquidation-heatmap model is scored against it.
It is pure numpy: no I/O except reading the packaged candle CSV once, and no clock of its own
(simulated time advances only through :meth:`MarketSimulation.step`).

Price path
    ``BTC`` follows the real Binance BTCUSDT perpetual 5-minute candles in
    ``data/binance_btcusdt_5m_price_oi_2026-06.csv``, interpolated to one knot per second: each
    candle visits open (second 0) -> first extreme -> second extreme -> close (second 299), with
    the extremes at seeded random seconds and the low first with probability 0.7 on an up candle
    (0.3 on a down candle). Small per-second noise (``PATH_NOISE_OF_RANGE`` of the candle's range)
    is added between knots and the result is clipped to [low, high], so each candle's real high
    and low are reached exactly and never exceeded. Between knots the path is linear, so
    fractional steps see an interpolated mark price.

    Other coins are derived (there is no alt data in the package): with ``b = log BTC(t) - log
    BTC(start)``, ``log P(t) = log base + beta * b + idio(t)`` where ``idio`` is a seeded
    per-second Gaussian random walk. ``base`` (price at the simulation start), ``beta`` and the
    idiosyncratic volatility are in :data:`COIN_PROFILES` (ETH ~2900, beta 1.2; SOL ~180, beta 1.4);
    they are plausible assumptions, not fitted.

    Past the last row the data loops to row 0, every price multiplied by
    ``last close / first open`` (compounded per loop) so the path stays continuous.

Open interest
    BTC's USD open interest follows the CSV, linearly interpolated between the 5-minute points
    (the last row interpolates towards row 0, so looping is continuous). Other coins use BTC's USD
    OI times ``oi_factor`` (ETH 0.6, SOL 0.15; assumptions). A coin's OI is split across venues by
    the fixed shares in :data:`VENUE_SHARES`. Every venue shows the same mark price.

True positions
    Per coin and side the simulation holds explicit isolated-margin positions in numpy arrays
    (liquidation price, size in coins, leverage, expiry time). They stand for the liquidatable
    part of the book: their size in coins per side is kept at most
    ``LIQUIDATABLE_SHARE * volume_scale`` of the coin's open interest in coins (the bound the tests
    check) and refilled towards it after every sub-step. Because each contract has a long and a
    short holder, a rise in OI opens both sides; a fall in OI closes every position on a side by
    the same fraction (proportional close). Positions also close after a seeded exponential
    holding time (mean ``MEAN_HOLDING_SECONDS``), and liquidated or closed positions are refilled
    at the current price, so the book turns over and stays bounded.

    New positions draw their leverage from a mix drawn once per simulation from a seeded Dirichlet
    over :data:`LEVERAGES` (see :meth:`MarketSimulation.leverage_mix`), and their USD size from a
    log-normal (median ``POSITION_USD_MEDIAN``, sigma ``POSITION_USD_SIGMA``). Liquidation price:
    long ``EP * (1 - 1/L + MMR)``, short ``EP * (1 + 1/L - MMR)`` with :data:`MMR_BY_LEVERAGE`.
    At construction the book is warm-started: entry prices spread around the start price as if
    the positions had been opened over their (exponential) ages, keeping only those whose
    liquidation price is still on the safe side of the start price.

Liquidations
    A position is liquidated at the first sampled second at which the path touches its
    liquidation price; it is removed and reported as one or more :class:`SimLiquidation` orders at
    that price (a position above ``ORDER_SPLIT_USD`` is split into ``ceil(usd / ORDER_SPLIT_USD)``
    orders with random exponential weights). Each order goes to a venue drawn by
    :data:`VENUE_SHARES`.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DATA_PACKAGE: Final = "exporter.fakeexchange"
DATA_FILE: Final = "data/binance_btcusdt_5m_price_oi_2026-06.csv"
CANDLE_SECONDS: Final = 300
# Paths are generated in chunks of this many candles (one simulated hour); the chunk is the unit
# of lazy generation and of the per-chunk path RNG, so the path does not depend on step sizes.
CHUNK_CANDLES: Final = 12
# Long steps are cut into sub-steps of at most this many seconds so the book is refilled (and the
# OI bound re-applied) at least once a simulated minute whatever the caller's step size.
MAX_SUBSTEP_SECONDS: Final = 60.0
# Per-second noise added between path knots, as a fraction of the candle's high-low range.
PATH_NOISE_OF_RANGE: Final = 0.05
# Probability that an up candle (close >= open) reaches its low before its high.
LOW_FIRST_IF_UP: Final = 0.7

LEVERAGES: Final[tuple[int, ...]] = (2, 3, 5, 10, 20, 25, 50, 75, 100, 125)
# Maintenance margin rate per leverage tier: the rate of the Binance BTCUSDT USD-M bracket whose
# maximum leverage is L (Binance announcement "Updates to Leverage and Margin Tiers", 2021-03-18:
# 125x 0.40 %, 100x 0.50 %, 50x 1.00 %, 20x 2.50 %, 10x 5.00 %, 5x 10.0 %, 3x 15.0 %, 2x 25.0 %;
# the 75x 0.65 % and 25x 2.00 % brackets come from Binance's later BTCUSDT table). Exchanges key
# MMR by notional, not by chosen leverage; keying it by leverage is the tier convention a
# heatmap model uses, and this table is the ground truth such a model is scored against.
MMR_BY_LEVERAGE: Final[Mapping[int, float]] = {
    2: 0.25,
    3: 0.15,
    5: 0.10,
    10: 0.05,
    20: 0.025,
    25: 0.02,
    50: 0.01,
    75: 0.0065,
    100: 0.005,
    125: 0.004,
}
# Prior mean of the leverage mix (an assumption: most retail notional at 10x-25x) and the
# Dirichlet concentration; alpha = concentration * prior. 30 keeps each seed's mix clearly
# different (a weight's std is 35-80 % of its mean) while the hourly liquidation volume of seeds
# 0-4 stays within a factor of 2.5 of each other.
LEVERAGE_PRIOR: Final[tuple[float, ...]] = (
    0.05,
    0.05,
    0.10,
    0.20,
    0.16,
    0.12,
    0.12,
    0.06,
    0.09,
    0.05,
)
LEVERAGE_CONCENTRATION: Final = 30.0

# Share of each coin's open interest held on each venue, relative to the others simulated (the
# default three sum to 1; the rest roughly their BTC perpetual open interest against those; an
# assumption, fixed so that venue splits are predictable in tests).
VENUE_SHARES: Final[Mapping[str, float]] = {
    "binance": 0.45,
    "bybit": 0.30,
    "okx": 0.25,
    "binance_coinm": 0.06,
    "bybit_inverse": 0.04,
    "gate": 0.15,
    "htx": 0.05,
    "bitget": 0.20,
    "deribit": 0.04,
    "dydx": 0.02,
    "kraken": 0.02,
    "bitfinex": 0.02,
    "bitmex": 0.02,
}


# --- Market context: funding, index and crowd positioning for the demo's gauges ------------------
# Shaped like the venues' (funding = premium + clamp(interest - premium), Binance's formula; the
# crowd fading moves), driven by the path's returns; not calibrated against venue data.
PREMIUM_PER_RETURN: Final = 0.1  # mark over index, per unit of the coin's 1 h log-return
# The interval's average premium, which funding pays, per unit of the 8 h log-return: a trend
# keeps the perpetual rich (or cheap) for hours.
AVERAGE_PREMIUM_PER_RETURN: Final = 0.02
MAX_PREMIUM: Final = 0.003
INTEREST_PER_INTERVAL: Final = 0.0001  # the venues' 0.01 % per 8 h
FUNDING_CLAMP: Final = 0.0005
CROWD_PER_RETURN: Final = 8.0  # ln(long/short accounts) per unit of 24 h log-return, negated
FUNDING_HOURS: Final[Mapping[str, int]] = {"dydx": 1, "kraken": 1}
"""Funding interval by venue (8 h elsewhere; SOL on Binance 4 h, as some of its markets are)."""


@dataclass(frozen=True)
class CoinProfile:
    """How a coin's path and OI are derived from the BTC data.

    ``base_price`` is the USD price at the simulation start (``None``: the real BTC price);
    ``beta`` multiplies BTC log-returns; ``idio_vol_5m`` is the std of the coin's own log-return
    over 5 minutes; ``oi_factor`` is its USD open interest relative to BTC's; ``size_factor``
    scales its position-size distribution relative to BTC's.
    """

    base_price: float | None
    beta: float
    idio_vol_5m: float
    oi_factor: float
    size_factor: float


COIN_PROFILES: Final[Mapping[str, CoinProfile]] = {
    "BTC": CoinProfile(None, 1.0, 0.0, 1.0, 1.0),
    "ETH": CoinProfile(2900.0, 1.2, 0.0015, 0.6, 0.7),
    "SOL": CoinProfile(180.0, 1.4, 0.0025, 0.15, 0.35),
}

# --- Volume calibration -----------------------------------------------------------------------
# Target: tests/data/btc_liquidations_1h_usd_2025-11_2026-05.csv (copy of
# /work/shared/data/btc_liquidations_1h_usd_2025-11_2026-05.csv; 4315 hourly rows of BTC
# liquidations summed over all exchanges; read only to derive these constants, never at run time).
# Statistics of long_usd + short_usd per hour: median 519,532; p10 31,433; p90 5.52 M;
# mean 2.36 M. Median long share of the hourly total 0.47.
REAL_MEDIAN_HOURLY_USD: Final = 519_532.0
# Fraction of OI (per side) held by the simulated liquidatable positions. Tuned by hand so that
# the BTC hourly total at default settings brackets REAL_MEDIAN_HOURLY_USD (volume is roughly
# proportional to it): seeds 0-4 from row 0 at step(60) give hourly medians of 0.26-0.64 M USD
# over the whole 15-day file and 0.50-1.01 M USD over its first 7 days. The simulation has more
# quiet hours than the real data (no position's liquidation price is nearer than 0.4 % to its
# entry, so a calm hour can pass with none): p10 is ~0 vs 31 k real, p90 2.9-5.2 M vs 5.5 M.
# tests/test_simulation.py checks the median stays within a factor of 3 of the real one.
LIQUIDATABLE_SHARE: Final = 0.005
# Position sizes in USD: log-normal with this median and sigma (an assumption; gives orders mostly
# between 100 USD and 1 M USD with a heavy tail: p5 ~ 130, p95 ~ 68 k, p99.9 ~ 1.1 M).
POSITION_USD_MEDIAN: Final = 3000.0
POSITION_USD_SIGMA: Final = 1.9
# No single position may exceed this fraction of its side's bound (keeps small books refillable).
MAX_POSITION_FRACTION: Final = 0.05
# A liquidated position above this is reported as several orders (as engines fill big ones).
ORDER_SPLIT_USD: Final = 500_000.0
# Mean holding time of a position before it is closed voluntarily.
MEAN_HOLDING_SECONDS: Final = 8 * 3600.0
SIDES: Final = ("long", "short")


@dataclass(frozen=True)
class SimLiquidation:
    """One liquidation order: ``side`` is the liquidated POSITION's side ("long" | "short").

    ``price`` is the USD liquidation price, ``coins`` the size in coins, ``usd = coins * price``,
    ``ts_ms`` the simulated Unix time in milliseconds at which the path touched the price.
    """

    venue: str
    coin: str
    side: str
    price: float
    coins: float
    usd: float
    ts_ms: int


@dataclass(frozen=True)
class MarketState:
    """Mark price (USD) and open interest (coins and USD) of one coin on one venue at ``ts_ms``,
    with its market context: index price, funding rates (per interval of ``funding_hours``)
    and long/short ratios by kind."""

    venue: str
    coin: str
    mark_price: float
    open_interest_coins: float
    open_interest_usd: float
    ts_ms: int
    index_price: float
    funding_rate: float
    predicted_funding_rate: float
    funding_hours: int
    long_short: Mapping[str, float]


def _funding(premium: float, hours: int) -> float:
    """Premium plus the interest component clamped about it, per interval of ``hours``."""
    interest = INTEREST_PER_INTERVAL * hours / 8
    return premium + min(max(interest - premium, -FUNDING_CLAMP), FUNDING_CLAMP)


@dataclass(frozen=True)
class _Candles:
    """The packaged CSV as read-only arrays, one element per 5-minute row (float64)."""

    ts_ms: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    oi_usd: FloatArray


@functools.cache
def _load_candles() -> _Candles:
    """Read the packaged candle CSV once per process; the arrays are made read-only."""
    text = resources.files(DATA_PACKAGE).joinpath(DATA_FILE).read_text(encoding="utf-8")
    table = np.loadtxt(
        io.StringIO(text),
        delimiter=",",
        skiprows=1,
        usecols=(0, 2, 3, 4, 5, 6),
        dtype=np.float64,
    )
    cols = [np.ascontiguousarray(table[:, i]) for i in range(6)]
    for col in cols:
        col.flags.writeable = False
    ts = cols[0].astype(np.int64)
    ts.flags.writeable = False
    return _Candles(ts, cols[1], cols[2], cols[3], cols[4], cols[5])


class _Book:
    """Open positions of one coin and side in growable arrays (the first ``n`` entries are live).

    ``lp[i]``: liquidation price, USD; ``qty[i]``: size, coins; ``lev[i]``: index into LEVERAGES;
    ``exp[i]``: voluntary close time, simulated seconds. Cached scalars (``total`` coins, the most
    exposed liquidation price ``edge``, the earliest ``next_exp``) let a quiet step skip all
    per-position work.
    """

    __slots__ = ("edge", "exp", "is_long", "lev", "lp", "n", "next_exp", "qty", "total")

    def __init__(self, *, is_long: bool) -> None:
        self.is_long = is_long
        self.n = 0
        self.lp: FloatArray = np.empty(1024)
        self.qty: FloatArray = np.empty(1024)
        self.lev: IntArray = np.empty(1024, dtype=np.int64)
        self.exp: FloatArray = np.empty(1024)
        self.total = 0.0
        self.edge = -math.inf if is_long else math.inf
        self.next_exp = math.inf

    def add(self, lp: FloatArray, qty: FloatArray, lev: IntArray, exp: FloatArray) -> None:
        """Append positions (amortised O(k))."""
        k = lp.size
        if k == 0:
            return
        need = self.n + k
        if need > self.lp.size:
            cap = max(need, 2 * self.lp.size)
            for name in ("lp", "qty", "lev", "exp"):
                old = getattr(self, name)
                new = np.empty(cap, dtype=old.dtype)
                new[: self.n] = old[: self.n]
                setattr(self, name, new)
        sl = slice(self.n, need)
        self.lp[sl] = lp
        self.qty[sl] = qty
        self.lev[sl] = lev
        self.exp[sl] = exp
        self.n = need
        self.total += float(qty.sum())
        if self.is_long:
            self.edge = max(self.edge, float(lp.max()))
        else:
            self.edge = min(self.edge, float(lp.min()))
        self.next_exp = min(self.next_exp, float(exp.min()))

    def keep(self, mask: npt.NDArray[np.bool_]) -> None:
        """Drop every position where ``mask`` is False and refresh the cached scalars."""
        m = int(mask.sum())
        for name in ("lp", "qty", "lev", "exp"):
            arr = getattr(self, name)
            arr[:m] = arr[: self.n][mask]
        self.n = m
        self.refresh()

    def refresh(self) -> None:
        """Recompute the cached scalars from the live arrays (O(n))."""
        n = self.n
        if n == 0:
            self.total = 0.0
            self.edge = -math.inf if self.is_long else math.inf
            self.next_exp = math.inf
            return
        self.total = float(self.qty[:n].sum())
        self.edge = float(self.lp[:n].max()) if self.is_long else float(self.lp[:n].min())
        self.next_exp = float(self.exp[:n].min())


class _SizeQueue:
    """Pre-drawn position sizes (USD) opened strictly in order.

    A size is opened only when the side's free room reaches it, so big positions wait instead of
    being truncated: the opened sizes keep the log-normal's heavy tail however small each step's
    deficit is.
    """

    __slots__ = ("buf", "cs", "median", "pos", "rng")

    def __init__(self, rng: np.random.Generator, median: float) -> None:
        self.rng = rng
        self.median = median
        self.buf: FloatArray = np.empty(0)
        self.cs: FloatArray = np.empty(0)
        self.pos = 0

    def _draw(self) -> None:
        self.buf = self.rng.lognormal(math.log(self.median), POSITION_USD_SIGMA, 2048)
        self.cs = np.cumsum(self.buf)
        self.pos = 0

    def head(self, cap: float) -> float:
        """Size of the next position (clipped to ``cap``, which may shrink with OI)."""
        if self.pos >= self.buf.size:
            self._draw()
        h = float(self.buf[self.pos])
        if h > cap:
            self.cs[self.pos :] -= h - cap
            self.buf[self.pos] = cap
            h = cap
        return h

    def take(self, budget: float, cap: float) -> FloatArray:
        """Sizes (USD, each <= cap) of the next positions whose running sum fits in ``budget``."""
        parts: list[FloatArray] = []
        while budget >= self.head(cap):
            base = float(self.cs[self.pos - 1]) if self.pos else 0.0
            end = int(np.searchsorted(self.cs, base + budget, side="right"))
            sizes = np.minimum(self.buf[self.pos : end], cap)
            parts.append(sizes)
            budget -= float(sizes.sum())
            self.pos = end
        if not parts:
            return np.empty(0)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


class MarketSimulation:
    """Seeded market: per-second prices, OI per venue, true positions and their liquidations.

    ``seed`` fixes everything (path noise, leverage mix, positions, order splits and venues) for a
    given sequence of ``step`` calls. ``start_row`` selects the CSV row whose timestamp is the
    start time. ``volume_scale`` multiplies the liquidatable share of OI (hence liquidation
    volume) without changing prices or reported OI; ``LIQUIDATABLE_SHARE * volume_scale`` must
    not exceed 1.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        coins: Sequence[str] = ("BTC", "ETH", "SOL"),
        venues: Sequence[str] = ("binance", "bybit", "okx"),
        start_row: int = 0,
        volume_scale: float = 1.0,
    ) -> None:
        data = _load_candles()
        self._data = data
        self._rows = data.open.size
        if not coins or len(set(coins)) != len(coins):
            raise ValueError(f"coins must be non-empty and distinct, got {coins!r}")
        unknown = [c for c in coins if c not in COIN_PROFILES]
        if unknown:
            raise ValueError(f"unknown coins {unknown!r}; known: {sorted(COIN_PROFILES)}")
        if not venues or len(set(venues)) != len(venues):
            raise ValueError(f"venues must be non-empty and distinct, got {venues!r}")
        bad = [v for v in venues if v not in VENUE_SHARES]
        if bad:
            raise ValueError(f"unknown venues {bad!r}; known: {sorted(VENUE_SHARES)}")
        if not 0 <= start_row < self._rows:
            raise ValueError(f"start_row must be in [0, {self._rows}), got {start_row}")
        if not (volume_scale > 0 and LIQUIDATABLE_SHARE * volume_scale <= 1.0):
            raise ValueError(
                f"volume_scale must be in (0, {1 / LIQUIDATABLE_SHARE:g}], got {volume_scale}"
            )
        self._seed = seed
        self._coins = tuple(coins)
        self._coin_index = {c: i for i, c in enumerate(self._coins)}
        self._profiles = [COIN_PROFILES[c] for c in self._coins]
        self._venues = tuple(venues)
        shares = np.array([VENUE_SHARES[v] for v in self._venues])
        self._venue_shares = shares / shares.sum()
        self._venue_cum = np.cumsum(self._venue_shares)
        self._share = LIQUIDATABLE_SHARE * volume_scale
        # Loop re-basing: loop k shows the data's prices times factor ** k (continuous seam).
        self._loop_factor = float(data.close[-1] / data.open[0])
        btc_vol_s = float(np.std(np.diff(np.log(data.close)))) / math.sqrt(CANDLE_SECONDS)
        self._vol_s = [
            math.hypot(p.beta * btc_vol_s, p.idio_vol_5m / math.sqrt(CANDLE_SECONDS))
            for p in self._profiles
        ]

        mix_rng = np.random.default_rng([seed, 0])
        alpha = LEVERAGE_CONCENTRATION * np.asarray(LEVERAGE_PRIOR)
        self._mix: FloatArray = mix_rng.dirichlet(alpha)
        self._mix_cum = np.cumsum(self._mix)
        self._mix_cum[-1] = 1.0
        lev = np.asarray(LEVERAGES, dtype=np.float64)
        mmr = np.asarray([MMR_BY_LEVERAGE[x] for x in LEVERAGES])
        # Isolated margin, exactly: liquidated when margin plus profit equals MMR x LP.
        self._lp_factor = {
            "long": (1.0 - 1.0 / lev) / (1.0 - mmr),
            "short": (1.0 + 1.0 / lev) / (1.0 + mmr),
        }

        # Positions and emitted orders use one sequential stream: deterministic per step sequence.
        self._rng = np.random.default_rng([seed, 2])
        self._books = {(c, s): _Book(is_long=s == "long") for c in self._coins for s in SIDES}
        self._queues = {
            (c, s): _SizeQueue(self._rng, POSITION_USD_MEDIAN * COIN_PROFILES[c].size_factor)
            for c in self._coins
            for s in SIDES
        }

        self._t = float(start_row * CANDLE_SECONDS)  # simulated seconds since row 0, loop 0
        self._btc_ref_log = math.log(float(data.open[start_row]))
        self._idio = np.zeros(len(self._coins))  # random-walk state carried between chunks
        self._tape_start = 0
        self._tape: FloatArray = np.empty((len(self._coins), 0))
        self._load_chunk(start_row // CHUNK_CANDLES)
        self._warm_start()

    # --- public API ---------------------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        """Simulated Unix time in ms; starts at the timestamp of ``start_row``."""
        return int(self._data.ts_ms[0]) + round(self._t * 1000.0)

    @property
    def coins(self) -> tuple[str, ...]:
        """The simulated coins, in constructor order."""
        return self._coins

    @property
    def venues(self) -> tuple[str, ...]:
        """The simulated venues, in constructor order."""
        return self._venues

    def step(self, seconds: float) -> list[SimLiquidation]:
        """Advance simulated time by ``seconds`` (> 0, fractions allowed); return the liquidations.

        Long steps run as sub-steps of at most MAX_SUBSTEP_SECONDS that never straddle a path
        chunk; the orders come back sorted by ``ts_ms``.
        """
        if not (seconds > 0 and math.isfinite(seconds)):
            raise ValueError(f"seconds must be a positive finite number, got {seconds!r}")
        out: list[SimLiquidation] = []
        end = self._t + seconds
        while self._t < end:
            chunk_end = float(self._tape_start + self._tape.shape[1] - 1)
            t1 = min(end, self._t + MAX_SUBSTEP_SECONDS, chunk_end)
            self._advance(self._t, t1, out)
            self._t = t1
            if t1 >= chunk_end:
                self._load_chunk(round(chunk_end) // (CANDLE_SECONDS * CHUNK_CANDLES))
        out.sort(key=lambda liq: liq.ts_ms)
        return out

    def market_states(self) -> list[MarketState]:
        """Current mark price and OI of every (venue, coin), venues outermost."""
        prices = self._price_at(self._t)
        oi = self._oi_usd(self._t)
        ts = self.now_ms
        states = []
        for n, (v, share) in enumerate(zip(self._venues, self._venue_shares.tolist(), strict=True)):
            skew = 1 + 0.05 * n  # venues' premiums differ a little
            for i, c in enumerate(self._coins):
                usd = oi[i] * share
                price = float(prices[i])
                premium = self._premium(i, CANDLE_SECONDS * 12) * skew
                average = self._premium(i, CANDLE_SECONDS * 96, AVERAGE_PREMIUM_PER_RETURN)
                hours = 4 if (v, c) == ("binance", "SOL") else FUNDING_HOURS.get(v, 8)
                crowd = math.exp(-CROWD_PER_RETURN * self._return(i, CANDLE_SECONDS * 288))
                top = math.exp(CROWD_PER_RETURN / 2 * self._return(i, CANDLE_SECONDS * 48))
                states.append(
                    MarketState(
                        v,
                        c,
                        price,
                        usd / price,
                        usd,
                        ts,
                        index_price=price / (1 + premium),
                        funding_rate=_funding(average * skew, hours),
                        predicted_funding_rate=_funding(
                            self._premium(i, CANDLE_SECONDS * 48, AVERAGE_PREMIUM_PER_RETURN),
                            hours,
                        ),
                        funding_hours=hours,
                        long_short={
                            "accounts": 1.6 * crowd * (1 + 0.04 * n),
                            "top_accounts": 1.2 * math.sqrt(crowd),
                            "top_positions": top,
                        },
                    )
                )
        return states

    def _return(self, coin: int, seconds: int) -> float:
        """The coin's log-return over the last ``seconds`` (whole candles of the data)."""
        g = math.floor(self._t / CANDLE_SECONDS)
        rows = seconds // CANDLE_SECONDS
        close = self._data.close
        now, then = close[g % self._rows], close[(g - rows) % self._rows]
        return self._profiles[coin].beta * math.log(float(now) / float(then))

    def _premium(self, coin: int, seconds: int, per_return: float = PREMIUM_PER_RETURN) -> float:
        premium = per_return * self._return(coin, seconds)
        return min(max(premium, -MAX_PREMIUM), MAX_PREMIUM)

    def leverage_mix(self) -> dict[int, float]:
        """The drawn mix of NEW positions: leverage -> probability (sums to 1).

        Sizes are drawn independently of leverage, so this is also each leverage's expected share
        of newly opened notional.

        The live book's mix differs: high-leverage positions are liquidated sooner.
        """
        return dict(zip(LEVERAGES, self._mix.tolist(), strict=True))

    def true_positions(self, coin: str, side: str) -> tuple[FloatArray, FloatArray]:
        """``(liquidation_price[i], usd[i])`` of every open position of ``coin`` on ``side``.

        Both float64 arrays of shape (n,), copies. ``usd`` is the size in coins valued at the
        current mark price, i.e. the position's contribution to open interest now.
        """
        book = self._book(coin, side)
        price = float(self._price_at(self._t)[self._coin_index[coin]])
        return book.lp[: book.n].copy(), book.qty[: book.n] * price

    def true_position_leverages(self, coin: str, side: str) -> npt.NDArray[np.int64]:
        """Leverage of every open position, aligned with :meth:`true_positions` (int64, (n,))."""
        book = self._book(coin, side)
        return np.asarray(LEVERAGES, dtype=np.int64)[book.lev[: book.n]]

    def candle(self, coin: str) -> tuple[float, float, float, float]:
        """``(open, high, low, close)`` in USD of the current 5-minute candle up to now."""
        i = self._coin_index[coin]
        start = math.floor(self._t / CANDLE_SECONDS) * CANDLE_SECONDS
        a = start - self._tape_start
        b = math.floor(self._t) - self._tape_start
        seen = self._tape[i, a : b + 1]
        close = float(self._price_at(self._t)[i])
        return (
            float(seen[0]),
            max(float(seen.max()), close),
            min(float(seen.min()), close),
            close,
        )

    # --- internals ----------------------------------------------------------------------------

    def _book(self, coin: str, side: str) -> _Book:
        if side not in SIDES:
            raise ValueError(f"side must be 'long' or 'short', got {side!r}")
        if coin not in self._coin_index:
            raise ValueError(f"coin {coin!r} is not simulated; coins: {self._coins}")
        return self._books[coin, side]

    def _load_chunk(self, chunk: int) -> None:
        """Generate the per-second path of every coin for path chunk ``chunk``.

        The tape has shape (n_coins, CHUNK_CANDLES * 300 + 1): USD prices at the chunk's whole
        seconds, the last one being the next chunk's first (so interpolation never runs out).
        """
        d = self._data
        n = CHUNK_CANDLES
        g = chunk * n + np.arange(n + 1)  # global candle index (the extra one: next open)
        rows = g % self._rows
        factor = self._loop_factor ** (g // self._rows).astype(np.float64)
        o = d.open[rows] * factor
        h = d.high[rows[:n]] * factor[:n]
        lo = d.low[rows[:n]] * factor[:n]
        c = d.close[rows[:n]] * factor[:n]
        rng = np.random.default_rng([self._seed, 1, chunk])
        t_a = rng.integers(1, CANDLE_SECONDS - 1, n)
        t_b = rng.integers(1, CANDLE_SECONDS - 2, n)
        t_b += t_b >= t_a
        first, second = np.minimum(t_a, t_b), np.maximum(t_a, t_b)
        p_low_first = np.where(c >= o[:n], LOW_FIRST_IF_UP, 1.0 - LOW_FIRST_IF_UP)
        low_first = rng.random(n) < p_low_first
        x1 = np.where(low_first, lo, h)
        x2 = np.where(low_first, h, lo)
        secs = np.arange(CANDLE_SECONDS, dtype=np.float64)
        path = np.empty((n, CANDLE_SECONDS))
        for k in range(n):  # once per candle per simulated hour: not a hot loop
            path[k] = np.interp(
                secs,
                [0.0, float(first[k]), float(second[k]), CANDLE_SECONDS - 1.0],
                [o[k], x1[k], x2[k], c[k]],
            )
        noise = rng.standard_normal((n, CANDLE_SECONDS)) * (PATH_NOISE_OF_RANGE * (h - lo))[:, None]
        knots = np.zeros((n, CANDLE_SECONDS), dtype=bool)
        knots[:, 0] = knots[:, -1] = True
        knots[np.arange(n), first] = knots[np.arange(n), second] = True
        noise[knots] = 0.0
        path = np.clip(path + noise, lo[:, None], h[:, None])
        btc = np.append(path.ravel(), o[n])

        tape = np.empty((len(self._coins), btc.size))
        log_btc = np.log(btc) - self._btc_ref_log
        for i, (coin, prof) in enumerate(zip(self._coins, self._profiles, strict=True)):
            if prof.base_price is None:
                tape[i] = btc
                continue
            stream = sorted(COIN_PROFILES).index(coin)  # independent of which coins are asked
            coin_rng = np.random.default_rng([self._seed, 3, chunk, stream])
            steps = coin_rng.standard_normal(btc.size - 1) * (
                prof.idio_vol_5m / math.sqrt(CANDLE_SECONDS)
            )
            idio = np.empty(btc.size)
            idio[0] = self._idio[i]
            np.cumsum(steps, out=idio[1:])
            idio[1:] += self._idio[i]
            self._idio[i] = idio[-1]
            tape[i] = prof.base_price * np.exp(prof.beta * log_btc + idio)
        self._tape = tape
        self._tape_start = chunk * n * CANDLE_SECONDS

    def _price_at(self, t: float) -> FloatArray:
        """Mark prices (USD, shape (n_coins,)) at simulated second ``t`` inside the tape."""
        x = t - self._tape_start
        j = min(math.floor(x), self._tape.shape[1] - 2)
        frac = x - j
        left: FloatArray = self._tape[:, j]
        right: FloatArray = self._tape[:, j + 1]
        if frac == 0.0:
            return left
        if frac == 1.0:
            return right
        mid: FloatArray = left + frac * (right - left)
        return mid

    def _oi_usd(self, t: float) -> list[float]:
        """Total USD open interest per coin at simulated second ``t`` (all venues)."""
        g = math.floor(t / CANDLE_SECONDS)
        row = g % self._rows
        frac = t / CANDLE_SECONDS - g
        a = float(self._data.oi_usd[row])
        b = float(self._data.oi_usd[(row + 1) % self._rows])
        btc = a + (b - a) * frac
        return [btc * p.oi_factor for p in self._profiles]

    def _open(
        self, book: _Book, sizes_usd: FloatArray, entry: FloatArray, t: float, side: str
    ) -> None:
        """Open positions of the given USD sizes (valued at ``entry``, per position)."""
        k = sizes_usd.size
        if k == 0:
            return
        lev = np.searchsorted(self._mix_cum, self._rng.random(k), side="right")
        np.minimum(lev, len(LEVERAGES) - 1, out=lev)
        lp = entry * self._lp_factor[side][lev]
        exp = t + self._rng.exponential(MEAN_HOLDING_SECONDS, k)
        book.add(lp, sizes_usd / entry, lev.astype(np.int64), exp)

    def _warm_start(self) -> None:
        """Fill every book to its bound with positions as if opened over their past lifetimes."""
        prices = self._price_at(self._t)
        oi = self._oi_usd(self._t)
        for i, coin in enumerate(self._coins):
            price = float(prices[i])
            bound_usd = self._share * oi[i]
            for side in SIDES:
                book, queue = self._books[coin, side], self._queues[coin, side]
                for _ in range(8):
                    room = bound_usd - book.total * price
                    sizes = queue.take(room, MAX_POSITION_FRACTION * bound_usd)
                    if sizes.size == 0:
                        break
                    age = self._rng.exponential(MEAN_HOLDING_SECONDS, sizes.size)
                    entry = price * np.exp(
                        self._vol_s[i] * np.sqrt(age) * self._rng.standard_normal(sizes.size)
                    )
                    before = book.n
                    self._open(book, sizes * entry / price, entry, self._t, side)
                    live = book.lp[: book.n] < price if book.is_long else book.lp[: book.n] > price
                    live[:before] = True
                    book.keep(live)
            # The residual (less than one head size) is opened by the first step.

    def _advance(self, t0: float, t1: float, out: list[SimLiquidation]) -> None:
        """One sub-step inside the current tape: liquidate, expire, then refill to the OI bound."""
        lo = math.floor(t0) + 1
        hi = math.ceil(t1) - 1
        end = self._price_at(t1)
        if hi >= lo:
            inner = self._tape[:, lo - self._tape_start : hi - self._tape_start + 1]
            samples = np.concatenate((inner, end[:, None]), axis=1)
            times = np.append(np.arange(lo, hi + 1, dtype=np.float64), t1)
            mins = samples.min(axis=1).tolist()
            maxs = samples.max(axis=1).tolist()
        else:
            samples = end[:, None]
            times = np.array([t1])
            mins = maxs = end.tolist()
        end_prices = end.tolist()
        oi = self._oi_usd(t1)
        for i, coin in enumerate(self._coins):
            price = end_prices[i]
            bound = self._share * oi[i] / price  # coins per side
            for side in SIDES:
                book = self._books[coin, side]
                hit = mins[i] <= book.edge if book.is_long else maxs[i] >= book.edge
                if hit or t1 >= book.next_exp:
                    self._remove(
                        i, book, side, path=samples[i], times=times, t1=t1, out=out, hit=hit
                    )
                if book.total > bound:  # OI fell: close every position by the same fraction
                    book.qty[: book.n] *= bound / book.total
                    book.refresh()
                    continue
                cap = MAX_POSITION_FRACTION * bound * price
                queue = self._queues[coin, side]
                room = (bound - book.total) * price
                if room >= queue.head(cap):
                    sizes = queue.take(room, cap)
                    self._open(book, sizes, np.full(sizes.size, price), t1, side)

    def _remove(
        self,
        i: int,
        book: _Book,
        side: str,
        *,
        path: FloatArray,
        times: FloatArray,
        t1: float,
        out: list[SimLiquidation],
        hit: bool,
    ) -> None:
        """Liquidate positions whose price the path touched, close expired ones, emit orders."""
        n = book.n
        lp = book.lp[:n]
        exp = book.exp[:n]
        keep = exp > t1
        if hit:
            crossed = np.flatnonzero(lp >= path.min() if book.is_long else lp <= path.max())
            if path.size == 1:
                first = np.zeros(crossed.size, dtype=np.int64)
            elif book.is_long:
                first = np.searchsorted(-np.minimum.accumulate(path), -lp[crossed], side="left")
            else:
                first = np.searchsorted(np.maximum.accumulate(path), lp[crossed], side="left")
            when = times[first]
            liq = when <= exp[crossed]  # a position closed voluntarily before the touch survives
            keep[crossed] = False
            self._emit(
                i,
                side,
                price=lp[crossed][liq],
                qty=book.qty[:n][crossed][liq],
                when=when[liq],
                out=out,
            )
        book.keep(keep)

    def _emit(
        self,
        i: int,
        side: str,
        *,
        price: FloatArray,
        qty: FloatArray,
        when: FloatArray,
        out: list[SimLiquidation],
    ) -> None:
        """Turn liquidated positions into orders: split big ones, assign venues by OI share."""
        if price.size == 0:
            return
        usd = price * qty
        parts = np.maximum(np.ceil(usd / ORDER_SPLIT_USD), 1.0).astype(np.int64)
        if int(parts.max()) > 1:
            owner = np.repeat(np.arange(price.size), parts)
            w = self._rng.exponential(1.0, owner.size)
            w /= np.bincount(owner, weights=w)[owner]
            price, qty, when = price[owner], qty[owner] * w, when[owner]
        venue = np.searchsorted(self._venue_cum, self._rng.random(price.size), side="right")
        np.minimum(venue, len(self._venues) - 1, out=venue)
        t0_ms = int(self._data.ts_ms[0])
        coin = self._coins[i]
        for v, p, q, t in zip(
            venue.tolist(), price.tolist(), qty.tolist(), when.tolist(), strict=True
        ):
            out.append(
                SimLiquidation(self._venues[v], coin, side, p, q, p * q, t0_ms + round(t * 1000.0))
            )
