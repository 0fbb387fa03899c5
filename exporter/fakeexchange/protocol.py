"""The contract between the shared server machinery and one venue's wire format.

`server.py` owns sockets, subscriptions, the sent-frame log and faults; a `VenueProtocol`
subclass owns only bytes on the wire: REST bodies, WebSocket request parsing, acks, errors and
liquidation frames. Keeping the split here lets each venue module read like that venue's docs.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from exporter.fakeexchange.history import FakeHistory
    from exporter.fakeexchange.markets import FakeMarket, MarketState

Side = Literal["long", "short"]

ALL_MARKETS: Final = "*"
"""Subscription key of an all-market stream (Binance `!forceOrder@arr`, OKX instType SWAP)."""


@dataclass(frozen=True)
class Liquidation:
    """One liquidation in venue-neutral terms; `side` is the side of the position liquidated."""

    symbol: str
    side: Side
    price: float
    coins: float
    ts_ms: int


@dataclass(frozen=True)
class Frame:
    """One encoded WebSocket frame and the liquidations it carries (all of one symbol)."""

    text: str
    symbol: str
    liquidations: tuple[Liquidation, ...]


@dataclass(frozen=True)
class SubscribeRequest:
    """A subscribe or unsubscribe request, already mapped to subscription keys.

    `keys` are unified symbols or `ALL_MARKETS`; `invalid` lists topics the real venue
    refuses (unknown symbol or channel), which the server answers with the venue's error.
    """

    op: Literal["subscribe", "unsubscribe"]
    keys: frozenset[str]
    invalid: tuple[str, ...]
    message: Mapping[str, Any]
    text: str


@dataclass(frozen=True)
class PingRequest:
    """An application-level ping (Bybit `{"op":"ping"}`, OKX text `ping`)."""

    message: Mapping[str, Any]


@dataclass(frozen=True)
class InvalidRequest:
    """Anything the venue does not understand (bad JSON, unknown op)."""

    text: str


@dataclass(frozen=True)
class IgnoredRequest:
    """A frame the venue takes without answering (a client's pong to the venue's own ping)."""

    text: str


Inbound = SubscribeRequest | PingRequest | InvalidRequest | IgnoredRequest


@dataclass(frozen=True)
class RestReply:
    """A complete REST answer: status, body and extra headers."""

    status: int
    body: str
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Quote:
    """A market with its current REST-visible state."""

    market: FakeMarket
    state: MarketState


@dataclass(frozen=True)
class RestContext:
    """Everything a REST handler may read: the query string, the markets, the clock and each
    market's 5-minute history (by unified symbol)."""

    query: Mapping[str, str]
    quotes: Sequence[Quote]
    now_ms: int
    history: Callable[[str], FakeHistory]

    def quote(self, market_id: str, id_of: Callable[[FakeMarket], str]) -> Quote | None:
        """The quote whose venue id (``id_of``) is ``market_id``."""
        return next((q for q in self.quotes if id_of(q.market) == market_id), None)


RestHandler = Callable[[RestContext], RestReply]


def group_by_symbol(liquidations: Sequence[Liquidation]) -> list[list[Liquidation]]:
    """Runs of one symbol each, in first-seen order: venues push one topic per frame."""
    groups: dict[str, list[Liquidation]] = {}
    for liquidation in liquidations:
        groups.setdefault(liquidation.symbol, []).append(liquidation)
    return list(groups.values())


def stable_id(*parts: object, bits: int = 48) -> int:
    """An id that is the same for the same trade: a venue re-sending a trade after a reconnect
    sends its id again, so ids (Kraken ``uid``, Deribit ``trade_id``, dYdX ``id``, Bitfinex
    position id) are derived from the trade's fields, not drawn afresh per publish."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=bits // 8).digest()
    return int.from_bytes(digest, "big")


def json_reply(payload: object, status: int = 200) -> RestReply:
    """Serialise compactly, as the venues do."""
    return RestReply(status, json.dumps(payload, separators=(",", ":")))


def text_reply(status: int, body: str) -> RestReply:
    """A plain-text answer, e.g. a load balancer's 5xx page."""
    return RestReply(status, body, content_type="text/plain")


