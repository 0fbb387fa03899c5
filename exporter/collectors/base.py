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
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import ccxt
import ccxt.pro

from exporter.backoff import Backoff
from exporter.collectors import history
from exporter.collectors.ccxt_hooks import guarded_exchange_class
from exporter.dedup import RecentLiquidations
from exporter.events import (
    InvalidEventError,
    Liquidation,
    MarketHistory,
    OpenInterest,
    Reason,
    Side,
)
from exporter.health import Stream

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
LOG_EVERY_SECONDS = 60.0
# ccxt's shared liquidation cache; drained after every wake-up, so it only has to hold a burst.
LIQUIDATION_CACHE_ROWS = 2_000
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


@dataclass(frozen=True, slots=True)
class RawLiquidation:
    """One liquidation as an exchange states it, before market metadata is applied.

    ``amount`` is in coins, or in contracts where ``quantity_in_contracts`` is set.
    """

    side: Side
    price: float
    amount: float
    timestamp_ms: int


# (coins, USD or None to derive from the mark price, mark price, exchange time ms or None)
OpenInterestFields = tuple[float, float | None, float, int | None]


class EventSink(Protocol):
    def record_liquidation(self, event: Liquidation) -> None: ...

    def record_open_interest(self, event: OpenInterest) -> None: ...

    def record_history(self, history: MarketHistory) -> None: ...


class _RateLimitedLog:
    """At most one warning per key per interval; the rest go to debug."""

    def __init__(self, clock: Callable[[], float], interval: float = LOG_EVERY_SECONDS) -> None:
        self._clock = clock
        self._interval = interval
        self._last: dict[str, float] = {}

    def warning(self, key: str, msg: str, *args: object) -> None:
        now = self._clock()
        if now - self._last.get(key, -self._interval) >= self._interval:
            self._last[key] = now
            log.warning(msg, *args)
        else:
            log.debug(msg, *args)


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
        self._warn = _RateLimitedLog(clock)
        self._acks = 0
        self._data_seen = False
        self._rejection: object = None
        self._frame_counted = False
        self._cache: Any = None  # ccxt's liquidation cache, and the newest entry taken from it
        self._last_entry: Any = None
        # Frames a venue re-sends after a reconnect must count once.
        self._recent = RecentLiquidations()
        self._wanted: frozenset[str] | None = None
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
    def parse_entries(self, info: Mapping[str, Any]) -> list[RawLiquidation]:
        """Every liquidation in one raw cache entry (``info``); raises InvalidEventError."""

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

    def on_frame(self, message: object) -> None:
        self.health.message(self.name, Stream.LIQUIDATIONS)
        kind = self.classify_frame(message)
        self._frame_counted = kind is FrameKind.UNKNOWN
        if kind is FrameKind.UNKNOWN:
            self._count_malformed(message, "not a frame this venue sends")
        elif kind is FrameKind.ACK:
            self._acks += 1
        elif kind is FrameKind.REJECT:
            self._rejection = message
        elif kind is FrameKind.DATA:
            self._data_seen = True

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
        self._wanted = frozenset(symbols) if symbols is not None else None
        expected_acks = len(symbols) if self.watch_per_symbol and symbols else 1
        self.on_connected()
        deadline = self._clock() + self._subscribe_timeout
        calls = self.watch_calls(exchange, symbols)
        pending = {asyncio.ensure_future(call()): call for call in calls}
        try:
            while True:
                done, _ = await asyncio.wait(
                    pending, timeout=self._check_interval, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    call = pending.pop(task)
                    task.result()  # raises what ccxt raised: disconnects, rejections
                    pending[asyncio.ensure_future(call())] = call
                # Also on a timeout: an entry for a market outside our subscription (an unknown
                # symbol) lands in the cache without waking our watch, and must still count.
                self._drain(exchange)
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

    def _drain(self, exchange: Any) -> None:
        """Take every liquidation ccxt cached since the last drain (the watch result may hold
        only the one that woke us)."""
        received_ms = int(self._clock() * 1000)
        markets: Mapping[str, Any] = exchange.markets or {}
        for item in self._new_entries(exchange.liquidations):
            self._record(item, markets, received_ms)

    def _new_entries(self, cache: Any) -> list[Any]:
        """The cache entries after the last one we took, oldest first.

        Found by identity from the newest end rather than with ccxt's ``getLimit``: that count
        is reset lazily (on the next append), so two drains with nothing new in between would
        take the same entries twice.
        """
        if cache is None:
            return []
        if cache is not self._cache:
            self._cache, self._last_entry = cache, None
        new = []
        for item in reversed(cache):
            if item is self._last_entry:
                break
            new.append(item)
        else:
            if self._last_entry is not None:
                self._warn.warning(
                    "overflow", "%s: liquidations overflowed ccxt's cache between drains", self.name
                )
        if new:
            self._last_entry = new[0]
            new.reverse()
        return new

    def _record(
        self, item: Mapping[str, Any], markets: Mapping[str, Any], received_ms: int
    ) -> None:
        try:
            for event in self._to_events(item, markets, received_ms):
                if self._recent.is_duplicate(event):
                    self.health.duplicate(self.name)
                else:
                    self.sink.record_liquidation(event)
        except InvalidEventError as exc:
            self.health.invalid(self.name, Stream.LIQUIDATIONS, exc.reason)
            self._warn.warning(
                f"invalid:{exc.reason}", "%s: skipped an invalid liquidation: %s", self.name, exc
            )

    def _to_events(
        self, item: Mapping[str, Any], markets: Mapping[str, Any], received_ms: int
    ) -> list[Liquidation]:
        """The validated events of one cache entry; raises InvalidEventError."""
        symbol = item.get("symbol")
        market = markets.get(symbol) if isinstance(symbol, str) else None
        if market is None:
            raise InvalidEventError(Reason.UNKNOWN_SYMBOL, f"symbol={symbol!r}")
        if self._wanted is not None and symbol not in self._wanted:
            return []  # an all-market subscription (OKX) also brings markets we do not watch
        info = item.get("info")
        if not isinstance(info, dict):
            raise InvalidEventError(Reason.MALFORMED, f"info={info!r:.100}")
        events = []
        for raw in self.parse_entries(info):
            coins, usd = self.amounts(market, raw.price, raw.amount)
            events.append(
                Liquidation(
                    exchange=self.name,
                    symbol=market["symbol"],
                    coin=market["base"],
                    side=raw.side,
                    price=raw.price,
                    quantity=coins,
                    notional_usd=usd,
                    timestamp_ms=raw.timestamp_ms,
                    received_ms=received_ms,
                )
            )
        return events

    def amounts(
        self, market: Mapping[str, Any], price: float, amount: float
    ) -> tuple[float, float]:
        """(coins, USD) of ``amount`` at ``price`` on ``market``.

        Linear contracts are worth ``contractSize`` coins; inverse ones ``contractSize`` USD.
        Quote currencies USDT and USDC are taken at 1 USD.
        """
        if not self.quantity_in_contracts:
            return amount, amount * price
        size = market.get("contractSize")
        if not isinstance(size, int | float) or size <= 0:
            raise InvalidEventError(Reason.MISSING_FIELD, f"contractSize of {market.get('symbol')}")
        if market.get("inverse"):
            usd = amount * size
            return usd / price, usd
        coins = amount * size
        return coins, coins * price

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
