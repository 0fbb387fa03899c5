"""Shared machinery of a fake venue: sockets, subscriptions, the sent-frame log and faults.

One `FakeExchange` is one venue on its own loopback port. Everything venue-specific (paths,
JSON shapes, acks, errors, frame packing) comes from a `VenueProtocol`; this module only decides
who receives what, when, and what goes wrong on purpose.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from contextlib import suppress
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, cast

from aiohttp import WSCloseCode, WSMsgType, web

from exporter.fakeexchange.binance import BinanceProtocol
from exporter.fakeexchange.binance_coinm import BinanceCoinmProtocol
from exporter.fakeexchange.bitfinex import BitfinexProtocol
from exporter.fakeexchange.bitget import BitgetProtocol
from exporter.fakeexchange.bitmex import BitmexProtocol
from exporter.fakeexchange.bybit import BybitProtocol
from exporter.fakeexchange.bybit_inverse import BybitInverseProtocol
from exporter.fakeexchange.deribit import DeribitProtocol
from exporter.fakeexchange.dydx import DydxProtocol
from exporter.fakeexchange.faults import RestFaults
from exporter.fakeexchange.gate import GateProtocol
from exporter.fakeexchange.history import FakeHistory, default_history
from exporter.fakeexchange.htx import HtxProtocol
from exporter.fakeexchange.kraken import KrakenProtocol
from exporter.fakeexchange.markets import (
    DEFAULT_MARKETS,
    FakeMarket,
    MarketState,
)
from exporter.fakeexchange.okx import OkxProtocol
from exporter.fakeexchange.protocol import (
    ALL_MARKETS,
    IgnoredRequest,
    InvalidRequest,
    Liquidation,
    PingRequest,
    Quote,
    RestContext,
    RestReply,
    Side,
    SubscribeRequest,
    VenueProtocol,
    text_reply,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import numpy.typing as npt

    from exporter.fakeexchange.protocol import Frame
    from exporter.venues import Venue

logger = logging.getLogger(__name__)

PROTOCOLS: Final[dict[Venue, type[VenueProtocol]]] = {
    "binance": BinanceProtocol,
    "bybit": BybitProtocol,
    "okx": OkxProtocol,
    "binance_coinm": BinanceCoinmProtocol,
    "bybit_inverse": BybitInverseProtocol,
    "gate": GateProtocol,
    "htx": HtxProtocol,
    "bitget": BitgetProtocol,
    "deribit": DeribitProtocol,
    "dydx": DydxProtocol,
    "kraken": KrakenProtocol,
    "bitfinex": BitfinexProtocol,
    "bitmex": BitmexProtocol,
}
"""Venue -> wire format (every venue of ``exporter.venues`` has one: tests/test_venues.py)."""

_CLOSE_TIMEOUT_S: Final = 1.0
_SIDES: Final = ("long", "short")


@dataclass(frozen=True)
class SentFrame:
    """Ground truth for one thing put on the wire.

    A published liquidation gives one row; liquidations packed into one WebSocket frame share
    `frame_id` and `raw`. A raw payload (`send_raw`) gives one row per liquidation the venue
    format decodes from it, or a single row with the liquidation fields None (pongs, garbage).
    `receivers` is how many connections the frame was queued to.
    """

    venue: str
    frame_id: int
    raw: str | bytes
    receivers: int
    symbol: str | None = None
    side: Side | None = None
    price: float | None = None
    coins: float | None = None
    usd: float | None = None
    ts_ms: int | None = None

    @classmethod
    def of(
        cls,
        venue: str,
        frame_id: int,
        raw: str | bytes,
        receivers: int,
        liq: Liquidation,
    ) -> SentFrame:
        """The row for one liquidation carried by a frame."""
        return cls(
            venue,
            frame_id,
            raw,
            receivers,
            liq.symbol,
            liq.side,
            liq.price,
            liq.coins,
            liq.price * liq.coins,
            liq.ts_ms,
        )


@dataclass(eq=False)
class _Connection:
    """One accepted WebSocket: its subscriptions and an ordered outbox drained by one task."""

    number: int
    conn_id: str
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    keys: set[str] = field(default_factory=set)
    outbox: asyncio.Queue[str | bytes] = field(default_factory=asyncio.Queue)

    def covers(self, symbol: str) -> bool:
        """Whether a frame for `symbol` reaches this connection."""
        return ALL_MARKETS in self.keys or symbol in self.keys

    def discard_outbox(self) -> None:
        """Forget unsent frames so nobody waits on a dead connection's queue."""
        while not self.outbox.empty():
            self.outbox.get_nowait()
            self.outbox.task_done()