def plain_error(status: int) -> RestReply:
    """A bare status page, what a venue's load balancer answers for 5xx and unknown faults."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return text_reply(status, f"{status} {phrase}")


def compact(payload: object) -> str:
    """JSON without spaces: the venues' own framing, and what recorded fixtures look like."""
    return json.dumps(payload, separators=(",", ":"))


def decimal_str(value: float) -> str:
    """Shortest plain decimal (no exponent, no float noise) for a wire number."""
    number = Decimal(f"{value:.12g}").normalize()
    return format(number, "f")


def fixed_str(value: float, decimals: int) -> str:
    """Venue-style fixed decimals ("82651.90"), widened when that would lose the value."""
    fixed = f"{value:.{decimals}f}"
    if Decimal(fixed) == Decimal(decimal_str(value)):
        return fixed
    return decimal_str(value)


def floor_to_step(value: float, step: str) -> str:
    """Round a quantity down to a lot step, printed with the step's decimals."""
    quantum = Decimal(step)
    units = (Decimal(decimal_str(value)) / quantum).to_integral_value(rounding=ROUND_DOWN)
    return str((units * quantum).quantize(quantum))


class BadParameterError(ValueError):
    """A query parameter the venue would refuse; `name` is the parameter."""

    def __init__(self, name: str) -> None:
        super().__init__(f"bad parameter {name!r}")
        self.name = name


def int_param(
    query: Mapping[str, str], key: str, default: int | None = None, maximum: int | None = None
) -> int | None:
    """An integer query parameter, `default` when absent; BadParameterError when it is not an
    integer, or (with a `maximum`, i.e. a page size) outside ``1..maximum``."""
    raw = query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameterError(key) from None
    if maximum is not None and not 1 <= value <= maximum:
        raise BadParameterError(key)
    return value


