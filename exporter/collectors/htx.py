"""HTX USDT-margined swaps (ccxt ``htx``, linear markets only).

ccxt.pro does not stream HTX liquidations: the native client subscribes
``public.*.liquidation_orders`` on ``/linear-swap-notification``, one topic for every contract.
Every frame from that endpoint is gzip-compressed binary (``decode_binary``), and the server
pings with ``{"op":"ping","ts":"..."}`` every 5 s, expecting ``{"op":"pong","ts":"..."}`` back
with the same ``ts`` (``reply``); five unanswered pings close the connection. The market-data
endpoint's ``{"ping": n}`` shape is not used here.

Sizes: an entry carries ``volume`` (contracts), ``amount`` (coins) and ``trade_turnover``
(USDT); we read ``amount``, so no contract size is involved. ``price`` is the bankruptcy price.
Open interest and a price for every contract come from two calls per poll: HTX has no
all-contract mark price (only a per-contract mark-price kline), so the index price stands in.
A third, ``swap_batch_funding_rate`` (every contract in one call), gives the funding rate and
when it is paid: ``funding_rate`` is the current period's rate, "updated once a minute", settled
at ``funding_time`` (ms); ``estimated_rate`` and ``next_funding_time`` are deprecated and
always null
(https://www.htx.com/en-us/opend/newApiPages/?id=8cb7ed6a-77b5-11ed-9966-0242ac110003, "[General]
Query a Batch of Funding Rate"; HTX settles at the real-time rate since 2024-01-08). So there is
no predicted rate, and no interval: the one call that stated two funding times no longer does.
The index price is not published as such either: it is the reading's mark price already, and
the same figure twice would show a basis of exactly zero.
There is no 5-minute open-interest history (``swap_his_open_interest`` periods start at 60min):
no backfill.
"""

from __future__ import annotations

import json
import zlib
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol, cast

import ccxt

from exporter.collectors import fields
from exporter.collectors.intake import FrameItem, RawLiquidation, keyed_entry
from exporter.collectors.venue import (
    ContextFields,
    FrameKind,
    NativeFeed,
    OpenInterestFields,
    OpenInterestItem,
    RawOpenInterest,
    VenueAdapter,
    context_answer,
)
from exporter.events import InvalidEventError, Reason, Side

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping, Sequence

    from exporter.collectors.ccxt_types import CcxtExchange
    from exporter.collectors.history import HistoryLimits
    from exporter.venues import Venue

TOPIC: Final = "public.*.liquidation_orders"
TOPIC_SUFFIX: Final = ".liquidation_orders"
# The client id HTX echoes in its answer to our subscription.
CID: Final = "cryptoliq-liquidations"
# Decompressed text we accept from one frame: the native client's own frame limit, so a small
# gzip bomb cannot take more memory than a plain frame may.
MAX_TEXT_BYTES: Final = 10 * 1024 * 1024
# The REST calls of the open-interest poll (under the contract API root).
OPEN_INTEREST_PATH: Final = "linear-swap-api/v1/swap_open_interest"
INDEX_PATH: Final = "linear-swap-api/v1/swap_index"
FUNDING_PATH: Final = "linear-swap-api/v1/swap_batch_funding_rate"
# Frames of the notification endpoint that need no action: the server's ping (answered by
# ``reply``), the answer to an unsubscribe, and the notice sent before the server disconnects.
CONTROL_OPS: Final = frozenset({"ping", "unsub", "close"})


class _ContractApi(Protocol):
    """ccxt's generic call: ``swap_open_interest`` and ``swap_batch_funding_rate`` of linear
    swaps have no implicit method in ccxt 4.5.90 (ccxt's ``fetchOpenInterests`` refuses linear
    markets)."""

    async def request(
        self, path: str, api: list[str], method: str, params: dict[str, Any]
    ) -> Any: ...