class FakeExchange:
    """One venue speaking its real REST and WebSocket protocol on 127.0.0.1.

    Point unmodified ccxt.pro at it with `ccxt_config()`; drive it with `set_market_state`,
    `publish_liquidation` and the fault knobs; read back `sent`, counters and `wait_subscribed`.
    """

    def __init__(
        self,
        venue: Venue,
        *,
        markets: Sequence[FakeMarket] | None = None,
        clock: Callable[[], int] | None = None,
        log_limit: int | None = None,
    ) -> None:
        """``log_limit`` bounds the ``sent``/``received`` logs to their newest rows: the demo
        runs for days, tests want the whole ground truth (the default, unbounded)."""
        if venue not in PROTOCOLS:
            raise ValueError(f"unknown venue {venue!r}; expected one of {sorted(PROTOCOLS)}")
        self.venue: Venue = venue
        # A table of the caller's is the whole listing; the default one has the venue's extras.
        self._protocol = PROTOCOLS[venue](
            DEFAULT_MARKETS if markets is None else markets, extra=markets is None
        )
        self.ccxt_id: str = self._protocol.ccxt_id
        self._clock = clock or _wall_clock_ms
        now = self._clock()
        self._state: dict[str, MarketState] = {
            symbol: MarketState.at(m.mark_price, m.open_interest_coins, now)
            for symbol, m in self._protocol.markets.items()
        }
        self._history: dict[str, FakeHistory] = {}
        self._routes = self._protocol.rest_routes()
        self._faults = RestFaults()
        self._connections: dict[int, _Connection] = {}
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._rest_url = ""
        self._ws_url = ""
        self._frame_seq = 0

        self.sent: collections.deque[SentFrame] = collections.deque(maxlen=log_limit)
        self.received: collections.deque[str] = collections.deque(maxlen=log_limit)
        self.connections_total = 0
        self.subscriptions_total = 0
        self.pings_total = 0
        self.rest_requests: collections.Counter[str] = collections.Counter()
        # Each REST request's path and query, oldest first (which markets were asked for).
        self.rest_log: collections.deque[tuple[str, dict[str, str]]] = collections.deque(
            maxlen=log_limit
        )
        self.subscribe_mode: Literal["ack", "reject", "ignore"] = "ack"
        self.ping_mode: Literal["answer", "ignore"] = "answer"
        self.rest_delay = 0.0
        self._holds: list[tuple[str, asyncio.Event]] = []

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on host:port (0 picks a free port) and fill in `rest_url` / `ws_url`."""
        if self._runner is not None:
            raise RuntimeError(f"{self.venue} fake exchange already started")
        app = web.Application()
        for path in self._protocol.ws_paths:
            app.router.add_get(path, self._ws_handler)
        app.router.add_route("*", "/{tail:.*}", self._rest_handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self._rest_url = f"http://{bound_host}:{bound_port}"
        self._ws_url = f"ws://{bound_host}:{bound_port}"
        logger.info("fake %s listening on %s", self.venue, self._rest_url)

    async def stop(self) -> None:
        """Close every WebSocket (1001 going away), then the listener."""
        connections = list(self._connections.values())
        await asyncio.gather(*(self._close(c) for c in connections))
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _close(self, conn: _Connection) -> None:
        self._forget(conn)
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
        except TimeoutError:
            _abort(conn)

    @property
    def rest_url(self) -> str:
        """REST root, e.g. http://127.0.0.1:PORT (venue paths hang below it)."""
        return self._started(self._rest_url)

    @property
    def ws_url(self) -> str:
        """WebSocket root, e.g. ws://127.0.0.1:PORT."""
        return self._started(self._ws_url)

    def _started(self, url: str) -> str:
        if not url:
            raise RuntimeError(f"{self.venue} fake exchange not started")
        return url

    @property
    def symbols(self) -> list[str]:
        """Every listed market's unified symbol, in table order (BTC, ETH, SOL first)."""
        return list(self._protocol.markets)

    def market(self, symbol: str) -> FakeMarket:
        """The listed market of a unified symbol (its tick and lot sizes)."""
        return self._protocol.market(symbol)

    def symbol_of(self, coin: str) -> str:
        """The unified symbol of ``coin``'s market here (``BTC/USDT:USDT``, ``BTC/USD:BTC``)."""
        found = [s for s, m in self._protocol.markets.items() if m.base == coin]
        if not found:
            raise KeyError(f"{self.venue}: no market of {coin}")
        return found[0]

    def ccxt_config(self) -> dict[str, Any]:
        """ccxt constructor overrides (urls/options) pointing this venue's class here."""
        return self._protocol.ccxt_config(self.rest_url, self.ws_url)

    # --- market state -------------------------------------------------------------------

    def set_market_state(
        self,
        symbol: str,
        *,
        open_interest_coins: float,
        mark_price: float,
        index_price: float | None = None,
        funding_rate: float | None = None,
        predicted_funding_rate: float | None = None,
        funding_interval_hours: int | None = None,
        long_short: Mapping[str, float] | None = None,
    ) -> None:
        """What REST reports for `symbol` (unified) from now on. The index price defaults to
        just under the mark; funding and long/short ratios not given stay as they were."""
        self._protocol.market(symbol)
        current = self._state[symbol]
        self._state[symbol] = MarketState(
            mark_price,
            open_interest_coins,
            self._clock(),
            index_price
            if index_price is not None
            else MarketState.at(mark_price, 0, 0).index_price,
            current.funding_rate if funding_rate is None else funding_rate,
            current.predicted_funding_rate
            if predicted_funding_rate is None
            else predicted_funding_rate,
            current.funding_interval_hours
            if funding_interval_hours is None
            else funding_interval_hours,
            current.long_short if long_short is None else MappingProxyType(dict(long_short)),
        )

    def set_history(
        self,
        symbol: str,
        *,
        timestamps_ms: npt.ArrayLike,
        open_interest_coins: npt.ArrayLike,
        open: npt.ArrayLike,  # noqa: A002 - the venues' own name for the column
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
    ) -> None:
        """What the history endpoints serve for `symbol` from now on: 5-minute rows, oldest
        first, timestamps the candle open times in ms, open interest in coins."""
        self._protocol.market(symbol)
        self._history[symbol] = FakeHistory.of(
            timestamps_ms=timestamps_ms,
            open_interest_coins=open_interest_coins,
            open=open,
            high=high,
            low=low,
            close=close,
        )

    def history(self, symbol: str) -> FakeHistory:
        """What the history endpoints serve for `symbol`: `set_history`'s arrays, else the
        packaged BTC path ending now, scaled to the market's current state (fixed on first use).
        """
        self._protocol.market(symbol)
        found = self._history.get(symbol)
        if found is None:
            state = self._state[symbol]
            found = default_history(self._clock(), state.mark_price, state.open_interest_coins)
            self._history[symbol] = found
        return found

    def _quotes(self) -> list[Quote]:
        markets = self._protocol.markets
        return [Quote(markets[symbol], state) for symbol, state in self._state.items()]

    # --- liquidations -------------------------------------------------------------------

    def publish_liquidation(
        self,
        symbol: str,
        side: Literal["long", "short"],
        price: float,
        coins: float,
        ts_ms: int,
    ) -> SentFrame:
        """Send one liquidation (side = position liquidated) to the symbol's subscribers."""
        return self.publish_batch([(symbol, side, price, coins, ts_ms)])[0]

    def publish_batch(
        self,
        items: Sequence[tuple[str, str, float, float, int]],
    ) -> list[SentFrame]:
        """Send several liquidations, packed per symbol as the venue packs them.

        Returns one row per item, in input order; packed items share `frame_id`.
        """
        liquidations = [self._liquidation(*item) for item in items]
        rows: dict[int, SentFrame] = {}
        for frame in self._protocol.encode(liquidations):
            for liq, row in zip(frame.liquidations, self._broadcast(frame), strict=True):
                rows[id(liq)] = row
        return [rows[id(liq)] for liq in liquidations]

    def encode(self, items: Sequence[tuple[str, str, float, float, int]]) -> list[Frame]:
        """The frames ``publish_batch`` would send for ``items``, to send later with
        ``publish_frames`` (a benchmark encodes before it starts its clock)."""
        return self._protocol.encode([self._liquidation(*item) for item in items])

    def publish_frames(self, frames: Sequence[Frame]) -> None:
        """Send frames made by ``encode`` to their symbols' subscribers, without waiting."""
        for frame in frames:
            self._broadcast(frame)

    def _liquidation(
        self,
        symbol: str,
        side: str,
        price: float,
        coins: float,
        ts_ms: int,
    ) -> Liquidation:
        self._protocol.market(symbol)
        if side not in _SIDES:
            raise ValueError(f"side must be 'long' or 'short', got {side!r}")
        if price <= 0 or coins <= 0:
            raise ValueError(f"price and coins must be positive, got {price!r}, {coins!r}")
        return self._protocol.quantize(Liquidation(symbol, cast("Side", side), price, coins, ts_ms))

    def _broadcast(self, frame: Frame) -> list[SentFrame]:
        receivers = [c for c in self._connections.values() if c.covers(frame.symbol)]
        for conn in receivers:
            conn.outbox.put_nowait(frame.text)
        frame_id = self._next_frame_id()
        rows = [
            SentFrame.of(self.venue, frame_id, frame.text, len(receivers), liq)
            for liq in frame.liquidations
        ]
        self.sent.extend(rows)
        return rows

    async def send_raw(self, payload: str | bytes) -> None:
        """Send verbatim to every connection (text or binary) and wait until it is written."""
        receivers = self.queue_raw(payload)
        await asyncio.gather(*(conn.outbox.join() for conn in receivers))

    def queue_raw(self, payload: str | bytes) -> list[_Connection]:
        """Queue ``payload`` verbatim for every connection without waiting (bursts); logs it
        like a published frame. Returns the connections it was queued for."""
        receivers = list(self._connections.values())
        for conn in receivers:
            conn.outbox.put_nowait(payload)
        frame_id = self._next_frame_id()
        text = payload if isinstance(payload, str) else _utf8_or_empty(payload)
        try:
            decoded = self._protocol.decode(text) if text else []
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            decoded = []  # not a well-formed liquidation frame (fuzzing): logged raw only
        if decoded:
            self.sent.extend(
                SentFrame.of(self.venue, frame_id, payload, len(receivers), liq) for liq in decoded
            )
        else:
            self.sent.append(SentFrame(self.venue, frame_id, payload, len(receivers)))
        return receivers

    def _next_frame_id(self) -> int:
        self._frame_seq += 1
        return self._frame_seq

    def subscriptions(self) -> list[frozenset[str]]:
        """The acknowledged subscriptions of each open connection: unified symbols, or
        ``ALL_MARKETS`` for a channel that carries every market."""
        return [frozenset(c.keys) for c in self._connections.values()]

    # --- waiting ------------------------------------------------------------------------

    async def wait_subscribed(
        self,
        symbols: Sequence[str] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 -- the public API takes a deadline like wait_for
    ) -> None:
        """Return once acknowledged subscriptions cover `symbols` (None: any subscription)."""
        wanted = set(symbols or ())
        for symbol in wanted:
            self._protocol.market(symbol)

        def covered() -> bool:
            keys = set().union(*(c.keys for c in self._connections.values()))
            if symbols is None:
                return bool(keys)
            return ALL_MARKETS in keys or wanted <= keys

        try:
            async with asyncio.timeout(timeout):
                while not covered():
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(
                f"{self.venue}: no subscription covering {symbols or 'anything'} "
                f"within {timeout} s (subscribe_mode={self.subscribe_mode})",
            ) from None

    def _notify(self) -> None:
        """Wake every waiter; each re-checks its own condition."""
        self._changed.set()
        self._changed = asyncio.Event()

    # --- faults -------------------------------------------------------------------------

    async def drop_connections(self) -> int:
        """Abort every WebSocket's TCP connection without a close frame; returns how many."""
        connections = list(self._connections.values())
        for conn in connections:
            self._forget(conn)
            _abort(conn)
        logger.info("fake %s dropped %d connection(s)", self.venue, len(connections))
        return len(connections)

    def fail_rest(
        self,
        status: int,
        count: int = 1,
        retry_after: float | None = None,
        path_prefix: str = "",
    ) -> None:
        """Answer the next `count` REST requests under `path_prefix` with the venue's error."""
        self._faults.arm(status, count, retry_after, path_prefix)

    def hold_rest(self, path_prefix: str) -> asyncio.Event:
        """Keep REST requests under ``path_prefix`` waiting until the returned event is set
        (a test's way to keep, say, the history backfill going as long as it likes)."""
        release = asyncio.Event()
        self._holds.append((path_prefix, release))
        return release

    # --- REST ---------------------------------------------------------------------------

    async def _rest_handler(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.rest_requests[path] += 1
        self.rest_log.append((path, dict(request.query)))
        for prefix, release in self._holds:
            if path.startswith(prefix):
                await release.wait()
        if self.rest_delay > 0:
            await asyncio.sleep(self.rest_delay)
        reply = self._rest_reply(request)
        return web.Response(
            status=reply.status,
            text=reply.body,
            content_type=reply.content_type,
            headers=dict(reply.headers),
        )

    def _rest_reply(self, request: web.Request) -> RestReply:
        fault = self._faults.take(request.path)
        if fault is not None:
            reply = self._protocol.rest_error(fault.status)
            if fault.retry_after is None:
                return reply
            wait = fault.retry_after / self._protocol.RETRY_AFTER_UNIT
            headers = {**reply.headers, "Retry-After": f"{wait:g}"}
            return RestReply(reply.status, reply.body, reply.content_type, headers)
        handler = self._routes.get(request.path)
        if handler is None or request.method != "GET":
            logger.warning(
                "fake %s: no endpoint for %s %s", self.venue, request.method, request.path_qs
            )
            return text_reply(404, "404 Not Found")
        ctx = RestContext(dict(request.query), self._quotes(), self._clock(), self.history)
        return handler(ctx)

    # --- WebSocket ----------------------------------------------------------------------

    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False, timeout=_CLOSE_TIMEOUT_S)
        await ws.prepare(request)
        self.connections_total += 1
        conn = _Connection(
            self.connections_total, self._protocol.new_conn_id(), ws, request.transport
        )
        self._connections[conn.number] = conn
        for text in self._protocol.greeting(conn.conn_id):
            conn.outbox.put_nowait(text)
        writer = asyncio.create_task(self._write_loop(conn), name=f"fake-{self.venue}-writer")
        logger.debug("fake %s: connection %d on %s", self.venue, conn.number, request.path)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._on_text(conn, msg.data)
                elif msg.type is WSMsgType.PING:
                    await self._on_protocol_ping(conn, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    logger.warning("fake %s: ignoring binary frame from client", self.venue)
        finally:
            self._forget(conn)
            writer.cancel()
            with suppress(asyncio.CancelledError):
                await writer
            conn.discard_outbox()
        return ws

    async def _write_loop(self, conn: _Connection) -> None:
        """Drain the outbox in order; after a send error keep draining so joins return."""
        broken = False
        while True:
            payload = await conn.outbox.get()
            try:
                if not broken:
                    wired = self._protocol.wire(payload) if isinstance(payload, str) else payload
                    if isinstance(wired, str):
                        await conn.ws.send_str(wired)
                    else:
                        await conn.ws.send_bytes(wired)
            except ConnectionError as exc:
                broken = True
                logger.debug("fake %s: connection %d gone: %s", self.venue, conn.number, exc)
            finally:
                conn.outbox.task_done()

    def _on_text(self, conn: _Connection, text: str) -> None:
        self.received.append(text)
        inbound = self._protocol.parse(text)
        if isinstance(inbound, PingRequest):
            self.pings_total += 1
            if self.ping_mode == "answer":
                conn.outbox.put_nowait(self._protocol.pong(inbound, conn.conn_id))
        elif isinstance(inbound, SubscribeRequest):
            self._on_subscribe(conn, inbound)
        elif isinstance(inbound, IgnoredRequest):
            logger.debug("fake %s: took %r without an answer", self.venue, text[:200])
        elif isinstance(inbound, InvalidRequest):
            logger.warning("fake %s: invalid request %r", self.venue, text[:200])
            for answer in self._protocol.invalid(inbound, conn.conn_id):
                conn.outbox.put_nowait(answer)

    def _on_subscribe(self, conn: _Connection, request: SubscribeRequest) -> None:
        if request.op == "unsubscribe":
            conn.keys -= request.keys
            answers = self._protocol.ack(request, conn.conn_id)
        else:
            self.subscriptions_total += 1
            if self.subscribe_mode == "ignore":
                return
            if self.subscribe_mode == "reject" or request.invalid:
                answers = self._protocol.reject(request, conn.conn_id)
            else:
                # Register before queueing the ack: whatever is published once a waiter sees
                # the subscription is queued behind the ack and reaches the client.
                conn.keys |= request.keys
                answers = self._protocol.ack(request, conn.conn_id)
        for answer in answers:
            conn.outbox.put_nowait(answer)
        self._notify()

    async def _on_protocol_ping(self, conn: _Connection, data: bytes) -> None:
        self.pings_total += 1
        if self.ping_mode == "answer":
            with suppress(ConnectionError):
                await conn.ws.pong(data)

    def _forget(self, conn: _Connection) -> None:
        """Stop routing to a connection: it no longer counts as subscribed."""
        if self._connections.pop(conn.number, None) is not None:
            conn.keys.clear()
            self._notify()


def _abort(conn: _Connection) -> None:
    if conn.transport is not None:
        conn.transport.abort()


def _utf8_or_empty(payload: bytes) -> str:
    try:
        return payload.decode()
    except UnicodeDecodeError:
        return ""


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000