def loads_object(text: str) -> dict[str, Any] | None:
    """Parse a JSON object, or None for anything else (the venues reject those)."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def decoded_entries(
    entries: Any, decode: Callable[[Mapping[str, Any]], Liquidation | None]
) -> list[Liquidation]:
    """The entries of a push that ``decode`` makes liquidations of (None: an unlisted market).
    ValueError for one whose numbers do not compute (a zero price, an infinite time): the
    server then logs the frame raw."""
    try:
        return [
            liquidation for entry in entries or [] if (liquidation := decode(entry)) is not None
        ]
    except ArithmeticError as exc:
        raise ValueError(f"not a liquidation: {exc}") from exc


def parse_op_args(text: str, valid_arg: Callable[[object], bool]) -> Inbound:
    """OKX's request shape, which Bitget's v3 socket shares: text ``ping``, or ``op``
    subscribe/unsubscribe with a list of ``args``, each an all-market channel when valid."""
    if text == "ping":
        return PingRequest({})
    message = loads_object(text)
    if message is None:
        return InvalidRequest(text)
    op = message.get("op")
    args = message.get("args")
    if op not in {"subscribe", "unsubscribe"} or not isinstance(args, list) or not args:
        return InvalidRequest(text)
    invalid = tuple(compact(a) for a in args if not valid_arg(a))
    keys = frozenset() if invalid else frozenset({ALL_MARKETS})
    return SubscribeRequest(op, keys, invalid, message, text)


def ack_each_arg(request: SubscribeRequest, conn_id: str) -> list[str]:
    """One ``{"event": op, "arg": ..., "connId": ...}`` per arg, as OKX and Bitget confirm."""
    return [
        compact({"event": request.op, "arg": arg, "connId": conn_id})
        for arg in request.message.get("args", [])
    ]


class VenueProtocol(ABC):
    """One venue's wire format. Subclasses are data plus pure functions; no I/O, no clock."""

    venue: ClassVar[str]
    ccxt_id: ClassVar[str]
    ws_paths: ClassVar[tuple[str, ...]]
    """aiohttp route patterns that upgrade to the venue's public WebSocket."""
    RETRY_AFTER_UNIT: ClassVar[float] = 1.0
    """Seconds per unit of the venue's ``Retry-After`` (RFC 9110: seconds; dYdX: ms)."""
    EXTRA_MARKETS: ClassVar[tuple[FakeMarket, ...]] = ()
    """Markets listed on this venue only, after the shared ones (e.g. those of its recordings)."""

    def __init__(self, markets: Sequence[FakeMarket], *, extra: bool = True) -> None:
        """``markets`` and, with ``extra``, the venue's ``EXTRA_MARKETS`` after them."""
        listed = [*markets, *(self.EXTRA_MARKETS if extra else ())]
        self.markets: dict[str, FakeMarket] = {self.unified_symbol(m): m for m in listed}
        self.by_id: dict[str, FakeMarket] = {self.market_id(m): m for m in listed}

    def unified_symbol(self, market: FakeMarket) -> str:
        """ccxt's symbol of the market on this venue: the USDT perpetual unless the venue lists
        another kind (inverse: ``BTC/USD:BTC``)."""
        return market.symbol

    def quantize(self, liquidation: Liquidation) -> Liquidation:
        """The liquidation as the wire can carry it: a venue counting whole contracts (inverse
        USD contracts) rounds ``coins``, so the sent-frame log stays the exact truth."""
        return liquidation

    def wire(self, text: str) -> str | bytes:
        """What goes on the socket for a text frame (HTX gzips every frame)."""
        return text

    def greeting(self, conn_id: str) -> list[str]:
        """Frames the venue sends as a connection opens (Bitfinex ``info``, BitMEX welcome)."""
        del conn_id
        return []

    @abstractmethod
    def market_id(self, market: FakeMarket) -> str:
        """The venue's own instrument id (BTCUSDT, BTC-USDT-SWAP)."""

    @abstractmethod
    def ccxt_config(self, rest_url: str, ws_url: str) -> dict[str, Any]:
        """ccxt constructor overrides that point the venue's ccxt class at this fake."""

    @abstractmethod
    def rest_routes(self) -> Mapping[str, RestHandler]:
        """GET handlers by exact path."""

    @abstractmethod
    def rest_error(self, status: int) -> RestReply:
        """The venue's answer for an injected HTTP failure with this status."""

    @abstractmethod
    def parse(self, text: str) -> Inbound:
        """Classify one inbound text frame."""

    @abstractmethod
    def ack(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """Frames the venue sends when it accepts a (un)subscribe request."""

    @abstractmethod
    def reject(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """Frames the venue sends when it refuses a subscribe request."""

    @abstractmethod
    def invalid(self, request: InvalidRequest, conn_id: str) -> list[str]:
        """Frames the venue sends for a request it cannot parse."""

    @abstractmethod
    def pong(self, ping: PingRequest, conn_id: str) -> str:
        """The venue's answer to an application-level ping."""

    @abstractmethod
    def encode(self, liquidations: Sequence[Liquidation]) -> list[Frame]:
        """Frames carrying these liquidations, packed as the venue packs them."""

    @abstractmethod
    def decode(self, text: str) -> list[Liquidation]:
        """Liquidations in a frame of this venue's format (for logging replayed frames)."""

    def new_conn_id(self) -> str:
        """The id the venue stamps on a connection's acks (Bybit: a UUID)."""
        return str(uuid.uuid4())

    def market(self, symbol: str) -> FakeMarket:
        """The market for a unified symbol; KeyError names the symbol and the known ones."""
        try:
            return self.markets[symbol]
        except KeyError:
            known = ", ".join(sorted(self.markets))
            raise KeyError(f"{self.venue}: unknown symbol {symbol!r}; known: {known}") from None
