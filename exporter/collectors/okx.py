"""OKX perpetual swaps (ccxt ``okx``).

One ``liquidation-orders`` subscription covers every swap; we keep the configured symbols. Sizes
(``sz``) are in CONTRACTS (x ``contractSize`` coins for linear swaps, USD for inverse ones) and
``bkPx`` is the bankruptcy price. ``posSide`` names the position; in net mode it is ``net`` and
the order side tells (a forced sell closes a long). ccxt reads only the first of an entry's
``details``; we read them all.

The open-interest poll reads, besides ``/public/open-interest`` and ``/public/mark-price`` (every
swap in one call each), the market context in one call more and one per quote currency:
``/api/v5/public/funding-rate?instId=ANY`` ("Get funding rate",
https://www.okx.com/docs-v5/en/#public-data-rest-api-get-funding-rate: ``ANY`` returns every
perpetual and X-Perps contract, 10 requests / 2 s) and ``/api/v5/market/index-tickers?quoteCcy=``
("Get index tickers", https://www.okx.com/docs-v5/en/#public-data-rest-api-get-index-tickers:
every index of one quote currency, 20 requests / 2 s), once per quote currency of the watched
swaps' indexes (a swap's index is its ``uly``: ``BTC-USDT`` for ``BTC-USDT-SWAP``, ``BTC-USD``
for the inverse ``BTC-USD-SWAP``). ``fundingRate`` is the rate settled at ``fundingTime`` (the
next settlement) and the interval is ``nextFundingTime - fundingTime``, as the page says to
read it (OKX moves some swaps from 8 h to 4, 2 or 1 h). No predicted rate: ``nextFundingRate``
went with the ``next_period`` method ("no longer supported"; it is always "").

Long/short ratios: the three "Trading Statistics" contract endpoints
(https://www.okx.com/docs-v5/en/#trading-statistics-rest-api-get-contract-long-short-ratio and
the two top-trader ones beside it), one request per swap and ratio, newest first as
``[[ts, ratio]]``, 5 requests / 2 s each. Top traders are the 5 % of accounts with the largest
open position value.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import ccxt

from exporter.collectors import fields
from exporter.collectors.history import HistoryLimits
from exporter.collectors.intake import FrameItem, RawEntry, RawLiquidation
from exporter.collectors.venue import (
    ContextFields,
    FrameKind,
    NativeFeed,
    OpenInterestFields,
    OpenInterestItem,
    PositioningItem,
    RawLongShort,
    RawOpenInterest,
    VenueAdapter,
    context_answer,
)
from exporter.events import InvalidEventError, PositioningSource, Reason, Side

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping, Sequence

    from exporter.collectors.ccxt_types import CcxtExchange, Market
    from exporter.venues import Venue

    # An answer's ``data`` rows by ``instId``, or why its ``data`` is unreadable (raised by the
    # context of each market that needs it, so that the open interest stands).
    Rows = dict[str, Mapping[str, Any]] | InvalidEventError

LIQUIDATION_CHANNEL = "liquidation-orders"
# Events OKX pushes on its own: service notices and the connection-count report.
INFORMATIONAL_EVENTS = ("notice", "channel-conn-count", "channel-conn-count-error", "login")
# /public/funding-rate answers every swap (and X-Perps future) for this instId.
EVERY_SWAP = "ANY"
# The contract long/short ratio endpoints (ccxt's implicit methods) by source: net-long accounts
# over net-short ones among all accounts and among top traders; top traders' long position size
# over their short one.
RATIO_CALLS: dict[PositioningSource, str] = {
    "accounts": "publicGetRubikStatContractsLongShortAccountRatioContract",
    "top_accounts": "publicGetRubikStatContractsLongShortAccountRatioContractTopTrader",
    "top_positions": "publicGetRubikStatContractsLongShortPositionRatioContractTopTrader",
}
# Each ratio endpoint allows 5 requests / 2 s (the rule is per IP and instrument; we count all
# three against one per-IP budget to be safe); half of it.
RATIO_REQUESTS_PER_SECOND = 5 / 2.0 / 2


def index_id(market: Market) -> str:
    """The swap's index (``BTC-USDT`` for ``BTC-USDT-SWAP``): its underlying, "same as uly"."""
    info = market.get("info") or {}
    return str(info.get("uly") or info.get("instFamily") or f"{market['base']}-{market['quote']}")


