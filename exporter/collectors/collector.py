"""One venue's collector: its liquidation stream, open-interest poll and heatmap backfill, run
side by side on one ccxt instance; the venue module says what differs, the parts do the rest.

With ``--shard I/N`` (the adapter's ``shard``) it serves only its shard's markets; a venue of
which the shard owns none idles (``Health.idle``) instead of connecting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Final, cast

import ccxt
import ccxt.pro

from exporter.backoff import Backoff
from exporter.collectors.backfill import DEFAULT_TIMEOUT_SECONDS, Backfill
from exporter.collectors.ccxt_hooks import guarded_exchange_class
from exporter.collectors.ccxt_stream import CcxtTransport
from exporter.collectors.intake import FrameIntake
from exporter.collectors.native_stream import NativeTransport
from exporter.collectors.observer import StreamObserver
from exporter.collectors.poll import OpenInterestPoll, PollShared
from exporter.collectors.positioning import PositioningPoll
from exporter.collectors.ratelimitedlog import RateLimitedLog
from exporter.collectors.rest_exchange import RestExchange
from exporter.collectors.retry import Retry
from exporter.collectors.stream import LiquidationStream, Transport
from exporter.health import Stream

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from exporter.collectors.ccxt_types import CcxtExchange, Market
    from exporter.collectors.sink import EventSink
    from exporter.collectors.venue import VenueAdapter
    from exporter.config import ExchangeConfig
    from exporter.health import Health

log = logging.getLogger(__name__)

# Liquidations are taken from each frame as it arrives (intake.py), never from ccxt's cache,
# which data frames do not reach; keep that cache minimal.
LIQUIDATION_CACHE_ROWS: Final = 1


class Collector:
    """Runs one venue (a supervised task: ``name`` and ``run``)."""

    def __init__(
        self,
        venue: VenueAdapter,
        config: ExchangeConfig,
        sink: EventSink,
        health: Health,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        subscribe_timeout: float = 10.0,
        check_interval: float = 0.5,
        request_timeout: float = 10.0,
        backfill_hours: float = 24.0 * 7,
        backfill_timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        """``backfill_hours`` of history per market are fetched at start-up beside the live
        feeds (0 disables the backfill), taking at most ``backfill_timeout`` seconds in all.
        ``clock`` stamps events; ``monotonic`` times deadlines and silences."""
        self.venue = venue
        self.config = config
        self.sink = sink
        self.health = health
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._subscribe_timeout = subscribe_timeout
        self._check_interval = check_interval
        self._request_timeout = request_timeout
        self._backfill_hours = backfill_hours
        self._backfill_timeout = backfill_timeout
        self._warn = RateLimitedLog(clock)
        # Kept across restarts of run(): frames re-sent after a reconnect still count once.
        intake = FrameIntake(
            venue.name,
            venue,
            sink,
            health=health,
            warn=self._warn,
            clock=clock,
            quantity_in_contracts=venue.quantity_in_contracts,
        )
        self.observer = StreamObserver(venue, intake, health, self._warn, monotonic)
        self._intake = intake
        self._backfilled: set[str] = set()

    @property
    def name(self) -> str:
        return self.venue.name

    def make_exchange(self) -> CcxtExchange:
        """A ccxt.pro instance with our URL overrides and frame hooks; plain REST where ccxt
        lacks the venue."""
        venue = self.venue
        if venue.ccxt_class is None:
            rest = RestExchange(venue, self.config.rest_url, self._request_timeout)
            return cast("CcxtExchange", rest)
        base = getattr(ccxt.pro, venue.ccxt_class)
        options = {"liquidationsLimit": LIQUIDATION_CACHE_ROWS, **venue.ccxt_options()}
        settings: dict[str, Any] = {
            "enableRateLimit": True,
            "timeout": int(self._request_timeout * 1000),
            "options": options,
        }
        urls = venue.url_overrides(self.config.rest_url, self.config.ws_url)
        if urls:
            settings["urls"] = urls
        return cast("CcxtExchange", guarded_exchange_class(base)(settings, self.observer))

    def make_backfill(self, exchange: CcxtExchange) -> Backfill:
        return Backfill(
            self.venue,
            exchange,
            self.sink,
            hours=self._backfill_hours,
            timeout=self._backfill_timeout,
            done=self._backfilled,
            health=self.health,
            warn=self._warn,
            clock=self._clock,
            monotonic=self._monotonic,
            sleep=self._sleep,
        )

    def _transport(self, exchange: CcxtExchange) -> Transport:
        if self.config.transport == "native" or not self.venue.CCXT_STREAMS:
            return NativeTransport(
                self.venue,
                exchange,
                self.observer,
                ws_url=self.config.ws_url,
                subscribe_timeout=self._subscribe_timeout,
                check_interval=self._check_interval,
                connect_timeout=self._request_timeout,
                monotonic=self._monotonic,
                sleep=self._sleep,
            )
        return CcxtTransport(
            self.venue,
            exchange,
            self.observer,
            subscribe_timeout=self._subscribe_timeout,
            check_interval=self._check_interval,
        )

    async def run(self) -> None:
        exchange = self.make_exchange()
        retry = Retry(self.name, self.health, self._warn, self.venue.RETRY_AFTER_UNIT)
        serving = False
        try:
            serving = await self._serves_markets(exchange, retry)
        finally:
            if not serving:  # idle, or cancelled while loading markets
                await exchange.close()
        if not serving:
            # Until cancelled: a collector that returned would be restarted and counted.
            await asyncio.get_running_loop().create_future()
            return
        transport = self._transport(exchange)
        backfill = self.make_backfill(exchange)
        stream = LiquidationStream(
            exchange=exchange,
            transport=transport,
            observer=self.observer,
            intake=self._intake,
            resolve_symbols=self.resolve_symbols,
            every_market=self.venue.every_market,
            other_shards=self.other_shards,
            health=self.health,
            retry=retry,
            venue=self.name,
            sleep=self._sleep,
        )
        poll = OpenInterestPoll(
            self.venue,
            exchange,
            self.sink,
            interval=self.config.poll_interval_seconds,
            shared=self._poll_shared(retry),
            first_poll=backfill.begin,
        )
        positioning = self._positioning_poll(exchange, retry)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(stream.run())
                group.create_task(poll.run())
                group.create_task(backfill.run())
                if positioning is not None:
                    group.create_task(positioning.run())
        finally:
            for stream_name in Stream:
                self.health.mark_down(self.name, stream_name)
            await transport.close()
            await exchange.close()

    def _positioning_poll(self, exchange: CcxtExchange, retry: Retry) -> PositioningPoll | None:
        """The long/short-ratio poll, if the venue publishes ratios and it is not turned off."""
        interval = self.config.positioning_interval_seconds
        if not self.venue.POSITIONING or interval == 0:
            return None
        return PositioningPoll(
            self.venue, exchange, self.sink, interval=interval, shared=self._poll_shared(retry)
        )

    def _poll_shared(self, retry: Retry) -> PollShared:
        return PollShared(
            resolve_symbols=self.resolve_symbols,
            health=self.health,
            retry=retry,
            warn=self._warn,
            clock=self._clock,
            sleep=self._sleep,
            request_timeout=self._request_timeout,
        )

    async def _serves_markets(self, exchange: CcxtExchange, retry: Retry) -> bool:
        """Whether this replica serves any market of the venue: with a shard, load the markets
        first (failures retried as a poll's, on the open-interest stream), log how many of the
        venue's markets the shard serves, and mark the venue idle if none. Unsharded: True,
        and nothing asked before the stream and polls start as they always did."""
        shard = self.venue.shard
        if shard.whole:
            return True
        backoff = Backoff(initial=1.0, cap=60.0)
        while True:
            try:
                await exchange.load_markets()
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - sorted by Retry; the loop must live
                headers = exchange.last_response_headers
                await self._sleep(retry.failed(Stream.OPEN_INTEREST, exc, backoff, headers))
        every = self._covered(exchange)
        served = [s for s in every if self.venue.owns(s)]
        if every and not served:  # none listed at all: the stream and polls say so, as before
            log.info("shard %s serves no market of %s; it idles here", shard, self.name)
            self.health.idle(self.name)
            return False
        log.info(
            "shard %s: serving %d of %d markets of %s", shard, len(served), len(every), self.name
        )
        return True

    def _covered(self, exchange: CcxtExchange) -> list[str]:
        """The listed markets the configuration covers over all shards."""
        if self.config.all_symbols:
            return self.venue.listed_markets(exchange)
        markets = exchange.markets or {}
        return [s for s in self._configured(markets) if s in markets]

    def _configured(self, markets: Mapping[str, Market]) -> list[str]:
        """The configured symbols, a bare coin as the venue's main perpetual of it."""
        return [s if "/" in s else self.venue.market_of(s, markets) for s in self.config.symbols]

    def other_shards(self, exchange: CcxtExchange) -> frozenset[str]:
        """The covered markets other shards serve (their liquidations on an all-market feed
        are counted as left to them)."""
        if self.venue.shard.whole:
            return frozenset()
        return frozenset(s for s in self._covered(exchange) if not self.venue.owns(s))

    def resolve_symbols(self, exchange: CcxtExchange) -> list[str] | None:
        """Configured symbols that the exchange lists and this shard serves (None: all of its
        shard's); unknown ones are skipped. A bare coin means the venue's main perpetual of
        it (``VenueAdapter.coin_symbol``)."""
        if self.config.all_symbols:
            return None
        markets = exchange.markets or {}
        wanted = self._configured(markets)
        known = [s for s in wanted if s in markets]
        for symbol in wanted:
            if symbol not in markets:
                self._warn.warning(
                    f"symbol:{symbol}", "%s: %s is not listed; skipping it", self.name, symbol
                )
        if not known:
            raise ccxt.BadSymbol(f"none of {', '.join(wanted)} is listed")
        known = [s for s in known if self.venue.owns(s)]  # not empty: else the venue idles
        limit = self.venue.MAX_MARKETS
        if limit is not None and len(known) > limit:
            self._warn.warning(
                "symbols:limit",
                "%s: %d symbols configured, one connection takes %d; watching the first %d",
                self.name,
                len(known),
                limit,
                limit,
            )
            return known[:limit]
        return known
