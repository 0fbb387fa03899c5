"""The open-interest poll of one venue: every interval, the venue's open interest and mark
price of the watched markets, each reading validated on its own, within the REST budget."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from exporter.backoff import Backoff
from exporter.events import InvalidEventError, OpenInterest
from exporter.health import Stream

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from exporter.collectors.ccxt_types import CcxtExchange
    from exporter.collectors.ratelimitedlog import RateLimitedLog
    from exporter.collectors.retry import Retry
    from exporter.collectors.sink import EventSink
    from exporter.collectors.venue import OpenInterestItem, VenueAdapter
    from exporter.health import Health


class OpenInterestPoll:
    def __init__(
        self,
        venue: VenueAdapter,
        exchange: CcxtExchange,
        sink: EventSink,
        *,
        interval: float,
        resolve_symbols: Callable[[CcxtExchange], list[str] | None],
        first_poll: Callable[[Sequence[str] | None], None],
        health: Health,
        retry: Retry,
        warn: RateLimitedLog,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        request_timeout: float,
    ) -> None:
        """``first_poll(symbols)`` runs once, before the first reading is recorded (the
        backfill announces the markets whose history is coming)."""
        self._venue = venue
        self._name = venue.name
        self._exchange = exchange
        self._sink = sink
        self._interval = interval
        self._resolve_symbols = resolve_symbols
        self._first_poll: Callable[[Sequence[str] | None], None] | None = first_poll
        self._health = health
        self._retry = retry
        self._warn = warn
        self._clock = clock
        self._sleep = sleep
        self._request_timeout = request_timeout

    async def run(self) -> None:
        backoff = Backoff(initial=1.0, cap=60.0)
        exchange = self._exchange
        while True:
            try:
                await exchange.load_markets()
                symbols = self._resolve_symbols(exchange)
                if self._first_poll is not None:
                    self._first_poll(symbols)
                    self._first_poll = None
                count = len(symbols) if symbols is not None else len(exchange.markets or {})
                budget = self._venue.min_poll_interval(count)
                # Not asyncio.wait_for: on 3.11 it loses a cancellation that arrives as the
                # call completes, and the loop then outlives its task group's shutdown. A poll
                # of one request per market (Binance) takes its budgeted time, and longer
                # while the backfill shares ccxt's throttle: allow four times that.
                async with asyncio.timeout(self._request_timeout * 3 + budget * 4):
                    items = await self._venue.read_open_interest(exchange, symbols)
                for item in items:
                    event = self._event(item)
                    if event is not None:
                        self._sink.record_open_interest(event)
                self._health.message(self._name, Stream.OPEN_INTEREST, len(items))
                self._health.mark_up(self._name, Stream.OPEN_INTEREST)
                backoff.reset()
                await self._sleep(max(self._interval, budget))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - sorted by Retry; the loop must live
                headers = exchange.last_response_headers
                await self._sleep(self._retry.failed(Stream.OPEN_INTEREST, exc, backoff, headers))

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
            self._health.invalid(self._name, Stream.OPEN_INTEREST, exc.reason)
            self._warn.warning(
                f"invalid-oi:{exc.reason}",
                "%s: skipped an invalid open interest: %s",
                self._name,
                exc,
            )
            return None