def index_quote(index: str) -> str:
    """The ``quoteCcy`` that lists an index: ``USDT`` for ``BTC-USDT``."""
    return index.rpartition("-")[2]


def _open_interest_fields(info: Mapping[str, Any], mark: Mapping[str, Any]) -> OpenInterestFields:
    """``oiCcy`` is in coins and ``oiUsd`` in USD (``oi`` would be contracts)."""
    return (
        fields.number(info, "oiCcy"),
        fields.number(info, "oiUsd"),
        fields.number(mark, "markPx"),
        fields.timestamp_ms(info, "ts"),
    )


def rows_by_id(response: object) -> Rows:
    """The ``data`` rows of an OKX answer by ``instId``; rows without one are skipped (their
    market then reads as missing). A failed call's reason passes through."""
    if isinstance(response, InvalidEventError):
        return response
    data = response.get("data") if isinstance(response, dict) else None
    if not isinstance(data, list):
        return InvalidEventError(Reason.MALFORMED, f"data={data!r:.50}")
    return {
        r["instId"]: r for r in data if isinstance(r, dict) and isinstance(r.get("instId"), str)
    }


def _row(rows: Rows, inst_id: str, what: str) -> Mapping[str, Any]:
    if isinstance(rows, InvalidEventError):
        raise rows
    row = rows.get(inst_id)
    if row is None:
        raise InvalidEventError(Reason.MISSING_FIELD, f"no {what} of {inst_id}")
    return row


def context_fields(funding_rows: Rows, index_rows: Rows, market: Market) -> ContextFields:
    """One swap's row of ``/public/funding-rate`` and its index's of ``/market/index-tickers``:
    ``fundingRate`` settles at ``fundingTime``, the interval is the step to ``nextFundingTime``
    (a reversed pair reads as a non-positive interval and is rejected downstream)."""
    funding = _row(funding_rows, str(market["id"]), "funding rate")
    index = _row(index_rows, index_id(market), "index ticker")
    funding_ms = fields.timestamp_ms(funding, "fundingTime")
    return ContextFields(
        index_price=fields.number(index, "idxPx"),
        funding_rate=fields.number(funding, "fundingRate"),
        next_funding_ms=funding_ms,
        funding_interval_s=(fields.timestamp_ms(funding, "nextFundingTime") - funding_ms) / 1000,
    )


def long_short_row(response: object) -> tuple[float, int]:
    """The newest (first) ``[ts, ratio]`` row of a ratio endpoint's ``data``."""
    data = response.get("data") if isinstance(response, dict) else None
    if not isinstance(data, list) or not data:
        raise InvalidEventError(Reason.MISSING_FIELD, f"no ratio row: {data!r:.50}")
    row = data[0]
    if not isinstance(row, list) or len(row) < 2:
        raise InvalidEventError(Reason.WRONG_TYPE, f"row={row!r:.50}")
    named = {"ts": row[0], "ratio": row[1]}
    return fields.number(named, "ratio"), fields.timestamp_ms(named, "ts")


def _details(order: object) -> list[FrameItem]:
    """The liquidations of one ``data`` item; one InvalidEventError for an item that is not
    one, and one in the place of each ``details`` element that is not a mapping."""
    if not isinstance(order, dict):
        return [InvalidEventError(Reason.WRONG_TYPE, f"data entry {order!r:.50}")]
    market_id = order.get("instId")
    if not isinstance(market_id, str) or not market_id:
        return [InvalidEventError(Reason.MISSING_FIELD, f"instId={market_id!r:.50}")]
    details = order.get("details")
    if details is None or details == []:
        return [InvalidEventError(Reason.MISSING_FIELD, "details")]
    if not isinstance(details, list):
        return [InvalidEventError(Reason.WRONG_TYPE, f"details={details!r:.50}")]
    return [
        RawEntry(market_id, detail)
        if isinstance(detail, dict)
        else InvalidEventError(Reason.WRONG_TYPE, f"details entry {detail!r:.50}")
        for detail in details
    ]


