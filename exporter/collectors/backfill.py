"""The heatmap backfill of one venue: each watched market's past open interest and candles,
fetched once at start-up beside the live stream and poll (which do not wait for it).

The first poll announces the markets (``begin``); the heatmap holds their live readings back
until their history is in or given up (``EventSink.expect_history``/``end_history``), so the
past is replayed before the present whatever arrives first. A market whose coin has no heatmap
when its turn comes (``heatmap_coins``, ``EventSink.wants_history``) is skipped without a
request. Best effort: a market that fails is counted and skipped, a rate limit ends the
backfill, and all of it takes at most ``timeout`` seconds. Progress is logged and exported
(``cryptoliq_backfill_progress_ratio``).
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import TYPE_CHECKING, Final

from exporter.collectors import history
from exporter.collectors.retry import RATE_LIMITED_ERRORS
from exporter.events import MarketHistory
from exporter.health import Stream

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from exporter.collectors.ccxt_types import CcxtExchange
    from exporter.collectors.ratelimitedlog import RateLimitedLog
    from exporter.collectors.sink import EventSink
    from exporter.collectors.venue import VenueAdapter
    from exporter.health import Health

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS: Final = 120.0
# How often to ask again whether a coin gets a heatmap while ``top:N`` has nothing to rank by
# (the first poll's readings are recorded after ``begin``, beside the backfill).
RANKING_WAIT_SECONDS: Final = 1.0
PROGRESS_LOG_SECONDS: Final = 10.0


class Backfill:
    def __init__(
        self,
        venue: VenueAdapter,
        exchange: CcxtExchange,
        sink: EventSink,
        *,
        hours: float,
        timeout: float,
        done: set[str],
        health: Health,
        warn: RateLimitedLog,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        """``hours`` of history per market (0 disables the backfill), in ``timeout`` s;
        markets in ``done`` are skipped and added to it (once per market, whatever the
        outcome, across restarts of the collector)."""
        self._venue = venue
        self._name = venue.name
        self._exchange_label = venue.exchange
        self._exchange = exchange
        self._sink = sink
        self._hours = hours
        self._timeout = timeout
        self._health = health
        self._warn = warn
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._done = done
        self._pending: list[str] | None = None
        self._begun = asyncio.Event()
        limits = venue.HISTORY
        # A venue without open-interest history has nothing to backfill.
        self._enabled = hours > 0 and limits is not None
        self._pacers = {
            kind: history.RequestPacer(*budget, clock, sleep) if budget else None
            for kind, budget in (
                ("open_interest", limits.open_interest_budget if limits else None),
                ("candles", limits.candle_budget if limits else None),
            )
        }

    def begin(self, symbols: Sequence[str] | None) -> None:
        """The markets to backfill (None: every market), announced before the first poll."""
        if not self._enabled:
            self._health.backfill_progress(self._name, 1, 1)
            return
        wanted = list(symbols) if symbols is not None else self._venue.every_market(self._exchange)
        pending = [s for s in wanted if s not in self._done]
        self._done.update(pending)
        self._pending = pending
        for symbol in pending:
            self._sink.expect_history(
                self._exchange_label, symbol, self._exchange.market(symbol)["base"]
            )
        self._health.backfill_progress(self._name, 0, len(pending))
        self._begun.set()

    async def run(self) -> None:
        """Wait for ``begin``, then fetch; every announced market ends up recorded or given up."""
        if not self._enabled:
            return
        await self._begun.wait()
        pending = self._pending or []
        if not pending:
            return
        log.info(
            "%s: backfilling %g h of open interest for %d markets (at most %gs)",
            self._name,
            self._hours,
            len(pending),
            self._timeout,
        )
        started = last_log = self._monotonic()
        until_ms = int(self._clock() * 1000)
        since_ms = until_ms - int(self._hours * 3_600_000)
        recorded = rows = done = skipped = 0
        try:
            async with asyncio.timeout(self._timeout):
                for symbol in pending:
                    try:
                        found = await self._backfill(symbol, since_ms, until_ms)
                        skipped += found is None  # its coin has no heatmap: not a failure
                        recorded += bool(found)
                        rows += found or 0
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - best effort; the heatmap goes on
                        self._failed(symbol, f"{type(exc).__name__}: {exc}")
                        if isinstance(exc, RATE_LIMITED_ERRORS):
                            break  # every further request would deepen the limit (or a ban)
                    finally:
                        self._sink.end_history(self._exchange_label, symbol)
                    done += 1
                    self._health.backfill_progress(self._name, done, len(pending))
                    if self._monotonic() - last_log >= PROGRESS_LOG_SECONDS:
                        last_log = self._monotonic()
                        log.info("%s: backfilled %d of %d markets", self._name, done, len(pending))
        except TimeoutError:
            self._failed(f"{len(pending) - done} markets", f"timed out after {self._timeout:g}s")
        finally:
            for symbol in pending[done:]:  # given up (rate limit, timeout): live data goes in
                self._sink.end_history(self._exchange_label, symbol)
            self._health.backfill_progress(self._name, len(pending), len(pending))
        log.info(
            "%s: backfilled %d of %d markets with %d 5-minute rows in %.1fs (%d skipped: "
            "no heatmap for their coin)",
            self._name,
            recorded,
            len(pending),
            rows,
            self._monotonic() - started,
            skipped,
        )

    async def _backfill(self, symbol: str, since_ms: int, until_ms: int) -> int | None:
        """Fetch and record one market's history: the rows recorded, or None if its coin
        gets no heatmap (skipped, no request spent)."""
        if not await self._wanted(symbol):
            return None
        past = await self.fetch_history(symbol, since_ms, until_ms)
        if len(past):
            self._sink.record_history(past)
        return len(past)

    async def _wanted(self, symbol: str) -> bool:
        """Whether the market's coin gets a heatmap, asked when its turn comes. ``top:N``
        ranks by open interest, so until the first readings are in it waits for them."""
        coin = self._exchange.market(symbol)["base"]
        while (wanted := self._sink.wants_history(coin)) is None:
            await self._sleep(RANKING_WAIT_SECONDS)
        return wanted

    def _failed(self, what: str, why: str) -> None:
        self._health.backfill_failed(self._name)
        self._warn.warning(
            f"backfill:{why.partition(':')[0]}",
            "%s: history backfill of %s failed (%s); live polling goes on",
            self._name,
            what,
            why,
        )

    async def fetch_history(self, symbol: str, since_ms: int, until_ms: int) -> MarketHistory:
        """Open interest in coins of ``symbol`` read at times in ``[since_ms, until_ms]``,
        each with the 5-minute candle that closes at it (`history.align`), oldest first.

        Open interest comes first, newest page first, back to ``since_ms`` or as far as the
        venue reaches; candles only over the span it covers, one candle earlier. Pages and
        budgets follow the venue's ``HISTORY``. Raises what ccxt raises; a row no market
        prints is counted and dropped.
        """
        limits = self._history_limits()
        if limits.open_interest_days is not None:
            # One candle inside the venue's reach: its clock is not exactly ours.
            reach_ms = int(self._clock() * 1000 - limits.open_interest_days * 86_400_000)
            since_ms = max(since_ms, reach_ms + history.CANDLE_MS)
        first, last = history.grid_window(since_ms, until_ms)
        market = self._exchange.market(symbol)
        open_interest = await history.fetch_pages(
            partial(self._open_interest_page, symbol),
            first,
            last,
            limits.open_interest_rows,
            self._pacers["open_interest"],
        )
        candles: dict[int, tuple[float, float, float]] = {}
        if open_interest:
            candles = await history.fetch_pages(
                partial(self._candle_page, symbol),
                *history.candle_window(open_interest),
                limits.candle_rows,
                self._pacers["candles"],
            )
        aligned = history.align(open_interest, candles)
        for reason, count in aligned.rejected.items():
            for _ in range(count):
                self._health.invalid(self._name, Stream.OPEN_INTEREST, reason)
            self._warn.warning(
                f"invalid-history:{reason}",
                "%s: dropped %d history rows of %s (%s)",
                self._name,
                count,
                symbol,
                reason,
            )
        return MarketHistory(
            exchange=self._exchange_label,
            symbol=market["symbol"],
            coin=market["base"],
            timestamps_ms=aligned.timestamps_ms,
            open_interest_coins=aligned.open_interest_coins,
            low=aligned.low,
            high=aligned.high,
            close=aligned.close,
        )

    async def _open_interest_page(
        self, symbol: str, start_ms: int, end_ms: int, rows: int
    ) -> dict[int, float]:
        entries = await self._exchange.fetch_open_interest_history(
            symbol, history.TIMEFRAME, start_ms, rows, {"until": end_ms + history.CANDLE_MS - 1}
        )
        limits = self._history_limits()
        found = history.open_interest_rows(entries, limits.open_interest_coins)
        if limits.open_interest_in_contracts:  # Gate: contracts of contractSize coins
            size = float(self._exchange.market(symbol)["contractSize"])
            found = {t: v * size for t, v in found.items()}
        return found

    def _history_limits(self) -> history.HistoryLimits:
        limits = self._venue.HISTORY
        if limits is None:  # begin() and run() never fetch for such a venue
            raise RuntimeError(f"{self._name} serves no open-interest history")
        return limits

    async def _candle_page(
        self, symbol: str, start_ms: int, end_ms: int, rows: int
    ) -> dict[int, tuple[float, float, float]]:
        candles = await self._exchange.fetch_ohlcv(
            symbol, history.TIMEFRAME, start_ms, rows, {"until": end_ms + history.CANDLE_MS - 1}
        )
        return history.candle_rows(candles)
