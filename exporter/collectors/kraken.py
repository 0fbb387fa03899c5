"""Kraken Futures perpetuals (ccxt ``krakenfutures``): flexible ``PF_`` and inverse ``PI_``.

ccxt.pro does not stream Kraken liquidations: the native client subscribes the public ``trade``
feed of each product (``{"event":"subscribe","feed":"trade","product_ids":[...]}``; there is no
all-products subscription) and keeps the trades of ``type`` ``liquidation``; every other trade
(``fill``, ``block``, ``assignment``, ``termination``) is simply not an entry. On subscribing,
Kraken sends a ``trade_snapshot`` of each product's recent past trades: those were (or were
not) counted when they happened, so the snapshot is CONTROL and never counted.

Sizes: ``qty`` is in contracts, one contract being 1 USD on ``PI_`` inverse perpetuals and one
coin on ``PF_`` ones (``contractSize`` 1), so the intake's contract arithmetic gives coins and
USD for both. Kraken wants a ping from the client at least every 60 s: the native client sends a
WebSocket ping every 30 s whatever the traffic (``ping_always``). Open interest and mark price
of every contract come from one ``/derivatives/api/v3/tickers`` call. ccxt has no
open-interest history for Kraken Futures:
no backfill.

Funding and index price come in the same tickers (https://docs.kraken.com/api/docs/
futures-api/trading/get-tickers): ``indexPrice``, ``fundingRate`` ("the current absolute
funding rate") and ``fundingRatePrediction`` ("the estimated next funding rate"). Perpetuals
roll "every 1 hour at the end of the hour"; the rate of an hour is set over the hour before
("Rate-setting Calculation Window"), so ``fundingRate`` is this hour's, settled at the next
whole hour, and the prediction the next hour's (Kraken's Inverse and Linear Perpetual
Contract Specifications, https://support.kraken.com/hc/en-us/articles/360022835911 and
/4844359082772). An absolute rate is per contract per hour in the contract's settlement
currency: USD per one-coin ``PF_`` contract, the coin per one-USD ``PI_`` contract (in the
documentation's example of ``/historical-funding-rates``, of June 2022, ``relativeFundingRate``
/ ``fundingRate`` is 20,712: the BTC price then). The fraction is therefore absolute / index
on ``PF_``, absolute x index on ``PI_``, at the ticker's index price (ccxt divides by the mark
price on both); the hour's rate was converted at the index of its start, so this is off by
the hour's price move at most. The hourly schedule is in no response: the next funding time
is the next whole hour of the answer's ``serverTime``.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Final

from exporter.collectors import fields
from exporter.collectors.intake import FrameItem, RawEntry, RawLiquidation
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
    from exporter.venues import Venue

FEED: Final = "trade"
LIQUIDATION: Final = "liquidation"
# No documented limit on product_ids per request: bounded requests, one acknowledgement each.
PRODUCTS_PER_REQUEST: Final = 50
# Events that accept or refuse a (un)subscription. "alert" is Kraken's answer to a request it
# cannot take ("Bad request"), "error" to an unknown product or feed.
ACK_EVENTS: Final = frozenset({"subscribed"})
REJECT_EVENTS: Final = frozenset({"error", "alert", "subscribed_failed"})
# The greeting on connect ({"event":"info","version":1}) and answers to unsubscribing.
CONTROL_EVENTS: Final = frozenset({"info", "unsubscribed", "unsubscribed_failed"})
# Past trades sent on subscribing, and the heartbeat feed's beats.
CONTROL_FEEDS: Final = frozenset({"trade_snapshot", "heartbeat"})
# Perpetuals pay funding at the end of every hour (see the module docstring).
FUNDING_INTERVAL_MS: Final = 3_600_000


def _open_interest_fields(info: Mapping[str, Any], market: Market) -> OpenInterestFields:
    """``openInterest`` is in contracts: USD on inverse contracts (coins at the mark price),
    coins on the others; a ticker carries no time of its own reading."""
    contracts = fields.number(info, "openInterest")
    mark = fields.number(info, "markPrice")
    size = market.get("contractSize")
    if not isinstance(size, int | float) or size <= 0:
        raise InvalidEventError(Reason.MISSING_FIELD, f"contractSize of {market.get('symbol')}")
    if market.get("inverse"):
        usd = contracts * size
        return (usd / mark, usd, mark, None)
    return (contracts * size, None, mark, None)


def _context_fields(
    info: Mapping[str, Any], market: Market, answer: Mapping[str, Any]
) -> ContextFields:
    """The index price and this hour's and the next hour's rates as fractions: absolute
    rates / index on linear contracts, x index on inverse ones; paid at the next whole hour
    after the answer's ``serverTime``."""
    now_ms = fields.iso_ms(answer, "serverTime")
    index = fields.number(info, "indexPrice")
    if index <= 0:
        raise InvalidEventError(Reason.NOT_POSITIVE, f"indexPrice={index!r}")
    scale = index if market.get("inverse") else 1 / index
    predicted = fields.optional_number(info, "fundingRatePrediction")
    return ContextFields(
        index_price=index,
        funding_rate=fields.number(info, "fundingRate") * scale,
        predicted_funding_rate=None if predicted is None else predicted * scale,
        next_funding_ms=(now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS,
        funding_interval_s=FUNDING_INTERVAL_MS / 1000,
    )


class KrakenVenue(VenueAdapter):
    name: ClassVar[Venue] = "kraken"
    ccxt_class: ClassVar[str | None] = "krakenfutures"
    CCXT_STREAMS: ClassVar[bool] = False
    quantity_in_contracts: ClassVar[bool] = True
    # "Send a ping at least every 60 seconds to keep the connection open"
    # (https://docs.kraken.com/exchange/api-reference/futures-websocket): WebSocket pings, as
    # ccxt.pro krakenfutures sends (keepAlive 30 s), every 30 s whatever the traffic
    # (``ping_always``: aiohttp's heartbeat would ping only after 30 s without a frame).
    NATIVE: ClassVar[NativeFeed] = NativeFeed(
        default_root="wss://futures.kraken.com",
        path="/ws/v1",
        keepalive_seconds=30.0,
        all_markets_channel=False,
        ping_always=True,
    )
    # `side` is "the classification of the taker side in the matched trade: buy if the taker
    # is a buyer, sell if the taker is a seller" (https://docs.kraken.com/api/docs/futures-api/
    # websocket/trade). A liquidation "begins by submitting an Immediate-or-Cancel order to the
    # market" on the liquidated account's behalf (https://support.kraken.com/hc/en-us/articles/
    # 360022835671-Equity-Protection-Process): an IOC order is the taker, so `side` is the
    # liquidation ORDER's side and a taker sell closes a long. tardis-node maps it the same
    # way (src/mappers/cryptofacilities.ts: side as is, "sell = long position liquidated").
    SIDES: ClassVar[dict[str, Side]] = {"sell": "long", "buy": "short"}
    HISTORY: ClassVar[HistoryLimits | None] = None
    # Every figure of the market context, from the tickers and the hourly schedule.
    CONTEXT: ClassVar[frozenset[str]] = EVERY_CONTEXT
    FIXED_FUNDING_INTERVAL_S: ClassVar[float | None] = FUNDING_INTERVAL_MS / 1000

    @classmethod
    def url_overrides(cls, rest_url: str | None, ws_url: str | None) -> dict[str, Any]:
        """REST only: the stream is always the native client (``NATIVE.url(ws_url)``)."""
        del ws_url
        return {"api": {"public": rest_url + "/derivatives/api/"}} if rest_url else {}

    @classmethod
    def coin_symbol(cls, coin: str) -> str:
        """A bare coin means its ``PF_`` perpetual, settled in USD (``BTC/USD:USD``)."""
        return f"{coin}/USD:USD"

    def listed_markets(self, exchange: CcxtExchange) -> list[str]:
        """``symbols: all`` on Kraken means every perpetual, ``PF_`` and ``PI_``."""
        return [
            symbol
            for symbol, market in (exchange.markets or {}).items()
            if market.get("swap") and market.get("active") is not False
        ]

    def classify_frame(self, message: object) -> FrameKind:
        if not isinstance(message, dict):
            return FrameKind.UNKNOWN
        event = message.get("event")
        if event is not None:
            if event in ACK_EVENTS:
                return FrameKind.ACK
            if event in REJECT_EVENTS:
                return FrameKind.REJECT
            return FrameKind.CONTROL if event in CONTROL_EVENTS else FrameKind.UNKNOWN
        feed = message.get("feed")
        if feed == FEED:
            return FrameKind.DATA  # one trade; split_frame keeps it if it is a liquidation
        return FrameKind.CONTROL if feed in CONTROL_FEEDS else FrameKind.UNKNOWN

    def split_frame(self, message: Any) -> Sequence[FrameItem]:
        """A ``trade`` frame is one trade: an entry when it is a liquidation, else nothing."""
        kind = message.get("type")
        if kind is None:
            return [InvalidEventError(Reason.MISSING_FIELD, "type")]
        if kind != LIQUIDATION:
            return []
        market_id = message.get("product_id")
        if not isinstance(market_id, str) or not market_id:
            return [InvalidEventError(Reason.MISSING_FIELD, f"product_id={market_id!r:.50}")]
        return [RawEntry(market_id, message)]

    def parse_entry(self, entry: Any) -> RawLiquidation:
        return RawLiquidation(
            side=fields.lookup(entry, "side", self.SIDES, Reason.INVALID_SIDE),
            price=fields.number(entry, "price"),
            amount=fields.number(entry, "qty"),
            timestamp_ms=fields.timestamp_ms(entry, "time"),
            entry_id=fields.entry_id(entry, "uid"),
        )

    def watch_calls(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[Callable[[], Coroutine[Any, Any, object]]]:
        del exchange, symbols  # ccxt.pro has no Kraken Futures liquidation stream
        return []

    def native_subscriptions(self, market_ids: Sequence[str] | None) -> list[dict[str, Any]]:
        """``trade`` for our products, at most ``PRODUCTS_PER_REQUEST`` per request. There is
        no all-products subscription: ``market_ids`` is never None (``all_markets_channel``)."""
        ids = list(market_ids or ())
        return [
            {"event": "subscribe", "feed": FEED, "product_ids": ids[i : i + PRODUCTS_PER_REQUEST]}
            for i in range(0, len(ids), PRODUCTS_PER_REQUEST)
        ]

    async def read_open_interest(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[OpenInterestItem]:
        """Every watched perpetual's ticker of one ``/tickers`` answer; a ticker of no
        loaded perpetual (an index, a dated future) is left out."""
        api: Any = exchange  # ccxt's implicit endpoint methods are not in CcxtExchange
        response = await api.publicGetTickers()
        tickers = response.get("tickers") if isinstance(response, dict) else None
        if not isinstance(tickers, list):
            listed = list(symbols) if symbols is not None else self.every_market(exchange)
            return [InvalidEventError(Reason.MALFORMED, f"tickers of {s}") for s in listed]
        wanted = set(symbols) if symbols is not None else None
        by_id = {m.get("id"): m for m in (exchange.markets or {}).values() if m.get("swap")}
        items: list[OpenInterestItem] = []
        for info in tickers:
            market = by_id.get(info.get("symbol")) if isinstance(info, dict) else None
            if market is None or (wanted is not None and market["symbol"] not in wanted):
                continue
            items.append(
                RawOpenInterest(
                    market,
                    partial(_open_interest_fields, info, market),
                    partial(_context_fields, info, market, response),
                )
            )
        return items