class OkxVenue(VenueAdapter):
    name: ClassVar[Venue] = "okx"
    ccxt_class: ClassVar[str] = "okx"
    # OKX closes a connection silent for 30 s; a text "ping" is answered "pong".
    NATIVE: ClassVar[NativeFeed] = NativeFeed(
        default_root="wss://ws.okx.com:8443",
        path="/ws/v5/public",
        keepalive_seconds=20.0,
        keepalive="ping",
        all_markets_channel=True,
    )
    quantity_in_contracts: ClassVar[bool] = True
    POSITION_SIDES: ClassVar[dict[str, Side]] = {"long": "long", "short": "short"}
    NET_MODE_SIDES: ClassVar[dict[str, Side]] = {"sell": "long", "buy": "short"}
    # /api/v5/rubik/stat/contracts/open-interest-history: <= 100 rows of [ts, contracts, coins,
    # USD], 10 requests / 2 s; ccxt puts the coins (oiCcy) in `baseVolume` and the contracts in
    # `openInterestAmount`. Candles: <= 300 rows, /market/candles for the latest 1440 and
    # /market/history-candles before (ccxt picks), 40 and 20 requests / 2 s. We take half.
    HISTORY: ClassVar[HistoryLimits] = HistoryLimits(
        open_interest_rows=100,
        candle_rows=300,
        open_interest_budget=(5, 2.0),
        candle_budget=(10, 2.0),
        open_interest_coins="baseVolume",
    )
    # Read with the open interest (module docstring); OKX predicts no next rate any more. A poll
    # is one call each to open-interest (20 / 2 s), mark-price and funding-rate (10 / 2 s) and
    # one index-tickers call (20 / 2 s, per IP) per quote currency, at most 3 (USDT, USD, USDC):
    # at the shortest interval, 1 s, each endpoint stays within half its budget.
    CONTEXT: ClassVar[frozenset[str]] = frozenset(
        {"index_price", "funding_rate", "next_funding_ms", "funding_interval_s"}
    )
    POSITIONING: ClassVar[tuple[PositioningSource, ...]] = tuple(RATIO_CALLS)

    @classmethod
    def url_overrides(cls, rest_url: str | None, ws_url: str | None) -> dict[str, Any]:
        api: dict[str, Any] = {}
        if rest_url:
            api["rest"] = rest_url
        if ws_url:
            api["ws"] = ws_url + "/ws/v5"
        return {"api": api} if api else {}

    @classmethod
    def ccxt_options(cls) -> dict[str, Any]:
        return {"fetchMarkets": {"types": ["swap"]}}

    def classify_frame(self, message: object) -> FrameKind:
        if not isinstance(message, dict):
            return FrameKind.CONTROL if message == "pong" else FrameKind.UNKNOWN
        event = message.get("event")
        if event == "subscribe":
            return FrameKind.ACK
        if event == "error":
            return FrameKind.REJECT
        arg = message.get("arg")
        if (
            isinstance(arg, dict)
            and arg.get("channel") == LIQUIDATION_CHANNEL
            and "data" in message
        ):
            return FrameKind.DATA
        return FrameKind.CONTROL if event in INFORMATIONAL_EVENTS else FrameKind.UNKNOWN

    def split_frame(self, message: Mapping[str, Any]) -> Sequence[FrameItem]:
        """Every ``details`` item of every ``data`` item: one liquidation each."""
        data = message.get("data")
        if not isinstance(data, list):
            return [InvalidEventError(Reason.WRONG_TYPE, f"data={data!r:.50}")]
        items: list[FrameItem] = []
        for order in data:
            items.extend(_details(order))
        return items

    def parse_entry(self, entry: Mapping[str, Any]) -> RawLiquidation:
        """One ``details`` item."""
        if entry.get("posSide") == "net":
            side = fields.lookup(entry, "side", self.NET_MODE_SIDES, Reason.INVALID_SIDE)
        else:
            side = fields.lookup(entry, "posSide", self.POSITION_SIDES, Reason.INVALID_SIDE)
        return RawLiquidation(
            side=side,
            price=fields.number(entry, "bkPx"),
            amount=fields.number(entry, "sz"),
            timestamp_ms=fields.timestamp_ms(entry, "ts"),
        )

    def listed_markets(self, exchange: CcxtExchange) -> list[str]:
        """``symbols: all`` on OKX means every swap, linear and inverse."""
        return [s for s, m in (exchange.markets or {}).items() if m.get("swap")]

    def watch_calls(
        self,
        exchange: CcxtExchange,
        symbols: Sequence[str] | None,  # noqa: ARG002 - one feed for all
    ) -> list[Callable[[], Coroutine[Any, Any, object]]]:
        return [partial(exchange.watch_liquidations_for_symbols, None)]

    def native_subscriptions(
        self,
        market_ids: Sequence[str] | None,  # noqa: ARG002 - one feed for all
    ) -> list[dict[str, Any]]:
        """One ``liquidation-orders`` subscription covers every swap (we keep our markets)."""
        args = [{"channel": LIQUIDATION_CHANNEL, "instType": "SWAP"}]
        return [{"op": "subscribe", "args": args}]

    async def read_open_interest(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[OpenInterestItem]:
        """Open interest, mark price, funding (every swap in one call each) and the index
        prices of the watched swaps' quote currencies (one call each)."""
        readings = await exchange.fetch_open_interests(None, {"instType": "SWAP"})
        marks = await exchange.fetch_mark_prices(None, {"instType": "SWAP"})
        wanted = set(symbols) if symbols is not None else None
        markets = exchange.markets or {}
        watched = [
            markets[symbol]
            for symbol in readings
            if symbol in markets and (wanted is None or symbol in wanted)
        ]
        api: Any = exchange  # ccxt's implicit endpoint methods are not in CcxtExchange
        funding = rows_by_id(
            await context_answer(
                api.publicGetPublicFundingRate({"instId": EVERY_SWAP}), "funding-rate"
            )
        )
        indexes: dict[str, Rows] = {}
        for quote in sorted({index_quote(index_id(m)) for m in watched}):
            answer = await context_answer(
                api.publicGetMarketIndexTickers({"quoteCcy": quote}), "index-tickers"
            )
            indexes[quote] = rows_by_id(answer)
        items: list[OpenInterestItem] = []
        for market in watched:
            symbol = market["symbol"]
            info = readings[symbol].get("info") or {}
            mark = (marks.get(symbol) or {}).get("info") or {}
            index_rows = indexes[index_quote(index_id(market))]
            context = partial(context_fields, funding, index_rows, market)
            items.append(
                RawOpenInterest(market, partial(_open_interest_fields, info, mark), context)
            )
        return items

    async def read_positioning(
        self, exchange: CcxtExchange, symbols: Sequence[str]
    ) -> list[PositioningItem]:
        """The newest 5-minute row of each ratio endpoint, a request per swap and ratio."""
        markets = exchange.markets or {}
        items: list[PositioningItem] = []
        for symbol in symbols:
            market = markets[symbol]
            params = {"instId": market["id"], "period": self.POSITIONING_PERIOD, "limit": "1"}
            for source, method in RATIO_CALLS.items():
                try:
                    response = await getattr(exchange, method)(params)
                except ccxt.BadSymbol:  # 51001: OKX keeps no statistics of this swap
                    items.append(InvalidEventError(Reason.UNKNOWN_SYMBOL, symbol))
                    continue
                items.append(RawLongShort(market, source, partial(long_short_row, response)))
        return items

    def min_positioning_interval(self, symbol_count: int) -> float:
        return symbol_count * len(RATIO_CALLS) / RATIO_REQUESTS_PER_SECOND
