"""A venue's REST polls: the loop they share (every interval one round, within the venue's
budget, failures retried by ``Retry``), and the open-interest poll: the venue's open interest,
mark price, funding and index price of the watched markets, each reading validated on its own.
The long/short-ratio poll is ``positioning.PositioningPoll``."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, TypeVar

from exporter.backoff import Backoff
from exporter.collectors.venue import RawOpenInterest
from exporter.events import InvalidEventError, MarketContext, OpenInterest
from exporter.health import Stream

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from exporter.collectors.ccxt_types import CcxtExchange
    from exporter.collectors.ratelimitedlog import RateLimitedLog
    from exporter.collectors.retry import Retry
    from exporter.collectors.sink import EventSink
    from exporter.collectors.venue import OpenInterestItem, VenueAdapter
    from exporter.health import Health

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PollShared:
    """What a venue's REST polls share: which markets, where health and failures go, time."""

    resolve_symbols: Callable[[CcxtExchange], list[str] | None]
    health: Health
    retry: Retry
    warn: RateLimitedLog
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]
    request_timeout: float


class RestPoll(ABC):
    """One REST poll of one venue: ``poll_once`` every ``interval`` (or the round's budgeted
    time, if longer), marking ``STREAM`` up after each round and retrying failures."""

    STREAM: ClassVar[Stream]

    def __init__(
        self,
        venue: VenueAdapter,
        exchange: CcxtExchange,
        sink: EventSink,
        *,
        interval: float,
        shared: PollShared,
    ) -> None:
        self._venue = venue
        self._name = venue.name
        self._exchange = exchange
        self._sink = sink
        self._interval = interval
        self._resolve_symbols = shared.resolve_symbols
        self._health = shared.health
        self._retry = shared.retry
        self._warn = shared.warn
        self._clock = shared.clock
        self._sleep = shared.sleep
        self._request_timeout = shared.request_timeout

    async def run(self) -> None:
        backoff = Backoff(initial=1.0, cap=60.0)
        exchange = self._exchange
        while True:
            try:
                await exchange.load_markets()
                budget = await self.poll_once()
                self._health.mark_up(self._name, self.STREAM)
                backoff.reset()
                await self._sleep(max(self._interval, budget))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - sorted by Retry; the loop must live
                headers = exchange.last_response_headers
                await self._sleep(self._retry.failed(self.STREAM, exc, backoff, headers))

    @abstractmethod
    async def poll_once(self) -> float:
        """One round: read and record; returns the seconds the venue's budget needs for it."""

    def invalid(self, exc: InvalidEventError, key: str, what: str) -> None:
        """A reading skipped as invalid: counted under the poll's stream with its reason,
        and logged at most once a while per ``key`` and reason."""
        self._health.invalid(self._name, self.STREAM, exc.reason)
        self._warn.warning(f"{key}:{exc.reason}", "%s: skipped %s: %s", self._name, what, exc)

    async def within(self, budget: float, call: Awaitable[T]) -> T:
        """``call``, given three request timeouts plus four times the round's budgeted time (a
        round of one request per market takes its budgeted time, and longer while the backfill
        shares ccxt's throttle). Not asyncio.wait_for: on 3.11 it loses a cancellation that
        arrives as the call completes, and the loop then outlives its task group's shutdown."""
        async with asyncio.timeout(self._request_timeout * 3 + budget * 4):
            return await call


class OpenInterestPoll(RestPoll):
    STREAM: ClassVar[Stream] = Stream.OPEN_INTEREST

    def __init__(
        self,
        venue: VenueAdapter,
        exchange: CcxtExchange,
        sink: EventSink,
        *,
        interval: float,
        shared: PollShared,
        first_poll: Callable[[Sequence[str] | None], None],
    ) -> None:
        """``first_poll(symbols)`` runs once, before the first reading is recorded (the
        backfill announces the markets whose history is coming)."""
        super().__init__(venue, exchange, sink, interval=interval, shared=shared)
        self._first_poll: Callable[[Sequence[str] | None], None] | None = first_poll

    async def poll_once(self) -> float:
        exchange = self._exchange
        symbols = self._resolve_symbols(exchange)
        if self._first_poll is not None:
            self._first_poll(symbols)
            self._first_poll = None
        count = len(symbols) if symbols is not None else len(exchange.markets or {})
        budget = self._venue.min_poll_interval(count)
        items = await self.within(budget, self._venue.read_open_interest(exchange, symbols))
        if symbols is None and not self._venue.shard.whole:
            # A venue's one call for every market answers for other shards' markets too.
            items = [i for i in items if not isinstance(i, RawOpenInterest) or self._owns(i)]
        for item in items:
            event = self._event(item)
            if event is not None:
                self._sink.record_open_interest(event)
                self._record_context(item, event)
        self._health.message(self._name, Stream.OPEN_INTEREST, len(items))
        return budget

    def _owns(self, item: RawOpenInterest) -> bool:
        return self._venue.owns(item.market["symbol"])

    def _record_context(self, item: OpenInterestItem, reading: OpenInterest) -> None:
        """The market's funding and index price, where the venue's reading carries them; an
        invalid one is counted and skipped (its open interest stands)."""
        if isinstance(item, InvalidEventError) or item.context is None:
            return
        try:
            fields = item.context()
            event = MarketContext(
                exchange=reading.exchange,
                symbol=reading.symbol,
                coin=reading.coin,
                index_price=fields.index_price,
                funding_rate=fields.funding_rate,
                predicted_funding_rate=fields.predicted_funding_rate,
                next_funding_ms=fields.next_funding_ms,
                funding_interval_s=fields.funding_interval_s,
                timestamp_ms=reading.timestamp_ms,
                received_ms=reading.received_ms,
            )
        except InvalidEventError as exc:
            self.invalid(
                exc, "invalid-context", f"an invalid funding or index price of {reading.symbol}"
            )
            return
        self._sink.record_market_context(event)

    def _event(self, item: OpenInterestItem) -> OpenInterest | None:
        """One validated reading; an invalid one is counted and None returned."""
        received_ms = int(self._clock() * 1000)
        try:
            if isinstance(item, InvalidEventError):
                raise item
            coins, usd, mark_price, timestamp_ms = item.read()
            market = item.market
            return OpenInterest(
                exchange=self._venue.exchange,
                symbol=market["symbol"],
                coin=market["base"],
                coins=coins,
                usd=usd if usd is not None else coins * mark_price,
                mark_price=mark_price,
                timestamp_ms=timestamp_ms if timestamp_ms is not None else received_ms,
                received_ms=received_ms,
            )
        except InvalidEventError as exc:
            self.invalid(exc, "invalid-oi", "an invalid open interest")
            return None
