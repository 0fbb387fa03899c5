"""What every exchange collector shares: the ccxt.pro instance, the reconnecting liquidation
stream, the open-interest poll loop, error sorting and backoff.

A subclass supplies only data and small parsers (URLs, how a frame is classified, how one raw
liquidation entry reads, which REST call gives open interest); the loops live here once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from contextlib import suppress
from enum import Enum
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import ccxt
import ccxt.pro

from exporter.backoff import Backoff
from exporter.collectors import history
from exporter.collectors.ccxt_hooks import guarded_exchange_class
from exporter.collectors.intake import FrameIntake, FrameItem, RawLiquidation, markets_by_id
from exporter.collectors.ratelimitedlog import RateLimitedLog
from exporter.events import (
    InvalidEventError,
    Liquidation,
    MarketHistory,
    OpenInterest,
    Reason,
)
from exporter.health import LostReason, Stream

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence

    from exporter.config import ExchangeConfig
    from exporter.health import Health

log = logging.getLogger(__name__)

# Errors that retrying cannot fix (bad symbol, credentials, unsupported call): retry slowly.
FATAL_ERRORS: tuple[type[Exception], ...] = (
    ccxt.AuthenticationError,
    ccxt.PermissionDenied,
    ccxt.NotSupported,
    ccxt.BadSymbol,
)
FATAL_RETRY_SECONDS = 300.0
RATE_LIMITED_ERRORS: tuple[type[Exception], ...] = (ccxt.DDoSProtection, ccxt.RateLimitExceeded)
# Liquidations are taken from each frame as it arrives (exporter/collectors/intake.py), never
# from ccxt's cache, which data frames do not reach; keep that cache minimal.
LIQUIDATION_CACHE_ROWS = 1
# The heatmap backfill may hold back the first open-interest poll at most this long.
BACKFILL_TIMEOUT_SECONDS = 120.0


class FrameKind(Enum):
    DATA = "data"
    ACK = "ack"
    REJECT = "reject"
    CONTROL = "control"  # pong and other keepalive or informational frames
    UNKNOWN = "unknown"  # none of the venue's shapes: counted as malformed


class SubscriptionError(ccxt.NetworkError):  # type: ignore[misc]  # ccxt ships no types
    """The exchange rejected our subscription or never acknowledged it."""


# (coins, USD or None to derive from the mark price, mark price, exchange time ms or None)
OpenInterestFields = tuple[float, float | None, float, int | None]


class EventSink(Protocol):
    def record_liquidation(self, event: Liquidation) -> None: ...

    def record_open_interest(self, event: OpenInterest) -> None: ...

    def record_history(self, history: MarketHistory) -> None: ...


class ExchangeCollector(ABC):
    """Runs one exchange: the liquidation stream and the open-interest poll, side by side."""

    name: ClassVar[str]
    ccxt_class: ClassVar[str]
    # Bybit has no multi-symbol liquidation watch: one watch (and one ack) per symbol.
    watch_per_symbol: ClassVar[bool] = False
    # OKX states sizes in contracts; Binance and Bybit in coins.
    quantity_in_contracts: ClassVar[bool] = False
    # How the venue serves 5-minute open-interest history and candles (the heatmap backfill).
    HISTORY: ClassVar[history.HistoryLimits]

    def __init__(
        self,
        config: ExchangeConfig,
        sink: EventSink,
        health: Health,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        subscribe_timeout: float = 10.0,
        check_interval: float = 0.5,
        request_timeout: float = 10.0,
        backfill_hours: float = 24.0 * 7,
        backfill_timeout: float = BACKFILL_TIMEOUT_SECONDS,
    ) -> None:
        """``backfill_hours`` of history per market are fetched before the first open-interest
        poll (0 disables the backfill), taking at most ``backfill_timeout`` seconds in all."""
        self.config = config
        self.sink = sink
        self.health = health
        self._clock = clock
        self._sleep = sleep
        self._subscribe_timeout = subscribe_timeout
        self._check_interval = check_interval
        self._request_timeout = request_timeout
        self._warn = RateLimitedLog(clock)
        self._acks = 0
        self._data_seen = False
        self._rejection: object = None
        self._frame_counted = False
        self._intake = FrameIntake(
            self.name,
            self,
            sink,
            health=health,
            warn=self._warn,
            clock=clock,
            quantity_in_contracts=self.quantity_in_contracts,
        )
        self._backfill_hours = backfill_hours
        self._backfill_timeout = backfill_timeout
        self._backfilled: set[str] = set()
        limits = self.HISTORY
        self._history_pacers = {
            kind: history.RequestPacer(*budget, clock, sleep) if budget else None
            for kind, budget in (
                ("open_interest", limits.open_interest_budget),
                ("candles", limits.candle_budget),
            )
        }

    # --- what a subclass provides ---------------------------------------------------------

    @classmethod
    @abstractmethod
    def url_overrides(cls, rest_url: str | None, ws_url: str | None) -> dict[str, Any]:
        """ccxt ``urls`` entries that point the exchange at other roots (testnet, proxy, fake)."""

    @classmethod
    def ccxt_options(cls) -> dict[str, Any]:
        return {}

    @abstractmethod
    def classify_frame(self, message: object) -> FrameKind: ...

    @abstractmethod
    def split_frame(self, message: Mapping[str, Any]) -> Sequence[FrameItem]:
        """Every liquidation of a data frame, in order; an element that is not one becomes an
        InvalidEventError in its place (a frame whose container is wrong, one)."""

    @abstractmethod
    def parse_entry(self, entry: Mapping[str, Any]) -> RawLiquidation:
        """One entry's side, price, amount and time; raises InvalidEventError."""

    @abstractmethod
    def watch_calls(
        self, exchange: Any, symbols: Sequence[str] | None
    ) -> list[Callable[[], Coroutine[Any, Any, object]]]:
        """The ccxt watch calls that together cover ``symbols`` (None: every market)."""

    @abstractmethod
    async def fetch_open_interest(
        self, exchange: Any, symbols: Sequence[str] | None
    ) -> list[OpenInterest]:
        """Open interest and mark price of ``symbols`` (None: every market)."""

    def min_poll_interval(self, symbol_count: int) -> float:  # noqa: ARG002 - per-exchange rule
        """The shortest poll interval that keeps within half the exchange's REST budget."""
        return 1.0

    def every_market(self, exchange: Any) -> list[str]:
        """What ``symbols: all`` polls: every active linear perpetual (OKX: every swap)."""
        return [
            symbol
            for symbol, market in (exchange.markets or {}).items()
            if market.get("swap") and market.get("linear") and market.get("active") is not False
        ]

    async def fetch_history(
        self, exchange: Any, symbol: str, since_ms: int, until_ms: int
    ) -> MarketHistory:
        """Open interest in coins and 5-minute candles of ``symbol`` whose open times lie in
        ``[since_ms, until_ms]``, aligned by open time, oldest first.

        Open interest comes first, newest page first, back to ``since_ms`` or as far as the
        venue reaches; candles only over the span it covers. Pages and budgets follow
        ``HISTORY``. Raises what ccxt raises; a row no market prints is counted and dropped.
        """
        limits = self.HISTORY
        if limits.open_interest_days is not None:
            # One candle inside the venue's reach: its clock is not exactly ours.
            reach_ms = int(self._clock() * 1000 - limits.open_interest_days * 86_400_000)
            since_ms = max(since_ms, reach_ms + history.CANDLE_MS)
        first, last = history.grid_window(since_ms, until_ms)
        market = exchange.market(symbol)
        open_interest = await history.fetch_pages(
            partial(self._open_interest_page, exchange, symbol),
            first,
            last,
            limits.open_interest_rows,
            self._history_pacers["open_interest"],
        )
        candles: dict[int, tuple[float, float, float]] = {}
        if open_interest:
            candles = await history.fetch_pages(
                partial(self._candle_page, exchange, symbol),
                min(open_interest),
                max(open_interest),
                limits.candle_rows,
                self._history_pacers["candles"],
            )
        aligned = history.align(open_interest, candles)
        for reason, count in aligned.rejected.items():
            for _ in range(count):
                self.health.invalid(self.name, Stream.OPEN_INTEREST, reason)
            self._warn.warning(
                f"invalid-history:{reason}",
                "%s: dropped %d history rows of %s (%s)",
                self.name,
                count,
                symbol,
                reason,
            )
        return MarketHistory(
            exchange=self.name,
            symbol=market["symbol"],
            coin=market["base"],
            timestamps_ms=aligned.timestamps_ms,
            open_interest_coins=aligned.open_interest_coins,
            low=aligned.low,
            high=aligned.high,
            close=aligned.close,
        )

    async def _open_interest_page(
        self, exchange: Any, symbol: str, start_ms: int, end_ms: int, rows: int
    ) -> dict[int, float]:
        entries = await exchange.fetch_open_interest_history(
            symbol, history.TIMEFRAME, start_ms, rows, {"until": end_ms + history.CANDLE_MS - 1}
        )
        return history.open_interest_rows(entries, self.HISTORY.open_interest_coins)

    async def _candle_page(
        self, exchange: Any, symbol: str, start_ms: int, end_ms: int, rows: int
    ) -> dict[int, tuple[float, float, float]]:
        candles = await exchange.fetch_ohlcv(
            symbol, history.TIMEFRAME, start_ms, rows, {"until": end_ms + history.CANDLE_MS - 1}
        )
        return history.candle_rows(candles)

    # --- shared machinery -----------------------------------------------------------------

    def make_exchange(self) -> Any:
        """A ccxt.pro instance with our URL overrides and frame hooks."""
        base = getattr(ccxt.pro, self.ccxt_class)
        options = {"liquidationsLimit": LIQUIDATION_CACHE_ROWS, **self.ccxt_options()}
        config: dict[str, Any] = {
            "enableRateLimit": True,
            "timeout": int(self._request_timeout * 1000),
            "options": options,
        }
        urls = self.url_overrides(self.config.rest_url, self.config.ws_url)
        if urls:
            config["urls"] = urls
        return guarded_exchange_class(base)(config, self)

    async def run(self) -> None:
        exchange = self.make_exchange()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._stream_loop(exchange))
                group.create_task(self._poll_loop(exchange))
        finally:
            self.health.mark_down(self.name, Stream.LIQUIDATIONS)
            self.health.mark_down(self.name, Stream.OPEN_INTEREST)
            await exchange.close()

    def resolve_symbols(self, exchange: Any) -> list[str] | None:
        """Configured symbols that the exchange lists (None: all); unknown ones are skipped."""
        if self.config.all_symbols:
            return None
        markets: Mapping[str, Any] = exchange.markets or {}
        known = [s for s in self.config.symbols if s in markets]
        for symbol in self.config.symbols:
            if symbol not in markets:
                self._warn.warning(
                    f"symbol:{symbol}", "%s: %s is not listed; skipping it", self.name, symbol
                )
        if not known:
            raise ccxt.BadSymbol(f"none of {', '.join(self.config.symbols)} is listed")
        return known

    # frame observer (called synchronously from ccxt's receive callback)

    def on_connected(self) -> None:
        self._acks = 0
        self._data_seen = False
        self._rejection = None

    def on_frame(self, message: object) -> bool:
        """Count and classify a decoded frame; True when it was a data frame, taken here
        entry by entry (ccxt does not see it: its parser and its capped cache lose entries)."""
        self.health.message(self.name, Stream.LIQUIDATIONS)
        kind = self.classify_frame(message)
        self._frame_counted = kind is FrameKind.UNKNOWN
        if kind is FrameKind.UNKNOWN:
            self._count_malformed(message, "not a frame this venue sends")
        elif kind is FrameKind.ACK:
            self._acks += 1
        elif kind is FrameKind.REJECT:
            self._rejection = message
        elif kind is FrameKind.DATA and isinstance(message, dict):
            self._data_seen = True
            self._intake.take(message)
            return True
        return False

    def on_frame_too_large(self, error: Exception) -> None:
        """The WebSocket client refused a frame over its size limit and drops the connection:
        the frame's entries cannot be counted, so it counts as one lost liquidation."""
        self.health.lost(self.name, LostReason.FRAME_TOO_LARGE)
        self._warn.warning(
            "lost:frame_too_large",
            "%s: a frame over the WebSocket size limit was dropped (%s); counted as lost",
            self.name,
            error,
        )

    def on_malformed(self, data: object, error: Exception) -> None:
        """A frame that did not even decode (bad JSON, binary junk)."""
        self.health.message(self.name, Stream.LIQUIDATIONS)
        self._count_malformed(data, str(error))

    def on_handler_error(self, message: object, error: Exception) -> None:
        """ccxt's handler raised on a decoded frame; count it unless on_frame already did."""
        if not self._frame_counted:
            self._count_malformed(message, f"{type(error).__name__}: {error}")

    def _count_malformed(self, data: object, why: str) -> None:
        self.health.invalid(self.name, Stream.LIQUIDATIONS, Reason.MALFORMED)
        self._warn.warning(
            "malformed", "%s: skipped a malformed frame (%s): %.200r", self.name, why, data
        )

    # liquidation stream

    async def _stream_loop(self, exchange: Any) -> None:
        backoff = Backoff(initial=1.0, cap=60.0)
        while True:
            try:
                await self._stream(exchange, backoff)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - sorted by _retry_delay; the loop must live
                delay = self._failed(exchange, Stream.LIQUIDATIONS, exc, backoff)
                with suppress(Exception):
                    await exchange.close_ws_clients()
                await self._sleep(delay)

    def _failed(self, exchange: Any, stream: Stream, exc: Exception, backoff: Backoff) -> float:
        """Mark ``stream`` down, count the retry, log it (rate-limited); returns the delay."""
        self.health.mark_down(self.name, stream)
        self.health.reconnect(self.name, stream)
        delay = self._retry_delay(exchange, exc, backoff)
        self._warn.warning(
            f"{stream.value}:{type(exc).__name__}",
            "%s: %s failed (%s: %s); retrying in %.1fs",
            self.name,
            stream.value,
            type(exc).__name__,
            exc,
            delay,
        )
        return delay

    async def _stream(self, exchange: Any, backoff: Backoff) -> None:
        await exchange.load_markets()
        symbols = self.resolve_symbols(exchange)
        wanted = frozenset(symbols) if symbols is not None else None
        self._intake.use_markets(markets_by_id(exchange.markets or {}), wanted)
        expected_acks = len(symbols) if self.watch_per_symbol and symbols else 1
        self.on_connected()
        deadline = self._clock() + self._subscribe_timeout
        calls = self.watch_calls(exchange, symbols)
        pending = {asyncio.ensure_future(call()): call for call in calls}
        try:
            while True:
                # The watches hold the subscriptions and end only with what ccxt raises
                # (disconnects, rejections); data frames reach on_frame, never their results.
                done, _ = await asyncio.wait(
                    pending, timeout=self._check_interval, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    call = pending.pop(task)
                    task.result()
                    pending[asyncio.ensure_future(call())] = call
                if self._subscribed(expected_acks, deadline):
                    if not self.health.stream_healthy(self.name, Stream.LIQUIDATIONS):
                        log.info("%s: liquidation stream subscribed", self.name)
                    self.health.mark_up(self.name, Stream.LIQUIDATIONS)
                    backoff.reset()
        finally:
            for task in pending:
                task.cancel()
            for task in pending:
                with suppress(asyncio.CancelledError, Exception):
                    await task

    def _subscribed(self, expected_acks: int, deadline: float) -> bool:
        """True once acknowledged; raises when rejected or still unacknowledged at ``deadline``."""
        if self._rejection is not None:
            raise SubscriptionError(f"subscription rejected: {self._rejection!r:.300}")
        if self._data_seen or self._acks >= expected_acks:
            return True
        if self._clock() > deadline:
            raise SubscriptionError(f"no acknowledgement within {self._subscribe_timeout:g}s")
        return False

    # open interest poll

    async def _poll_loop(self, exchange: Any) -> None:
        backoff = Backoff(initial=1.0, cap=60.0)
        backfill_due = True  # once, before the first poll: never again holds a poll back
        while True:
            try:
                await exchange.load_markets()
                symbols = self.resolve_symbols(exchange)
                if backfill_due:
                    backfill_due = False
                    await self._backfill(exchange, symbols)
                # Not asyncio.wait_for: on 3.11 it loses a cancellation that arrives as the
                # call completes, and the loop then outlives its task group's shutdown.
                async with asyncio.timeout(self._request_timeout * 3):
                    events = await self.fetch_open_interest(exchange, symbols)
                for event in events:
                    self.sink.record_open_interest(event)
                self.health.message(self.name, Stream.OPEN_INTEREST, len(events))
                self.health.mark_up(self.name, Stream.OPEN_INTEREST)
                backoff.reset()
                count = len(symbols) if symbols is not None else len(exchange.markets or {})
                interval = max(self.config.poll_interval_seconds, self.min_poll_interval(count))
                await self._sleep(interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - sorted by _retry_delay; the loop must live
                await self._sleep(self._failed(exchange, Stream.OPEN_INTEREST, exc, backoff))

    async def _backfill(self, exchange: Any, symbols: Sequence[str] | None) -> None:
        """Record each market's history once, before its first poll, so the heatmap starts
        from the past instead of from nothing. Best effort: a market that fails is counted and
        skipped, a rate limit ends the backfill, and the whole of it takes at most
        ``backfill_timeout`` seconds; live polling starts after it either way."""
        if self._backfill_hours <= 0:
            return
        wanted = list(symbols) if symbols is not None else self.every_market(exchange)
        pending = [s for s in wanted if s not in self._backfilled]
        if not pending:
            return
        started = time.monotonic()
        until_ms = int(self._clock() * 1000)
        since_ms = until_ms - int(self._backfill_hours * 3_600_000)
        recorded = rows = done = 0
        try:
            async with asyncio.timeout(self._backfill_timeout):
                for symbol in pending:
                    self._backfilled.add(symbol)  # once per market, whatever the outcome
                    try:
                        past = await self.fetch_history(exchange, symbol, since_ms, until_ms)
                        if len(past):
                            self.sink.record_history(past)
                            recorded += 1
                            rows += len(past)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - best effort; live polling must start
                        self._backfill_failed(symbol, f"{type(exc).__name__}: {exc}")
                        if isinstance(exc, RATE_LIMITED_ERRORS):
                            break  # every further request would deepen the limit (or a ban)
                    done += 1
        except TimeoutError:
            self._backfill_failed(
                f"{len(pending) - done} markets", f"timed out after {self._backfill_timeout:g}s"
            )
        log.info(
            "%s: backfilled %d of %d markets with %d 5-minute rows in %.1fs",
            self.name,
            recorded,
            len(pending),
            rows,
            time.monotonic() - started,
        )

    def _backfill_failed(self, what: str, why: str) -> None:
        self.health.backfill_failed(self.name)
        self._warn.warning(
            f"backfill:{why.partition(':')[0]}",
            "%s: history backfill of %s failed (%s); live polling goes on",
            self.name,
            what,
            why,
        )

    def make_open_interest(
        self, market: Mapping[str, Any], read: Callable[[], OpenInterestFields]
    ) -> OpenInterest | None:
        """One validated reading from ``read()``; an invalid one is counted and None returned."""
        received_ms = int(self._clock() * 1000)
        try:
            coins, usd, mark_price, timestamp_ms = read()
            return OpenInterest(
                exchange=self.name,
                symbol=market["symbol"],
                coin=market["base"],
                coins=coins,
                usd=usd if usd is not None else coins * mark_price,
                mark_price=mark_price,
                timestamp_ms=timestamp_ms if timestamp_ms is not None else received_ms,
                received_ms=received_ms,
            )
        except InvalidEventError as exc:
            self.health.invalid(self.name, Stream.OPEN_INTEREST, exc.reason)
            self._warn.warning(
                f"invalid-oi:{exc.reason}",
                "%s: skipped an invalid open interest: %s",
                self.name,
                exc,
            )
            return None

    def _retry_delay(self, exchange: Any, exc: Exception, backoff: Backoff) -> float:
        delay = backoff.next_delay()
        if isinstance(exc, FATAL_ERRORS):
            return max(delay, FATAL_RETRY_SECONDS)
        if isinstance(exc, RATE_LIMITED_ERRORS):
            return max(delay, _retry_after_seconds(exchange) or 0.0)
        return delay


def _retry_after_seconds(exchange: Any) -> float | None:
    headers = getattr(exchange, "last_response_headers", None) or {}
    for name, value in dict(headers).items():
        if str(name).lower() == "retry-after":
            with suppress(ValueError):
                return max(0.0, float(value))
    return None
