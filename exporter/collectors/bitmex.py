"""BitMEX perpetuals: plain REST (ccxt 4.5.90 has no BitMEX) and the native stream.

The ``liquidation`` table (https://www.bitmex.com/app/wsAPI, fields:
https://support.bitmex.com/hc/zh-cn/articles/6206260693661) is not a feed of fills: it mirrors
the book of open liquidation ORDERS, with no timestamps. Each order appears once as an
``insert`` (orderID, symbol, side, price, leavesQty), then ``update`` (new price or remaining
quantity as it fills) and ``delete`` (gone: filled, or taken over). How that becomes events:

- an order counts once, at its ``insert``: ``leavesQty`` contracts at ``price``;
- ``update`` and ``delete`` never count (classified CONTROL): they re-describe an order already
  counted;
- the ``partial`` sent after every (re)subscribe lists the orders open at that moment and never
  counts (CONTROL): those inserted while we were connected are counted already;
- ``side`` is the side of the liquidation ORDER, so Buy means a SHORT position was liquidated;
- the time is the receive time (``timestamp_ms`` None): the table states none.

What that misses: orders inserted and deleted while we were disconnected, and the part of an
order that filled before its insert was published (``leavesQty`` is what is left). What it
over-counts: an order deleted before it fills completely still counts its whole quantity at
insert (the position was liquidated all the same; the remainder went elsewhere).

Quantities are contracts: XBTUSD is inverse, one contract is 1 USD; linear contracts (XBTUSDT)
are ``1 / underlyingToPositionMultiplier`` coins. Quanto contracts (ETHUSD: a contract is worth
a fixed number of satoshi per USD of the ETH price) have no fixed size in coins or USD and are
not listed; one subscription per market (``liquidation:<symbol>``) keeps their entries out.

Open interest (contracts) and mark price of every instrument come from one
``/api/v1/instrument/active`` call (which also serves the markets). The REST budget is 30
requests a minute unauthenticated (https://blog.bitmex.com/api_announcement/
updates-to-rate-limits/); we take half. BitMEX serves no open-interest history: no backfill.

The same call, with five more columns, gives the market context
(https://support.bitmex.com/hc/en-gb/articles/6206354894365--instrument-Field-Definitions):
``fundingRate`` (the rate paid at ``fundingTimestamp``, the next funding time),
``indicativeFundingRate`` ("indicative funding rate for the next ... period"),
``fundingInterval`` ("the time between two consecutive fundings", written as a time after
2000-01-01T00:00Z: ``2000-01-01T08:00:00.000Z`` is 8 hours) and ``indicativeSettlePrice``
("the price of the index associated with the instrument", e.g. .BXBT for XBTUSD).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Final

from exporter.collectors import fields
from exporter.collectors.intake import FrameItem, RawLiquidation, keyed_entry
from exporter.collectors.venue import (
    EVERY_CONTEXT,
    ContextFields,
    FrameKind,
    NativeFeed,
    OpenInterestFields,
    OpenInterestItem,
    RawOpenInterest,
    VenueAdapter,
)
from exporter.events import InvalidEventError, Reason, Side

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping, Sequence

    from exporter.collectors.ccxt_types import CcxtExchange, Market
    from exporter.collectors.history import HistoryLimits
    from exporter.collectors.rest_exchange import RestExchange
    from exporter.venues import Venue

TABLE: Final = "liquidation"
INSTRUMENTS_PATH: Final = "/api/v1/instrument/active"
# What the open-interest poll reads of each instrument (BitMEX always adds the keys): open
# interest and mark price, then funding and the index price.
POLL_COLUMNS: Final = (
    "symbol",
    "openInterest",
    "markPrice",
    "timestamp",
    "fundingRate",
    "indicativeFundingRate",
    "fundingTimestamp",
    "fundingInterval",
    "indicativeSettlePrice",
)
# ``fundingInterval`` is a duration written as this moment plus the duration.
INTERVAL_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
# Perpetual contracts (``typ``); FFWCSF, the FX perpetuals, are quoted in currencies, not USD.
PERPETUAL: Final = "FFWCSX"
# BitMEX's currency codes: XBT (and its satoshi unit XBt) is BTC, USDt is USDT's micro unit.
CURRENCIES: Final = {"XBT": "BTC", "XBt": "BTC", "USDt": "USDT"}
# Table actions: an insert is the only one that counts (see the module docstring).
ACTIONS: Final[dict[object, FrameKind]] = {
    "insert": FrameKind.DATA,
    "partial": FrameKind.CONTROL,
    "update": FrameKind.CONTROL,
    "delete": FrameKind.CONTROL,
}
# 30 requests a minute unauthenticated; one request per poll; we take half.
REQUESTS_PER_MINUTE: Final = 15


def _currency(code: object) -> str:
    text = str(code)
    return CURRENCIES.get(text, text)


def _market(row: Mapping[str, Any]) -> Market | None:
    """A ccxt-shaped market of one linear or inverse perpetual; None for any other instrument
    (futures, spot, indices, quanto contracts) or one whose contract size is not stated."""
    if row.get("typ") != PERPETUAL or row.get("isQuanto"):
        return None
    symbol_id = row.get("symbol")
    if not isinstance(symbol_id, str) or not symbol_id:
        return None
    base, quote = _currency(row.get("underlying")), _currency(row.get("quoteCurrency"))
    settle = _currency(row.get("settlCurrency"))
    inverse = row.get("isInverse") is True
    try:
        if inverse:
            # Contract value in USD: multiplier / underlyingToSettleMultiplier (XBTUSD: 1 USD).
            size = abs(float(row["multiplier"]) / float(row["underlyingToSettleMultiplier"]))
        else:
            size = 1.0 / float(row["underlyingToPositionMultiplier"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    return {
        "id": symbol_id,
        "symbol": f"{base}/{quote}:{settle}",
        "base": base,
        "quote": quote,
        "settle": settle,
        "type": "swap",
        "spot": False,
        "swap": True,
        "future": False,
        "contract": True,
        "linear": not inverse,
        "inverse": inverse,
        "contractSize": size,
        "active": row.get("state") == "Open",
    }


def _moment(row: Mapping[str, Any], key: str) -> datetime:
    """One of the instrument's ISO times, e.g. ``2022-01-14T17:49:55.000Z``."""
    value = row.get(key)
    if value is None or value == "":
        raise InvalidEventError(Reason.MISSING_FIELD, key)
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidEventError(Reason.BAD_TIMESTAMP, f"{key}={value!r:.50}") from None
    if moment.tzinfo is None:
        raise InvalidEventError(Reason.BAD_TIMESTAMP, f"{key}={value!r:.50} has no zone")
    return moment


