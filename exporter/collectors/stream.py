"""The liquidation stream of one venue, kept up: (re)connect through a transport, subscribe,
mark the stream up once acknowledged, and on any failure count it and retry with backoff.

The transport (ccxt_stream.py: ccxt.pro; native_stream.py: the exporter's own aiohttp client)
holds one connection until it fails; frames reach the ``StreamObserver`` either way.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol

from exporter.backoff import Backoff
from exporter.collectors.intake import markets_by_id
from exporter.health import Stream

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from exporter.collectors.ccxt_types import CcxtExchange
    from exporter.collectors.intake import FrameIntake
    from exporter.collectors.observer import StreamObserver
    from exporter.collectors.retry import Retry
    from exporter.health import Health

log = logging.getLogger(__name__)


class Transport(Protocol):
    async def connection(self, symbols: Sequence[str] | None, check: Callable[[], None]) -> None:
        """Connect, subscribe to ``symbols`` (None: every market) and receive until the
        connection fails (raise). Call ``check`` at least every ``check_interval`` seconds."""
        ...

    async def close(self) -> None:
        """Drop the connection, if any (after a failure, or at shutdown)."""
        ...


class LiquidationStream:
    def __init__(
        self,
        *,
        exchange: CcxtExchange,
        transport: Transport,
        observer: StreamObserver,
        intake: FrameIntake,
        resolve_symbols: Callable[[CcxtExchange], list[str] | None],
        every_market: Callable[[CcxtExchange], list[str]],
        other_shards: Callable[[CcxtExchange], frozenset[str]],
        health: Health,
        retry: Retry,
        venue: str,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._exchange = exchange
        self._transport = transport
        self._observer = observer
        self._intake = intake
        self._resolve_symbols = resolve_symbols
        self._every_market = every_market
        self._other_shards = other_shards
        self._health = health
        self._retry = retry
        self._venue = venue
        self._sleep = sleep
        self._backoff = Backoff(initial=1.0, cap=60.0)

    async def run(self) -> None:
        while True:
            try:
                await self._connection()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - sorted by Retry; the loop must live
                delay = self._retry.failed(Stream.LIQUIDATIONS, exc, self._backoff)
                await self._transport.close()
                await self._sleep(delay)

    async def _connection(self) -> None:
        exchange = self._exchange
        await exchange.load_markets()
        symbols = self._resolve_symbols(exchange)
        # ``symbols: all`` keeps what the venue module covers in this shard (an all-market feed
        # also brings markets it does not: Bitfinex's EURt perpetuals, Binance's dated futures,
        # other shards' markets).
        wanted = frozenset(symbols if symbols is not None else self._every_market(exchange))
        markets = markets_by_id(exchange.markets or {})
        self._intake.use_markets(markets, wanted, self._other_shards(exchange))
        await self._transport.connection(symbols, self._check)

    def _check(self) -> None:
        """Mark the stream up once subscribed; raises when rejected or overdue."""
        if self._observer.subscribed():
            if not self._health.stream_healthy(self._venue, Stream.LIQUIDATIONS):
                log.info("%s: liquidation stream subscribed", self._venue)
            self._health.mark_up(self._venue, Stream.LIQUIDATIONS)
            self._backoff.reset()
