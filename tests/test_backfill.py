"""The heatmap backfill: real ccxt.pro against the fake venues' history endpoints, the collector's
pages and budgets, and the backfill that runs beside the live poll: the poll does not wait for
it, and the heatmap still applies each market's past before its live readings."""

from __future__ import annotations

import math
import time
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import pytest

from exporter.collectors import history as paging
from exporter.collectors import make_collector as collector_for
from exporter.config import ExchangeConfig
from exporter.events import MarketHistory, OpenInterest, Reason
from exporter.fakeexchange import DEFAULT_MARKETS, FakeExchange
from exporter.heatmap.book import HeatmapBook
from exporter.venues import DEFAULT_VENUES
from tests.collector_harness import RecordingCore, eventually, fast_sleep, running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from exporter.collectors.collector import Collector
    from tests.conftest import FakeExchangeFactory

pytestmark = pytest.mark.integration

# The backfill's paging, budgets and failures, on the three venues whose history endpoints
# differ most (Binance, Bybit, OKX); the other venues with history have their own tests.
EXCHANGES = DEFAULT_VENUES
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
STEP_MS = 300_000
DAY_MS = 86_400_000
MARKETS = {m.symbol: m for m in DEFAULT_MARKETS}

OI_HISTORY_PATH = {
    "binance": "/futures/data/openInterestHist",
    "bybit": "/v5/market/open-interest",
    "okx": "/api/v5/rubik/stat/contracts/open-interest-history",
}
# Requests for 1600 rows (5.6 days): Binance 500 OI / 499 klines a page; Bybit 200 / 1000; OKX
# 100 / 300, its 4 newest candle pages within the latest 1440 candles (/market/candles).
PAGES_1600 = {
    "binance": {"/futures/data/openInterestHist": 4, "/fapi/v1/klines": 4},
    "bybit": {"/v5/market/open-interest": 8, "/v5/market/kline": 2},
    "okx": {
        "/api/v5/rubik/stat/contracts/open-interest-history": 16,
        "/api/v5/market/candles": 4,
        "/api/v5/market/history-candles": 2,
    },
}
# The same for the default backfill of 7 days (2016 rows) from the fake's packaged data.
PAGES_7_DAYS = {
    "binance": {"/futures/data/openInterestHist": 5, "/fapi/v1/klines": 5},
    "bybit": {"/v5/market/open-interest": 11, "/v5/market/kline": 3},
    "okx": {
        "/api/v5/rubik/stat/contracts/open-interest-history": 21,
        "/api/v5/market/candles": 4,
        "/api/v5/market/history-candles": 3,
    },
}


class HistoryCore(RecordingCore):
    """The real core, also keeping the histories and the order of what it was given."""

    def __init__(self) -> None:
        super().__init__(EXCHANGES)  # the second feed of an exchange (COIN-M) is not run here
        self.histories: list[MarketHistory] = []
        self.order: list[tuple[str, str]] = []

    def expect_history(self, exchange: str, symbol: str, coin: str) -> None:
        self.order.append(("expect", symbol))
        super().expect_history(exchange, symbol, coin)

    def record_history(self, history: MarketHistory) -> None:
        self.histories.append(history)
        self.order.append(("history", history.symbol))
        super().record_history(history)

    def end_history(self, exchange: str, symbol: str) -> None:
        self.order.append(("end", symbol))
        super().end_history(exchange, symbol)

    def record_open_interest(self, event: OpenInterest) -> None:
        self.order.append(("open_interest", event.symbol))
        super().record_open_interest(event)


def make_collector(
    fake: FakeExchange,
    core: RecordingCore,
    symbols: Sequence[str] = (BTC,),
    **options: Any,
) -> Collector:
    config = ExchangeConfig(
        name=fake.venue,
        symbols=tuple(symbols),
        rest_url=fake.rest_url,
        ws_url=fake.ws_url,
        poll_interval_seconds=1.0,
        positioning_interval_seconds=0.0,  # off: its requests would share the backfill's throttle
    )
    return collector_for(config, core, core.health, sleep=fast_sleep, **options)


class Started(Protocol):
    def __call__(self, venue: str) -> AbstractAsyncContextManager[FakeExchange]: ...


