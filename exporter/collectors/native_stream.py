"""The liquidation stream over the exporter's own aiohttp WebSocket client, for venues whose
liquidation feed ccxt.pro does not stream (and, behind ``transport: native``, for any venue).

One connection at a time: connect, send the venue's subscribe requests, keep it alive (an
application-level ping, or WebSocket ping frames through aiohttp's heartbeat), and hand every
frame to the ``StreamObserver`` exactly as the ccxt hooks do. Anything that ends the connection
(a close, an error, a frame over the size limit, silence past the keepalive) raises, and the
stream's loop reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Final

import aiohttp
from aiohttp import WSCloseCode, WSMsgType

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from exporter.collectors.ccxt_types import CcxtExchange
    from exporter.collectors.observer import StreamObserver
    from exporter.collectors.venue import VenueAdapter

log = logging.getLogger(__name__)

# The same limit as ccxt.pro's client, so both transports lose (and count) the same frames.
MAX_FRAME_BYTES: Final = 10 * 1024 * 1024
# Keepalive intervals without a frame (not even the answer to a ping) before the connection is
# taken as dead.
KEEPALIVE_MISSES: Final = 3


class ConnectionLostError(ConnectionError):
    """The venue closed the connection, or it went silent."""


class NativeTransport:
    def __init__(
        self,
        venue: VenueAdapter,
        exchange: CcxtExchange,
        observer: StreamObserver,
        *,
        ws_url: str | None,
        subscribe_timeout: float,
        check_interval: float,
        connect_timeout: float,
        monotonic: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        """``exchange`` is only read for its markets (the venue ids to subscribe to)."""
        self._venue = venue
        self._feed = venue.NATIVE
        self._url = venue.NATIVE.url(ws_url)
        self._exchange = exchange
        self._observer = observer
        self._subscribe_timeout = subscribe_timeout
        self._check_interval = check_interval
        self._connect_timeout = connect_timeout
        self._monotonic = monotonic
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None
        self._last_frame = 0.0  # monotonic time of the latest frame of the connection

    async def connection(self, symbols: Sequence[str] | None, check: Callable[[], None]) -> None:
        markets = self._exchange.markets or {}
        if symbols is None and not self._feed.all_markets_channel:
            symbols = self._venue.every_market(self._exchange)
        ids = None if symbols is None else [str(markets[s]["id"]) for s in symbols]
        requests = self._venue.native_subscriptions(ids)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        feed = self._feed
        async with asyncio.timeout(self._connect_timeout):
            ws = await self._session.ws_connect(
                self._url,
                autoping=True,
                # Without an application-level ping: WebSocket pings, and aiohttp drops the
                # connection when the pong does not come.
                heartbeat=None if feed.keepalive else feed.keepalive_seconds,
                max_msg_size=MAX_FRAME_BYTES,
            )
        self._observer.subscribing(len(requests), self._subscribe_timeout)
        self._last_frame = self._monotonic()
        # A helper that fails records why and closes the connection; the receive loop then
        # raises that reason. Both helpers end with the connection, whatever ends it.
        failure: list[Exception] = []
        helpers: list[asyncio.Task[None]] = []
        try:
            for request in requests:
                await ws.send_str(self._venue.encode(request))
            if feed.keepalive is not None or feed.ping_always:
                helpers.append(asyncio.create_task(self._keepalive(ws, feed.keepalive, failure)))
            helpers.append(asyncio.create_task(self._watchdog(ws, check, failure)))
            await self._receive(ws, failure)
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await ws.close()

    async def _keepalive(
        self, ws: aiohttp.ClientWebSocketResponse, ping: str | None, failure: list[Exception]
    ) -> None:
        """The application-level ``ping`` (None: a WebSocket ping frame) on a fixed cadence."""
        try:
            while True:
                await self._sleep(self._feed.keepalive_seconds)
                if ping is None:
                    await ws.ping()
                else:
                    await ws.send_str(ping)
        except Exception as exc:  # noqa: BLE001 - handed to the receive loop, which raises it
            failure.append(exc)
            await ws.close()

    async def _watchdog(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        check: Callable[[], None],
        failure: list[Exception],
    ) -> None:
        """Every ``check_interval``: the subscription's state, and silence past the keepalive.
        A failure closes the connection, and the receive loop raises it: a timer per frame
        would cost the receive loop a fifth of its speed."""
        # The venue answers an application-level ping with a frame, so silence means a dead
        # connection; WebSocket pongs never reach us (aiohttp's heartbeat watches those).
        silence = (
            self._feed.keepalive_seconds * KEEPALIVE_MISSES
            if self._feed.keepalive is not None
            else float("inf")
        )
        try:
            while True:
                await self._sleep(self._check_interval)
                self._require_traffic(silence)
                check()
        except Exception as exc:  # noqa: BLE001 - handed to the receive loop, which raises it
            failure.append(exc)
            await ws.close()

    def _require_traffic(self, silence: float) -> None:
        quiet = self._monotonic() - self._last_frame
        if quiet > silence:
            raise ConnectionLostError(f"no frame for {quiet:.0f}s")

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse, failure: list[Exception]) -> None:
        observer = self._observer
        monotonic = self._monotonic
        venue = self._venue
        while True:
            message = await ws.receive()
            if message.type is WSMsgType.TEXT:
                answer = _decoded(venue, observer, message.data)
                if answer is not None:
                    await ws.send_str(answer)
            elif message.type is WSMsgType.BINARY:
                try:
                    text = venue.decode_binary(message.data)
                except Exception as exc:  # noqa: BLE001 - bad bytes are a malformed frame
                    observer.on_malformed(message.data, ValueError(f"a binary frame: {exc}"))
                else:
                    answer = _decoded(venue, observer, text)
                    if answer is not None:
                        await ws.send_str(answer)
            elif message.type is WSMsgType.ERROR:
                error = message.data
                if getattr(error, "code", None) == WSCloseCode.MESSAGE_TOO_BIG:
                    observer.on_frame_too_large(error)
                raise ConnectionLostError(f"WebSocket error: {error}")
            else:  # CLOSE, CLOSING, CLOSED (pings and pongs are answered by aiohttp)
                if failure:
                    raise failure[0]
                raise ConnectionLostError(f"closed by the venue (code {ws.close_code})")
            self._last_frame = monotonic()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _decoded(venue: VenueAdapter, observer: StreamObserver, text: str) -> str | None:
    """Decode a text frame as ccxt does (JSON when it looks like JSON, else the bare text,
    e.g. OKX's ``pong``), hand it on, and return the venue's answer to it, if any."""
    message: object = text
    if text[:1] in ("{", "["):
        try:
            message = json.loads(text)
        except ValueError as exc:
            observer.on_malformed(text, exc)
            return None
    observer.on_frame(message)
    return venue.reply(message)