def _timestamp_ms(row: Mapping[str, Any]) -> int | None:
    """The instrument's time; None when absent."""
    if row.get("timestamp") is None:
        return None
    return round(_moment(row, "timestamp").timestamp() * 1000)


def funding_interval_s(row: Mapping[str, Any]) -> float:
    """``fundingInterval`` in seconds: its time after 2000-01-01T00:00Z."""
    return (_moment(row, "fundingInterval") - INTERVAL_EPOCH).total_seconds()


def _context_fields(row: Mapping[str, Any]) -> ContextFields:
    """Funding of the current and the next period, when and how often, and the index price."""
    return ContextFields(
        index_price=fields.number(row, "indicativeSettlePrice"),
        funding_rate=fields.number(row, "fundingRate"),
        predicted_funding_rate=fields.number(row, "indicativeFundingRate"),
        next_funding_ms=round(_moment(row, "fundingTimestamp").timestamp() * 1000),
        funding_interval_s=funding_interval_s(row),
    )


def _open_interest_fields(row: Mapping[str, Any], market: Market) -> OpenInterestFields:
    """``openInterest`` is in contracts: x contractSize coins, or USD for inverse ones."""
    contracts = fields.number(row, "openInterest")
    mark = fields.number(row, "markPrice")
    size = float(market["contractSize"])
    if market["inverse"]:
        usd = contracts * size
        return usd / mark, usd, mark, _timestamp_ms(row)
    return contracts * size, None, mark, _timestamp_ms(row)