def _gunzip(data: bytes) -> str:
    """The text of one gzip member, refused past ``MAX_TEXT_BYTES`` or when truncated."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        text = inflater.decompress(data, MAX_TEXT_BYTES)
    except zlib.error as exc:
        raise ValueError(f"not a gzip frame: {exc}") from None
    if inflater.unconsumed_tail:
        raise ValueError(f"gzip frame inflates past {MAX_TEXT_BYTES} bytes")
    if not inflater.eof:
        raise ValueError("truncated gzip frame")
    return text.decode("utf-8")


def _open_interest_fields(
    info: Mapping[str, Any], index: Mapping[str, Any], ts: object
) -> OpenInterestFields:
    """``amount`` is coins and ``value`` USDT, "sum of both buy and sell sides"
    (https://huobiapi.github.io/docs/usdt_swap/v1/en/#general-get-contract-open-interest-information):
    halved to the one-sided open interest every other venue states. The index price stands in
    for the mark price; the reading's time is the response's ``ts``."""
    return (
        fields.number(info, "amount") / 2,
        fields.number(info, "value") / 2,
        fields.number(index, "index_price"),
        fields.timestamp_ms({"ts": ts}, "ts"),
    )


def _context_fields(
    funding: Mapping[str, Any] | InvalidEventError | None, contract_code: object
) -> ContextFields:
    """The current period's rate and its settlement time (``funding_time``, ms, a string); why
    there is none if the funding call failed."""
    if isinstance(funding, InvalidEventError):
        raise funding
    if funding is None:
        raise InvalidEventError(Reason.MISSING_FIELD, f"{contract_code} in swap_batch_funding_rate")
    return ContextFields(
        funding_rate=fields.number(funding, "funding_rate"),
        next_funding_ms=fields.timestamp_ms(funding, "funding_time"),
    )


def _rows(response: object, what: str) -> list[Any]:
    """The ``data`` list of an answer; any other shape fails the poll (and is retried)."""
    if not isinstance(response, dict) or not isinstance(response.get("data"), list):
        raise ccxt.BadResponse(f"htx {what}: {response!r:.80}")
    return cast("list[Any]", response["data"])


class HtxVenue(VenueAdapter):
    name: ClassVar[Venue] = "htx"
    ccxt_class: ClassVar[str | None] = "htx"
    CCXT_STREAMS: ClassVar[bool] = False
    # HTX pings us every 5 s (answered in ``reply``), which also keeps aiohttp's heartbeat
    # quiet; after 20 s without a frame a WebSocket ping goes out and a missing pong ends it.
    NATIVE: ClassVar[NativeFeed] = NativeFeed(
        default_root="wss://api.hbdm.com",
        path="/linear-swap-notification",
        keepalive_seconds=20.0,
        all_markets_channel=True,
    )
    # `direction` is the side of the liquidation ORDER ("buy"/"sell", with `offset` "close"):
    # a forced sell closes a long. https://huobiapi.github.io/docs/usdt_swap/v1/en/
    # #general-subscribe-liquidation-orders-no-authentication-sub, and the same fields under
    # "[General] Query Liquidation Orders": direction "buy": buy, "sell": sell.
    SIDES: ClassVar[dict[str, Side]] = {"sell": "long", "buy": "short"}
    # /linear-swap-api/v1/swap_his_open_interest serves periods 60min, 4hour, 12hour and 1day
    # only (same doc, "[General] Query information on open interest"): no 5-minute history.
    HISTORY: ClassVar[HistoryLimits | None] = None
    # What swap_batch_funding_rate states (see the module docstring for what it does not).
    CONTEXT: ClassVar[frozenset[str]] = frozenset({"funding_rate", "next_funding_ms"})

    @classmethod
    def url_overrides(cls, rest_url: str | None, ws_url: str | None) -> dict[str, Any]:
        """REST only: the stream is always the native client (``NATIVE.url(ws_url)``). ccxt's
        ``load_markets`` also reads currencies from the spot API, so both roots move."""
        del ws_url
        if not rest_url:
            return {}
        return {"api": {"contract": rest_url, "spot": rest_url}}

    @classmethod
    def ccxt_options(cls) -> dict[str, Any]:
        # One contract_info request (business_type=all: swaps and USDT futures) instead of
        # three; the spot and coin-margined ones are off explicitly (ccxt merges options).
        return {"fetchMarkets": {"types": {"spot": False, "linear": True, "inverse": False}}}

    def decode_binary(self, data: bytes) -> str:
        return _gunzip(data)

    def reply(self, message: object) -> str | None:
        """``{"op":"pong","ts":...}`` with the ping's own ``ts`` (a string, echoed as sent)."""
        if isinstance(message, dict) and message.get("op") == "ping" and "ts" in message:
            return json.dumps({"op": "pong", "ts": message["ts"]}, separators=(",", ":"))
        return None

    def classify_frame(self, message: object) -> FrameKind:
        if not isinstance(message, dict):
            return FrameKind.UNKNOWN
        op = message.get("op")
        if op == "sub":
            # "err-code" 0 is success; any other value (2011 contract doesn't exist, 2040
            # missing parameter, ...) refuses the topic.
            return FrameKind.ACK if message.get("err-code") == 0 else FrameKind.REJECT
        if op == "error":  # an illegal op or an internal error: our request was not taken
            return FrameKind.REJECT
        if op in CONTROL_OPS:
            return FrameKind.CONTROL
        topic = message.get("topic")
        if op == "notify" and isinstance(topic, str) and topic.endswith(TOPIC_SUFFIX):
            return FrameKind.DATA
        return FrameKind.UNKNOWN

    def split_frame(self, message: Any) -> Sequence[FrameItem]:
        """Every ``data`` element is one liquidation order."""
        data = message.get("data")
        if data is None:
            return [InvalidEventError(Reason.MISSING_FIELD, "data")]
        if not isinstance(data, list):
            return [InvalidEventError(Reason.WRONG_TYPE, f"data={data!r:.50}")]
        return [keyed_entry(item, "contract_code") for item in data]

    def parse_entry(self, entry: Any) -> RawLiquidation:
        return RawLiquidation(
            side=fields.lookup(entry, "direction", self.SIDES, Reason.INVALID_SIDE),
            price=fields.number(entry, "price"),
            amount=fields.number(entry, "amount"),
            timestamp_ms=fields.timestamp_ms(entry, "created_at"),
        )

    def watch_calls(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[Callable[[], Coroutine[Any, Any, object]]]:
        del exchange, symbols  # ccxt.pro has no HTX liquidation stream
        return []

    def native_subscriptions(
        self,
        market_ids: Sequence[str] | None,  # noqa: ARG002 - one topic for all
    ) -> list[dict[str, Any]]:
        """``public.*.liquidation_orders`` covers every contract; we keep our markets."""
        return [{"op": "sub", "cid": CID, "topic": TOPIC}]

    async def read_open_interest(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[OpenInterestItem]:
        """``swap_open_interest``, ``swap_index`` and ``swap_batch_funding_rate``, each for
        every contract in one call (HTX: 240 requests / 3 s per IP for these public calls
        together; the default 1 s poll floor uses about 4 % of it)."""
        api = cast("_ContractApi", exchange)
        public = ["contract", "public"]
        readings = await api.request(OPEN_INTEREST_PATH, public, "GET", {"contract_type": "swap"})
        indexes = await api.request(INDEX_PATH, public, "GET", {})
        rates = await context_answer(
            api.request(FUNDING_PATH, public, "GET", {}), "swap_batch_funding_rate"
        )
        index_by_id = {
            row.get("contract_code"): row
            for row in _rows(indexes, "swap_index")
            if isinstance(row, dict)
        }
        funding_by_id: dict[object, Any] | InvalidEventError = (
            rates
            if isinstance(rates, InvalidEventError)
            else {
                row.get("contract_code"): row
                for row in _rows(rates, "swap_batch_funding_rate")
                if isinstance(row, dict)
            }
        )
        ts = readings.get("ts") if isinstance(readings, dict) else None
        wanted = set(symbols) if symbols is not None else None
        by_id = {m.get("id"): m for m in (exchange.markets or {}).values() if m.get("swap")}
        items: list[OpenInterestItem] = []
        for row in _rows(readings, "swap_open_interest"):
            market_id = row.get("contract_code") if isinstance(row, dict) else None
            market = by_id.get(market_id)
            if market is None or (wanted is not None and market["symbol"] not in wanted):
                continue
            index = index_by_id.get(market_id, {})
            funding = (
                funding_by_id
                if isinstance(funding_by_id, InvalidEventError)
                else funding_by_id.get(market_id)
            )
            context = partial(_context_fields, funding, market_id)
            items.append(
                RawOpenInterest(market, partial(_open_interest_fields, row, index, ts), context)
            )
        return items
