"""Gate USDT-settled perpetual futures (ccxt ``gate``; ccxt.pro streams no public liquidations
here, so the native client always carries the stream).

``futures.public_liquidates`` with payload ``["!all"]`` covers every contract. Each ``result``
entry is one liquidation ORDER: ``size`` is its signed size in contracts (negative: a forced
sell, so a long was liquidated), times ``quanto_multiplier`` (ccxt's ``contractSize``) coins.

Gate changed the channel on 2026-08-20: before, at most one order per contract per second and
an entry ``time`` in seconds (an older doc revision names it ``time_ms``, in milliseconds); since,
every order, aggregated per contract per ~1 s (at most 20 per push) and ``time`` in milliseconds.
Both shapes are read (see ``entry_time_ms``); since the change the feed is complete.

Open interest (``total_size``, contracts) and mark price of every contract come from one
``/futures/usdt/tickers`` call, which ccxt does not read as open interest (gate has no
``fetchOpenInterest``): we call it through ccxt's implicit API. The same tickers carry the
funding rate, the indicative rate of the next period (``funding_rate_indicative``) and the index
price; when funding is applied next (``funding_next_apply``, seconds) and how often
(``funding_interval``, seconds) only the contract list says, so each poll also asks
``/futures/usdt/contracts``, again every contract in one call (Gate APIv4,
https://www.gate.com/docs/developers/apiv4/en/: ``GET /futures/{settle}/tickers``, model
``FuturesTicker``; ``GET /futures/{settle}/contracts``, model ``Contract``).
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Final

from exporter.collectors import fields
from exporter.collectors.history import HistoryLimits
from exporter.collectors.intake import (
    FrameItem,
    RawLiquidation,
    keyed_entry,
    markets_by_id,
)
from exporter.collectors.venue import (
    EVERY_CONTEXT,
    ContextFields,
    FrameKind,
    NativeFeed,
    OpenInterestFields,
    OpenInterestItem,
    RawOpenInterest,
    VenueAdapter,
    context_answer,
)
from exporter.events import InvalidEventError, Reason

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping, Sequence

    from exporter.collectors.ccxt_types import CcxtExchange, Market
    from exporter.events import Side
    from exporter.venues import Venue

CHANNEL: Final = "futures.public_liquidates"
PONG_CHANNEL: Final = "futures.pong"
ALL_CONTRACTS: Final = "!all"
SETTLE: Final = "usdt"
# Gate requires a request ``time`` but checks it only in signed (private) requests; its own
# doc examples send 123456. A constant keeps the adapter free of a clock.
REQUEST_TIME: Final = 123456
# An entry ``time`` below this is in seconds, at or above it in milliseconds: 1e11 seconds is
# the year 5138, 1e11 milliseconds is 1973-03-03, so no real liquidation lies near it in either.
SECONDS_BELOW: Final = 1e11
# The channel's other events: a push, and the answer to an unsubscribe.
EVENT_KINDS: Final = {"update": FrameKind.DATA, "unsubscribe": FrameKind.CONTROL}


def entry_time_ms(entry: Mapping[str, Any]) -> int:
    """An entry's exchange time in ms: ``time_ms`` where an entry has it, else ``time`` in
    seconds (before 2026-08-20) or milliseconds (since), told apart by ``SECONDS_BELOW``."""
    if "time_ms" in entry:
        return fields.timestamp_ms(entry, "time_ms")
    value = fields.number(entry, "time")
    if not math.isfinite(value):
        raise InvalidEventError(Reason.BAD_TIMESTAMP, f"time={value!r}")
    return int(value * 1000) if abs(value) < SECONDS_BELOW else int(value)


def _open_interest_fields(row: Mapping[str, Any], market: Market) -> OpenInterestFields:
    """``total_size`` is in contracts of ``quanto_multiplier`` coins; USD from the mark price.
    A ticker has no time of its own."""
    size = market.get("contractSize")
    if not isinstance(size, int | float) or size <= 0:
        raise InvalidEventError(Reason.MISSING_FIELD, f"contractSize of {market.get('symbol')}")
    return (fields.number(row, "total_size") * size, None, fields.number(row, "mark_price"), None)


def _context_fields(
    ticker: Mapping[str, Any], contract: Mapping[str, Any] | InvalidEventError | None
) -> ContextFields:
    """Rates and index price from the ticker, the funding schedule from the contract (times in
    seconds; why there is none if the contracts call failed). Both rates are fractions per
    ``funding_interval``."""
    if isinstance(contract, InvalidEventError):
        raise contract
    if contract is None:
        raise InvalidEventError(Reason.MISSING_FIELD, f"{ticker.get('contract')} in contracts")
    next_apply = fields.number(contract, "funding_next_apply")
    if not math.isfinite(next_apply):
        raise InvalidEventError(Reason.BAD_TIMESTAMP, f"funding_next_apply={next_apply!r}")
    return ContextFields(
        index_price=fields.number(ticker, "index_price"),
        funding_rate=fields.number(ticker, "funding_rate"),
        predicted_funding_rate=fields.number(ticker, "funding_rate_indicative"),
        next_funding_ms=round(next_apply * 1000),
        funding_interval_s=fields.number(contract, "funding_interval"),
    )


class GateVenue(VenueAdapter):
    name: ClassVar[Venue] = "gate"
    ccxt_class: ClassVar[str | None] = "gate"
    CCXT_STREAMS: ClassVar[bool] = False  # ccxt.pro gate: watchLiquidations False
    quantity_in_contracts: ClassVar[bool] = True
    # The server pings at the protocol level; an application ping (answered futures.pong, as
    # Gate's demo client sends every 10 s) also proves the connection alive.
    NATIVE: ClassVar[NativeFeed] = NativeFeed(
        default_root="wss://fx-ws.gateio.ws",
        path="/v4/ws/usdt",
        keepalive_seconds=10.0,
        keepalive=f'{{"time":{REQUEST_TIME},"channel":"futures.ping"}}',
        all_markets_channel=True,
    )
    # /futures/usdt/contract_stats: the 5-minute open interest in CONTRACTS (`open_interest`;
    # ccxt's openInterestAmount), scaled by contractSize; 100 rows a page. Gate allows 200
    # public requests per 10 s per endpoint: we keep to half.
    HISTORY: ClassVar[HistoryLimits | None] = HistoryLimits(
        open_interest_rows=100,
        candle_rows=1000,
        open_interest_budget=(100, 10.0),
        candle_budget=(100, 10.0),
        open_interest_in_contracts=True,
    )
    CONTEXT: ClassVar[frozenset[str]] = EVERY_CONTEXT

    @classmethod
    def url_overrides(cls, rest_url: str | None, ws_url: str | None) -> dict[str, Any]:
        """REST only: ccxt never opens Gate's WebSocket here (``CCXT_STREAMS`` is False)."""
        del ws_url
        if not rest_url:
            return {}
        root = rest_url + "/api/v4"
        return {"api": {"public": {"futures": root, "spot": root}}}

    @classmethod
    def ccxt_options(cls) -> dict[str, Any]:
        """USDT-settled swaps only: load_markets asks /spot/currencies (ccxt always does) and
        /futures/usdt/contracts, not the spot, delivery, option and BTC-settled lists."""
        return {
            "fetchMarkets": {"types": ["swap"]},
            "swap": {"fetchMarkets": {"settlementCurrencies": [SETTLE]}},
        }

    # --- the liquidation stream -------------------------------------------------------------

    def classify_frame(self, message: object) -> FrameKind:
        if not isinstance(message, dict):
            return FrameKind.UNKNOWN
        channel = message.get("channel")
        if channel == PONG_CHANNEL:
            return FrameKind.CONTROL
        event = message.get("event")
        # A response carries `error` (null when fine); Gate's error codes 1-4 refuse a request.
        if message.get("error") is not None:
            return FrameKind.REJECT
        if channel != CHANNEL:
            return FrameKind.UNKNOWN
        if event == "subscribe":
            result = message.get("result")
            ok = isinstance(result, dict) and result.get("status") == "success"
            return FrameKind.ACK if ok else FrameKind.REJECT
        return EVENT_KINDS.get(str(event), FrameKind.UNKNOWN)

    def split_frame(self, message: Any) -> Sequence[FrameItem]:
        """Every ``result`` entry: one liquidation order each (one before 2026-08-20, up to 20
        of one contract since)."""
        result = message.get("result") if isinstance(message, dict) else None
        if not isinstance(result, list):
            return [InvalidEventError(Reason.WRONG_TYPE, f"result={result!r:.50}")]
        return [keyed_entry(item, "contract") for item in result]

    def parse_entry(self, entry: Any) -> RawLiquidation:
        """``size`` is the liquidation ORDER's size, signed as every Gate futures order size
        (positive bids, negative asks: https://www.gate.com/docs/developers/apiv4/en/#futuresorder;
        the channel: https://www.gate.com/docs/developers/futures/ws/en/#public-liquidates-order-api
        "size: liquidation order size"). A forced sell closes a long: negative => long."""
        size = fields.number(entry, "size")
        if math.isnan(size):
            raise InvalidEventError(Reason.NOT_FINITE, f"size={size!r}")
        if size == 0:
            raise InvalidEventError(Reason.NOT_POSITIVE, "size=0 carries no side")
        side: Side = "long" if size < 0 else "short"
        return RawLiquidation(
            side=side,
            price=fields.number(entry, "price"),
            amount=abs(size),
            timestamp_ms=entry_time_ms(entry),
        )

    def watch_calls(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[Callable[[], Coroutine[Any, Any, object]]]:
        """None: ccxt.pro gate has no public liquidation watch (``CCXT_STREAMS`` is False)."""
        del exchange, symbols
        return []

    def native_subscriptions(self, market_ids: Sequence[str] | None) -> list[dict[str, Any]]:
        """One request: ``!all`` for every contract, else the contracts by id; acknowledged
        once (``result.status`` success) or refused with an ``error``."""
        payload = [ALL_CONTRACTS] if market_ids is None else list(market_ids)
        return [
            {"time": REQUEST_TIME, "channel": CHANNEL, "event": "subscribe", "payload": payload}
        ]

    # --- open interest ---------------------------------------------------------------------

    async def read_open_interest(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[OpenInterestItem]:
        """``GET /futures/usdt/tickers`` and ``GET /futures/usdt/contracts``, each for every
        contract (Gate: 200 requests / 10 s per public endpoint; the default 1 s poll floor uses
        5 % of each)."""
        tickers = getattr(exchange, "publicFuturesGetSettleTickers")  # noqa: B009 - implicit API
        contracts = getattr(exchange, "publicFuturesGetSettleContracts")  # noqa: B009
        rows = await tickers({"settle": SETTLE})
        if not isinstance(rows, list):
            return [InvalidEventError(Reason.WRONG_TYPE, f"tickers={rows!r:.50}")]
        listed = await context_answer(contracts({"settle": SETTLE}), "contracts")
        schedule: dict[str, Any] | InvalidEventError = (
            listed
            if isinstance(listed, InvalidEventError)
            else {
                str(row.get("name")): row
                for row in (listed if isinstance(listed, list) else ())
                if isinstance(row, dict)
            }
        )
        by_id = markets_by_id(exchange.markets or {})
        wanted = set(symbols) if symbols is not None else None
        items: list[OpenInterestItem] = []
        for row in rows:
            if not isinstance(row, dict):
                items.append(InvalidEventError(Reason.WRONG_TYPE, f"ticker {row!r:.50}"))
                continue
            market = by_id.get(str(row.get("contract")))
            if market is None or (wanted is not None and market["symbol"] not in wanted):
                continue  # a contract we do not watch (or one listed since load_markets)
            contract = (
                schedule if isinstance(schedule, InvalidEventError) else schedule.get(market["id"])
            )
            context = partial(_context_fields, row, contract)
            items.append(
                RawOpenInterest(market, partial(_open_interest_fields, row, market), context)
            )
        return items