class BitmexVenue(VenueAdapter):
    name: ClassVar[Venue] = "bitmex"
    ccxt_class: ClassVar[str | None] = None
    REST_ROOT: ClassVar[str] = "https://www.bitmex.com"
    CCXT_STREAMS: ClassVar[bool] = False
    quantity_in_contracts: ClassVar[bool] = True
    # BitMEX advises a text "ping" when nothing came for a few seconds; it answers "pong".
    NATIVE: ClassVar[NativeFeed] = NativeFeed(
        default_root="wss://ws.bitmex.com",
        path="/realtime",
        keepalive_seconds=10.0,
        keepalive="ping",
        all_markets_channel=False,
    )
    HISTORY: ClassVar[HistoryLimits | None] = None
    # `side` is the liquidation ORDER's side (BitMEX '/liquidation field definitions': "the
    # direction of the liquidation order"): a forced buy closes a short.
    SIDES: ClassVar[dict[str, Side]] = {"Buy": "short", "Sell": "long"}
    # A bare coin: BTC is XBTUSD, BitMEX's main market (inverse); other coins the USDT one.
    MAIN_MARKETS: ClassVar[dict[str, str]] = {"BTC": "BTC/USD:BTC"}
    CONTEXT: ClassVar[frozenset[str]] = EVERY_CONTEXT

    @classmethod
    def url_overrides(cls, rest_url: str | None, ws_url: str | None) -> dict[str, Any]:
        """No ccxt here: ``rest_url`` goes to the RestExchange, ``ws_url`` to the native client."""
        del rest_url, ws_url
        return {}

    @classmethod
    def coin_symbol(cls, coin: str) -> str:
        return cls.MAIN_MARKETS.get(coin, f"{coin}/USDT:USDT")

    async def rest_markets(self, rest: RestExchange) -> dict[str, Market]:
        """The linear and inverse perpetuals of ``/api/v1/instrument/active``."""
        rows = await rest.get_json(INSTRUMENTS_PATH)
        markets: dict[str, Market] = {}
        for row in rows if isinstance(rows, list) else ():
            market = _market(row) if isinstance(row, dict) else None
            if market is not None:
                markets[market["symbol"]] = market
        return markets

    def listed_markets(self, exchange: CcxtExchange) -> list[str]:
        """Every active perpetual we list: linear (USDT) and inverse (XBTUSD)."""
        return [
            symbol
            for symbol, market in (exchange.markets or {}).items()
            if market.get("active") is not False
        ]

    # --- the liquidation stream -------------------------------------------------------------

    def classify_frame(self, message: object) -> FrameKind:
        if not isinstance(message, dict):
            return FrameKind.CONTROL if message == "pong" else FrameKind.UNKNOWN
        if message.get("table") == TABLE:
            return ACTIONS.get(message.get("action"), FrameKind.UNKNOWN)
        if message.get("success") is True and "subscribe" in message:
            return FrameKind.ACK
        if "error" in message:
            return FrameKind.REJECT
        # The welcome on connect ({"info": "Welcome to the BitMEX Realtime API.", ...}).
        return FrameKind.CONTROL if "info" in message else FrameKind.UNKNOWN

    def split_frame(self, message: Any) -> Sequence[FrameItem]:
        """Every order of an ``insert``: one liquidation each."""
        data = message.get("data")
        if not isinstance(data, list):
            return [InvalidEventError(Reason.WRONG_TYPE, f"data={data!r:.50}")]
        return [keyed_entry(item, "symbol") for item in data]

    def parse_entry(self, entry: Any) -> RawLiquidation:
        return RawLiquidation(
            side=fields.lookup(entry, "side", self.SIDES, Reason.INVALID_SIDE),
            price=fields.number(entry, "price"),
            amount=fields.number(entry, "leavesQty"),
            timestamp_ms=None,
        )

    def watch_calls(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[Callable[[], Coroutine[Any, Any, object]]]:
        """None: no ccxt here (``CCXT_STREAMS`` is False)."""
        del exchange, symbols
        return []

    def native_subscriptions(self, market_ids: Sequence[str] | None) -> list[dict[str, Any]]:
        """``{"op": "subscribe", "args": ["liquidation:XBTUSD", ...]}`` in one request; BitMEX
        acknowledges each topic. ``market_ids`` is never None (``all_markets_channel`` is
        False: the all-symbol ``liquidation`` topic would bring quanto contracts too)."""
        return [{"op": "subscribe", "args": [f"{TABLE}:{i}" for i in market_ids or ()]}]

    # --- open interest ---------------------------------------------------------------------

    async def read_open_interest(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[OpenInterestItem]:
        """Open interest, mark price, funding and index price of every instrument: one call."""
        get_json = getattr(exchange, "get_json")  # noqa: B009 - the RestExchange's own call
        rows = await get_json(INSTRUMENTS_PATH, {"columns": json.dumps(list(POLL_COLUMNS))})
        wanted = set(symbols) if symbols is not None else None
        by_id = {m["id"]: m for m in (exchange.markets or {}).values()}
        items: list[OpenInterestItem] = []
        for row in rows if isinstance(rows, list) else [rows]:
            if not isinstance(row, dict):
                items.append(InvalidEventError(Reason.WRONG_TYPE, f"instrument {row!r:.50}"))
                continue
            market = by_id.get(row.get("symbol"))
            if market is None or (wanted is not None and market["symbol"] not in wanted):
                continue
            read = partial(_open_interest_fields, row, market)
            items.append(RawOpenInterest(market, read, partial(_context_fields, row)))
        return items

    def min_poll_interval(self, symbol_count: int) -> float:
        """One request per poll, whatever the market count: 4 s."""
        del symbol_count
        return 60.0 / REQUESTS_PER_MINUTE