@pytest.fixture
def started(fake_exchange: FakeExchangeFactory) -> Started:
    """``async with started(venue) as fake``: a fake exchange, stopped at the test's end."""

    @asynccontextmanager
    async def start(venue: str) -> AsyncIterator[FakeExchange]:
        yield await fake_exchange(venue)

    return start


@asynccontextmanager
async def ccxt_client(collector: Collector) -> AsyncIterator[Any]:
    """The collector's ccxt instance, without ccxt's client-side throttle (a real-time wait of
    up to 220 ms a request that only slows the test; the collector's own pacing stays)."""
    exchange = cast("Any", collector.make_exchange())
    exchange.enableRateLimit = False
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()


def wire_history(symbol: str, rows: int, end_ms: int, seed: int = 7) -> dict[str, np.ndarray]:
    """``rows`` 5-minute rows ending at the candle open at ``end_ms``, at the market's wire
    precision (prices on the tick, open interest in thousandths), so every venue prints them
    exactly and what ccxt parses must equal them."""
    market = MARKETS[symbol]
    rng = np.random.default_rng(seed)
    last = end_ms // STEP_MS * STEP_MS
    ts = last - np.arange(rows - 1, -1, -1, dtype=np.int64) * STEP_MS
    close = market.mark_price * np.exp(np.cumsum(rng.normal(0.0, 0.002, rows)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    spread = np.abs(rng.normal(0.0, 0.001, rows)) * close
    decimals = market.tick_decimals
    return {
        "timestamps_ms": ts,
        "open_interest_coins": np.round(
            market.open_interest_coins * np.exp(np.cumsum(rng.normal(0.0, 0.001, rows))), 3
        ),
        "open": np.round(open_, decimals),
        "high": np.round(np.maximum(open_, close) + spread, decimals),
        "low": np.round(np.minimum(open_, close) - spread, decimals),
        "close": np.round(close, decimals),
    }


def assert_history_is(history: MarketHistory, served: dict[str, np.ndarray]) -> None:
    """Every reading but the first, each with the candle that closes at it: the one served a
    row earlier (the first reading's candle was not served)."""
    np.testing.assert_array_equal(history.timestamps_ms, served["timestamps_ms"][1:])
    np.testing.assert_array_equal(history.open_interest_coins, served["open_interest_coins"][1:])
    for column in ("low", "high", "close"):
        np.testing.assert_array_equal(getattr(history, column), served[column][:-1], err_msg=column)


def requests(fake: FakeExchange, paths: dict[str, int]) -> dict[str, int]:
    return {path: fake.rest_requests[path] for path in paths}


# --- fetch_history through ccxt -----------------------------------------------------------


@pytest.mark.parametrize("venue", EXCHANGES)
async def test_fetch_history_returns_what_the_fake_served(venue: str, started: Started) -> None:
    async with started(venue) as fake:
        now_ms = int(time.time() * 1000)
        served = wire_history(BTC, 1600, now_ms)
        fake.set_history(BTC, **served)
        collector = make_collector(fake, HistoryCore())
        async with ccxt_client(collector) as exchange:
            fake.rest_requests.clear()
            # From the second reading: its candle, the first served, lies before the window.
            history = await collector.make_backfill(exchange).fetch_history(
                BTC, int(served["timestamps_ms"][1]), now_ms
            )
    assert (history.exchange, history.symbol, history.coin) == (venue, BTC, "BTC")
    assert_history_is(history, served)  # no row lost at either end, coins on OKX too
    assert dict(fake.rest_requests) == PAGES_1600[venue]
    assert collector.health.snapshot().invalid == {}


@pytest.mark.parametrize("venue", EXCHANGES)
async def test_seven_days_of_default_history_in_the_documented_pages(
    venue: str, started: Started
) -> None:
    async with started(venue) as fake:
        fake.set_market_state(ETH, open_interest_coins=1_500_000.0, mark_price=3_100.0)
        served = fake.history(ETH)  # the default, fixed now: it ends at this candle
        collector = make_collector(fake, HistoryCore())
        async with ccxt_client(collector) as exchange:
            fake.rest_requests.clear()
            now_ms = int(time.time() * 1000)
            backfill = collector.make_backfill(exchange)
            history = await backfill.fetch_history(ETH, now_ms - 7 * DAY_MS, now_ms)
    assert len(history) == 2016
    assert dict(fake.rest_requests) == PAGES_7_DAYS[venue]
    assert history.timestamps_ms[-1] == served.ts_ms[-1] == now_ms // STEP_MS * STEP_MS
    # The packaged BTC path, scaled so that it ends at the market's current state; the newest
    # reading goes with the candle that closes at it, not the one still open.
    assert served.close[-1] == pytest.approx(3_100.0, rel=1e-6)
    assert history.close[-1] == pytest.approx(served.close[-2], rel=1e-6)
    assert history.open_interest_coins[-1] == pytest.approx(1_500_000.0, rel=1e-6)
    assert np.all(np.diff(history.timestamps_ms) == STEP_MS)


@pytest.mark.parametrize("case", [EXCHANGES[2]], ids=["okx"])
async def test_okx_history_is_in_coins_where_ccxt_says_contracts(
    case: str, started: Started
) -> None:
    async with started(case) as fake:
        now_ms = int(time.time() * 1000)
        served = wire_history(ETH, 50, now_ms)
        fake.set_history(ETH, **served)
        collector = make_collector(fake, HistoryCore(), (ETH,))
        async with ccxt_client(collector) as exchange:
            raw = await exchange.fetch_open_interest_history(ETH, "5m", None, 50)
            history = await collector.make_backfill(exchange).fetch_history(
                ETH, int(served["timestamps_ms"][0]), now_ms
            )
    contracts = served["open_interest_coins"] / 0.1  # ETH-USDT-SWAP ctVal
    np.testing.assert_allclose([r["openInterestAmount"] for r in raw], contracts, rtol=1e-12)
    np.testing.assert_array_equal([r["baseVolume"] for r in raw], served["open_interest_coins"])
    np.testing.assert_array_equal(history.open_interest_coins, served["open_interest_coins"][1:])


@pytest.mark.parametrize("case", [EXCHANGES[0]], ids=["binance"])
async def test_binance_history_stays_within_its_30_days(case: str, started: Started) -> None:
    async with started(case) as fake:
        now_ms = int(time.time() * 1000)
        fake.set_history(BTC, **wire_history(BTC, 40 * 288, now_ms))
        collector = make_collector(fake, HistoryCore())
        async with ccxt_client(collector) as exchange:
            # 40 to 29 days ago: the venue refuses a startTime over 30 days old.
            history = await collector.make_backfill(exchange).fetch_history(
                BTC, now_ms - 40 * DAY_MS, now_ms - 29 * DAY_MS
            )
    assert now_ms - 30 * DAY_MS < history.timestamps_ms[0] <= now_ms - 30 * DAY_MS + 3 * STEP_MS
    assert history.timestamps_ms[-1] == (now_ms - 29 * DAY_MS) // STEP_MS * STEP_MS
    assert dict(fake.rest_requests) == {
        "/fapi/v1/exchangeInfo": 1,
        "/futures/data/openInterestHist": 1,
        "/fapi/v1/klines": 1,
    }


# --- the backfill step of the collector ---------------------------------------------------


@pytest.mark.parametrize("venue", EXCHANGES)
async def test_backfill_goes_before_live_readings_in_the_heatmap_once(
    venue: str, started: Started
) -> None:
    async with started(venue) as fake:
        now_ms = int(time.time() * 1000)
        served = {s: wire_history(s, 300, now_ms, seed=i) for i, s in enumerate((BTC, ETH))}
        for symbol, columns in served.items():
            fake.set_history(symbol, **columns)
        core = HistoryCore()
        collector = make_collector(fake, core, (BTC, ETH), backfill_hours=30.0)
        async with running(collector):
            await eventually(lambda: len(core.histories) == 2, "both histories")
            await eventually(
                lambda: {e.symbol for e in core.open_interest} == {BTC, ETH}, "both readings"
            )
        history_requests = fake.rest_requests[OI_HISTORY_PATH[venue]]
        # A restarted run (as the supervisor does after a crash) does not backfill again.
        readings = len(core.open_interest)
        async with running(collector):
            await eventually(lambda: len(core.open_interest) > readings, "readings again")
    assert [h.symbol for h in core.histories] == [BTC, ETH]
    for history in core.histories:
        assert history.exchange == venue
        assert_history_is(history, served[history.symbol])
    # Each market is announced before its first live reading, and its history is in before
    # it ends; the heatmap is what the past and then the newer live readings make.
    for symbol in (BTC, ETH):
        first_reading = core.order.index(("open_interest", symbol))
        assert core.order.index(("expect", symbol)) < first_reading
        assert core.order.index(("history", symbol)) < core.order.index(("end", symbol))
    reference = HeatmapBook(core.heatmap.params, time.time)
    for history in core.histories:
        end_ms = int(history.timestamps_ms[-1])
        reference.replay(history)
        for event in core.open_interest:
            if event.symbol == history.symbol and event.timestamp_ms > end_ms:
                reference.observe_open_interest(event)
    np.testing.assert_allclose(core.heatmap.coins["BTC"].coins, reference.coins["BTC"].coins)
    np.testing.assert_allclose(core.heatmap.coins["ETH"].coins, reference.coins["ETH"].coins)
    assert core.heatmap.snapshot().ready == {"BTC": True, "ETH": True}
    assert fake.rest_requests[OI_HISTORY_PATH[venue]] == history_requests


@pytest.mark.parametrize("venue", EXCHANGES)
async def test_the_poll_and_exchange_up_do_not_wait_for_the_backfill(
    venue: str, started: Started
) -> None:
    async with started(venue) as fake:
        fake.set_history(BTC, **wire_history(BTC, 1600, int(time.time() * 1000)))
        release = fake.hold_rest(OI_HISTORY_PATH[venue])  # the backfill waits for the test
        core = HistoryCore()
        async with running(make_collector(fake, core, backfill_hours=24.0 * 5)):
            await eventually(lambda: core.health.is_up(venue), "up")
            await eventually(lambda: len(core.open_interest) >= 2, "two polls")
            # Up and polled while the backfill is still going; the heatmap holds the readings.
            assert core.health.snapshot().backfill_progress[venue] == 0.0
            assert core.heatmap.snapshot().ready == {"BTC": False}
            assert "BTC" not in core.heatmap.coins
            release.set()
            await eventually(lambda: len(core.histories) == 1, "the history")
            await eventually(lambda: core.heatmap.snapshot().ready == {"BTC": True}, "ready")
    assert core.health.snapshot().backfill_progress[venue] == 1.0


@pytest.mark.parametrize("venue", EXCHANGES)
@pytest.mark.parametrize(("status", "attempts"), [(503, 2), (429, 1)])
async def test_a_failing_history_endpoint_does_not_stop_polling(
    venue: str, status: int, attempts: int, started: Started
) -> None:
    async with started(venue) as fake:
        fake.fail_rest(status, count=100, path_prefix=OI_HISTORY_PATH[venue])
        core = HistoryCore()
        collector = make_collector(fake, core, (BTC, ETH), backfill_hours=24.0)
        async with running(collector):
            await eventually(lambda: len(core.open_interest) >= 4, "two polls")
            await eventually(lambda: core.health.is_up(venue), "up")
            # The long/short-ratio poll shares the venue's request queue: the backfill may
            # still be asking when the feeds are up.
            await eventually(
                lambda: core.health.snapshot().backfill_progress[venue] == 1.0, "backfill over"
            )
    assert core.histories == []
    # A server error skips the market; a rate limit ends the whole backfill.
    assert fake.rest_requests[OI_HISTORY_PATH[venue]] == attempts
    assert core.health.snapshot().backfill_failures[venue] == attempts


@pytest.mark.parametrize("venue", EXCHANGES)
async def test_a_slow_backfill_is_cut_at_its_time_limit(venue: str, started: Started) -> None:
    async with started(venue) as fake:
        fake.set_history(BTC, **wire_history(BTC, 1600, int(time.time() * 1000)))
        fake.rest_delay = 0.1  # every page takes 0.1 s; the whole backfill may take 0.3 s
        core = HistoryCore()
        collector = make_collector(fake, core, backfill_hours=24.0 * 7, backfill_timeout=0.3)
        begun = time.monotonic()
        async with running(collector):
            await eventually(
                lambda: core.health.snapshot().backfill_failures.get(venue) == 1, "the cut"
            )
            waited = time.monotonic() - begun
            await eventually(lambda: len(core.open_interest) >= 1, "a reading")
    assert core.histories == []
    assert waited < 3.0
    assert core.health.snapshot().backfill_progress[venue] == 1.0
    assert core.heatmap.snapshot().ready == {"BTC": True}  # given up: live readings go in


async def test_zero_hours_disables_the_backfill(started: Started) -> None:
    async with started("bybit") as fake:
        core = HistoryCore()
        async with running(make_collector(fake, core, backfill_hours=0.0)):
            await eventually(lambda: len(core.open_interest) >= 1, "a reading")
    assert core.histories == []
    assert fake.rest_requests[OI_HISTORY_PATH["bybit"]] == 0


# --- pages, alignment and pacing, without a venue -------------------------------------------


async def test_pages_walk_back_below_the_oldest_row_and_stop_when_empty() -> None:
    held = range(10 * STEP_MS, 100 * STEP_MS, STEP_MS)  # open times 10..99 (x 5 min)
    asked: list[tuple[int, int]] = []

    async def newest_first_capped(start: int, end: int, rows: int) -> dict[int, int]:
        asked.append((start // STEP_MS, end // STEP_MS))
        inside = [t for t in held if start <= t <= end]
        return {t: t for t in inside[-min(rows, 7) :]}  # a venue answering 7 of 10 rows

    found = await paging.fetch_pages(newest_first_capped, 0, 99 * STEP_MS, 10, None)
    assert sorted(found) == list(held)  # no holes although every page came back short
    assert asked[:3] == [(90, 99), (83, 92), (76, 85)]
    assert asked[-1] == (0, 9)  # nothing held there: the walk stops
    assert len(asked) == 14


def test_align_pairs_a_reading_with_the_candle_closing_at_it() -> None:
    m = STEP_MS
    open_interest = {1 * m: 5.0, 2 * m: 6.0, 3 * m: 7.0, 4 * m: math.nan, 5 * m: 8.0}
    open_interest |= {6 * m: -1.0, 7 * m: 9.0}  # no candle closes at 7 m: dropped
    candles = {  # keyed by open time
        0: (1.0, 2.0, 1.5),
        1 * m: (2.0, 3.0, 2.5),
        2 * m: (3.0, 4.0, 3.5),
        3 * m: (1.0, 2.0, 1.5),
        4 * m: (3.0, 2.0, 2.5),  # low above high
        5 * m: (1.0, 2.0, 1.5),
        7 * m: (9.0, 9.0, 9.0),  # opens at the newest reading: after it
    }
    aligned = paging.align(open_interest, candles)
    assert aligned.timestamps_ms.tolist() == [1 * m, 2 * m, 3 * m]  # the readings' times
    assert aligned.open_interest_coins.tolist() == [5.0, 6.0, 7.0]
    assert aligned.low.tolist() == [1.0, 2.0, 3.0]
    assert aligned.high.tolist() == [2.0, 3.0, 4.0]
    assert aligned.close.tolist() == [1.5, 2.5, 3.5]
    assert paging.candle_window(open_interest) == (0, 6 * m)
    assert aligned.rejected == {
        Reason.NOT_FINITE: 1,
        Reason.NOT_POSITIVE: 1,
        Reason.OUT_OF_RANGE: 1,
    }


async def test_pacer_allows_a_burst_then_spaces_requests() -> None:
    now = [1000.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = paging.RequestPacer(5, 2.0, lambda: now[0], sleep)
    for _ in range(8):
        await pacer.wait()
    assert slept == pytest.approx([0.4, 0.4, 0.4])  # 5 at once, then one per 0.4 s
    now[0] += 10.0  # idle: the burst is available again
    slept.clear()
    for _ in range(5):
        await pacer.wait()
    assert slept == []
