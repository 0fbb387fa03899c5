"""Bybit v5 linear perpetuals (ccxt ``bybit``).

``allLiquidation.<ID>`` pushes every liquidation (several per frame, every 500 ms). ``S`` is the
side of the POSITION (Buy means a long was liquidated, the opposite of Binance and OKX), ``v`` is
in coins and ``p`` is the bankruptcy price. ccxt has no multi-symbol watch here: one watch and
one subscription per symbol. Open interest and mark price of every symbol come from one
``/v5/market/tickers`` call.

The same tickers row gives the market context (https://bybit-exchange.github.io/docs/v5/market/
tickers): ``indexPrice``, ``fundingRate`` (the rate of the running interval, settled at
``nextFundingTime``, ms) and ``fundingIntervalHour`` (added 2025-10-23; where a row lacks it, the
interval is instruments-info's ``fundingInterval`` in minutes, from ccxt's market ``info``,
https://bybit-exchange.github.io/docs/v5/market/instrument). Bybit publishes no predicted rate
beyond the running one. The long/short ratio of accounts is ``/v5/market/account-ratio``
(https://bybit-exchange.github.io/docs/v5/market/long-short-ratio), one request per market:
``buyRatio`` / ``sellRatio``, the shares of holders net long and net short.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import ccxt

from exporter.collectors import fields
from exporter.collectors.history import HistoryLimits
from exporter.collectors.intake import FrameItem, RawLiquidation, keyed_entry
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
)
from exporter.events import InvalidEventError, PositioningSource, Reason, Side

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping, Sequence

    from exporter.collectors.ccxt_types import CcxtExchange, Market
    from exporter.venues import Venue

# Per topic: the market id field of an entry, and whether `data` is a list of entries
# (allLiquidation, several per push) or a single entry (the older liquidation.* topic).
TOPICS: dict[str, tuple[str, bool]] = {
    "allLiquidation.": ("s", True),
    "liquidation.": ("symbol", False),
}


# Bybit documents at most 10 topics per subscribe request for public streams.
TOPICS_PER_REQUEST = 10


# The answer to the app-level {"op": "ping"} keepalive carries op "ping" (or "pong").
KEEPALIVE_OPS = ("ping", "pong")

# Bybit allows 600 requests / 5 s per IP (https://bybit-exchange.github.io/docs/v5/rate-limit/
# rate-limit); ccxt spaces its market-data calls (cost 5 at 20 ms) 100 ms apart: 10 a second, a
# sixth of half the budget. A request per market therefore takes this long, whatever the budget.
MARKET_REQUEST_SECONDS = 0.1

# The account-ratio period asked for (the `period` label says "5m").
RATIO_PERIOD = "5min"


def ticker_context(info: Mapping[str, Any], market: Market) -> ContextFields:
    """Index price, funding rate and next funding time of a tickers row; its funding interval
    from ``fundingIntervalHour`` (whole hours), else from the market's instruments-info row
    (``fundingInterval``, minutes), which ccxt loaded with the markets. A row with an empty
    ``fundingRate`` (a dated future) has its index price only."""
    index_price = fields.number(info, "indexPrice")
    rate = fields.optional_number(info, "fundingRate")
    if rate is None:  # a dated future (``symbols: all`` lists them) pays no funding
        return ContextFields(index_price=index_price)
    hours = info.get("fundingIntervalHour")
    interval_s = (
        fields.number(info, "fundingIntervalHour") * 3600.0
        if hours is not None and hours != ""
        else fields.number(market.get("info") or {}, "fundingInterval") * 60.0
    )
    return ContextFields(
        index_price=index_price,
        funding_rate=rate,
        next_funding_ms=fields.timestamp_ms(info, "nextFundingTime"),
        funding_interval_s=interval_s,
    )


def account_ratio(response: object) -> tuple[float, int]:
    """The newest row (rows come newest first) of an account-ratio answer: holders net long /
    holders net short, at its ``timestamp``."""
    result = response.get("result") if isinstance(response, dict) else None
    rows = result.get("list") if isinstance(result, dict) else None
    if not isinstance(rows, list) or not rows:
        raise InvalidEventError(Reason.MISSING_FIELD, f"no account-ratio row: {response!r:.50}")
    row = rows[0]
    if not isinstance(row, dict):
        raise InvalidEventError(Reason.WRONG_TYPE, f"row={row!r:.50}")
    short = fields.number(row, "sellRatio")
    if not short > 0:
        raise InvalidEventError(Reason.NOT_POSITIVE, f"sellRatio={short!r}")
    return fields.number(row, "buyRatio") / short, fields.timestamp_ms(row, "timestamp")


class BybitVenue(VenueAdapter):
    name: ClassVar[Venue] = "bybit"
    ccxt_class: ClassVar[str] = "bybit"
    # Bybit drops a connection that sends nothing for 10 minutes and asks for a ping every 20 s.
    NATIVE: ClassVar[NativeFeed] = NativeFeed(
        default_root="wss://stream.bybit.com",
        path="/v5/public/linear",
        keepalive_seconds=20.0,
        keepalive='{"op":"ping"}',
        all_markets_channel=False,
    )
    # The v5 `category` (and ccxt's `subType`) of the markets; the stream is NATIVE.path.
    CATEGORY: ClassVar[str] = "linear"
    # Side of the liquidated POSITION in every topic: allLiquidation `S` and the retired
    # liquidation.<ID> `side` both read "Position side. Buy, Sell. When you receive a Buy
    # update, this means that a long position has been liquidated"
    # (https://bybit-exchange.github.io/docs/v5/websocket/public/all-liquidation and
    # .../v5/websocket/public/liquidation).
    SIDES: ClassVar[dict[str, Side]] = {"Buy": "long", "Sell": "short"}
    # Per entry shape, the key that tells it and its (side, size, price, time) fields, checked
    # in order (none found: the first): allLiquidation, then the retired liquidation.* topic in
    # its v2 (`qty`, `time`) and v5 (`size`, `updatedTime`) shapes (both have `side`).
    ENTRY_FIELDS: ClassVar[tuple[tuple[str, tuple[str, str, str, str]], ...]] = (
        ("S", ("S", "v", "p", "T")),
        ("qty", ("side", "qty", "price", "time")),  # the v2 liquidation.* topic (2021)
        ("side", ("side", "size", "price", "updatedTime")),
    )
    # /v5/market/open-interest (intervalTime=5min): <= 200 rows, coins for linear contracts.
    # /v5/market/kline: <= 1000 rows. 600 requests / 5 s per IP; ccxt spaces these 100 ms apart.
    HISTORY: ClassVar[HistoryLimits | None] = HistoryLimits(
        open_interest_rows=200, candle_rows=1000
    )
    # All from the tickers row the open interest comes from (see the module docstring); no
    # predicted rate: `fundingRate` is the running interval's, and Bybit gives none beyond it.
    CONTEXT: ClassVar[frozenset[str]] = frozenset(
        {"index_price", "funding_rate", "next_funding_ms", "funding_interval_s"}
    )
    # Bybit's one ratio: all accounts (no top-trader ratios).
    POSITIONING: ClassVar[tuple[PositioningSource, ...]] = ("accounts",)

    @classmethod
    def url_overrides(cls, rest_url: str | None, ws_url: str | None) -> dict[str, Any]:
        api: dict[str, Any] = {}
        if rest_url:
            api["public"] = rest_url
        if ws_url:
            api["ws"] = {"public": {cls.CATEGORY: ws_url + cls.NATIVE.path}}
        return {"api": api} if api else {}

    @classmethod
    def ccxt_options(cls) -> dict[str, Any]:
        return {"fetchMarkets": {"types": [cls.CATEGORY]}}

    def classify_frame(self, message: object) -> FrameKind:
        if not isinstance(message, dict):
            return FrameKind.UNKNOWN
        if message.get("op") in KEEPALIVE_OPS:
            return FrameKind.CONTROL
        if message.get("op") == "subscribe":
            return FrameKind.ACK if message.get("success") is True else FrameKind.REJECT
        topic = message.get("topic")
        if isinstance(topic, str) and topic.startswith(tuple(TOPICS)):
            return FrameKind.DATA
        return FrameKind.UNKNOWN

    def split_frame(self, message: Mapping[str, Any]) -> Sequence[FrameItem]:
        topic = str(message.get("topic"))
        id_field, is_list = next(TOPICS[t] for t in TOPICS if topic.startswith(t))
        data = message.get("data")
        if data is None:
            return [InvalidEventError(Reason.MISSING_FIELD, "data")]
        if not is_list:
            data = [data]
        elif not isinstance(data, list):
            return [InvalidEventError(Reason.WRONG_TYPE, f"data={data!r:.50}")]
        return [keyed_entry(item, id_field) for item in data]

    def parse_entry(self, entry: Mapping[str, Any]) -> RawLiquidation:
        side, size, price, time = next(
            (shape for key, shape in self.ENTRY_FIELDS if key in entry), self.ENTRY_FIELDS[0][1]
        )
        return RawLiquidation(
            side=fields.lookup(entry, side, self.SIDES, Reason.INVALID_SIDE),
            price=fields.number(entry, price),
            amount=fields.number(entry, size),
            timestamp_ms=fields.timestamp_ms(entry, time),
        )

    def watch_calls(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[Callable[[], Coroutine[Any, Any, object]]]:
        # No multi-symbol watch in ccxt here: one watch (and one acknowledgement) per symbol.
        wanted = list(symbols) if symbols is not None else self.every_market(exchange)
        return [partial(exchange.watch_liquidations, symbol) for symbol in wanted]

    def expected_acks(self, symbols: Sequence[str] | None) -> int:
        return len(symbols) if symbols else 1

    def native_subscriptions(self, market_ids: Sequence[str] | None) -> list[dict[str, Any]]:
        """``{"op": "subscribe", "args": ["allLiquidation.<id>", ...]}``, at most
        ``TOPICS_PER_REQUEST`` topics each, one acknowledgement each. There is no all-market
        topic: ``market_ids`` is never None here (``all_markets_channel`` is False)."""
        topics = [f"allLiquidation.{market_id}" for market_id in market_ids or ()]
        return [
            {"op": "subscribe", "args": topics[i : i + TOPICS_PER_REQUEST]}
            for i in range(0, len(topics), TOPICS_PER_REQUEST)
        ]

    @staticmethod
    def ticker_open_interest(info: Mapping[str, Any]) -> OpenInterestFields:
        """A linear ticker carries coins, USD value and mark price; it has no per-symbol time."""
        return (
            fields.number(info, "openInterest"),
            fields.number(info, "openInterestValue"),
            fields.number(info, "markPrice"),
            None,
        )

    async def read_open_interest(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[OpenInterestItem]:
        """One ``/v5/market/tickers?category=<CATEGORY>`` call for every market."""
        tickers = await exchange.fetch_tickers(None, {"subType": self.CATEGORY})
        wanted = set(symbols) if symbols is not None else None
        markets = exchange.markets or {}
        items: list[OpenInterestItem] = []
        for symbol, ticker in tickers.items():
            market = markets.get(symbol)
            if market is None or (wanted is not None and symbol not in wanted):
                continue
            info = ticker.get("info") or {}
            items.append(
                RawOpenInterest(
                    market,
                    partial(self.ticker_open_interest, info),
                    partial(ticker_context, info, market),
                )
            )
        return items

    async def read_positioning(
        self, exchange: CcxtExchange, symbols: Sequence[str]
    ) -> list[PositioningItem]:
        """The newest 5-minute row of ``/v5/market/account-ratio?category=<CATEGORY>``, a
        request per market."""
        call = getattr(exchange, "publicGetV5MarketAccountRatio")  # noqa: B009 - ccxt's implicit API
        markets = exchange.markets or {}
        items: list[PositioningItem] = []
        for symbol in symbols:
            market = markets[symbol]
            params = {
                "category": self.CATEGORY,
                "symbol": market["id"],
                "period": RATIO_PERIOD,
                "limit": 1,
            }
            try:
                response = await call(params)
            except (ccxt.BadSymbol, ccxt.BadRequest):
                # One market Bybit keeps no ratio of must not stop the poll of all the others.
                items.append(InvalidEventError(Reason.UNKNOWN_SYMBOL, symbol))
                continue
            items.append(RawLongShort(market, "accounts", partial(account_ratio, response)))
        return items

    def min_positioning_interval(self, symbol_count: int) -> float:
        """A request per market, paced by ccxt (``MARKET_REQUEST_SECONDS``)."""
        return symbol_count * MARKET_REQUEST_SECONDS
