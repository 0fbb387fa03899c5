"""The liquidation stream through ccxt.pro: its watch calls hold the subscriptions, and its
receive callback, hooked (ccxt_hooks.py), hands every frame to the ``StreamObserver``."""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from exporter.collectors.ccxt_types import CcxtExchange
    from exporter.collectors.observer import StreamObserver
    from exporter.collectors.venue import VenueAdapter


class CcxtTransport:
    def __init__(
        self,
        venue: VenueAdapter,
        exchange: CcxtExchange,
        observer: StreamObserver,
        *,
        subscribe_timeout: float,
        check_interval: float,
    ) -> None:
        self._venue = venue
        self._exchange = exchange
        self._observer = observer
        self._subscribe_timeout = subscribe_timeout
        self._check_interval = check_interval

    async def connection(self, symbols: Sequence[str] | None, check: Callable[[], None]) -> None:
        self._observer.subscribing(self._venue.expected_acks(symbols), self._subscribe_timeout)
        calls = self._venue.watch_calls(self._exchange, symbols)
        pending = {asyncio.ensure_future(call()): call for call in calls}
        try:
            while True:
                # The watches end only with what ccxt raises (disconnects, rejections): data
                # frames reach the observer, never the watches' results.
                done, _ = await asyncio.wait(
                    pending, timeout=self._check_interval, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    call = pending.pop(task)
                    task.result()
                    pending[asyncio.ensure_future(call())] = call
                check()
        finally:
            for task in pending:
                task.cancel()
            for task in pending:
                with suppress(asyncio.CancelledError, Exception):
                    await task

    async def close(self) -> None:
        with suppress(Exception):
            await self._exchange.close_ws_clients()
