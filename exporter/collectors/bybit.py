"""Bybit v5 linear perpetuals (ccxt ``bybit``).

``allLiquidation.<ID>`` pushes every liquidation (several per frame, every 500 ms). ``S`` is the
side of the POSITION (Buy means a long was liquidated, the opposite of Binance and OKX), ``v`` is
in coins and ``p`` is the bankruptcy price. ccxt has no multi-symbol watch here: one watch and
one subscription per symbol. Open interest and mark price of every symbol come from one
``/v5/market/tickers`` call.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from exporter.collectors import fields
from exporter.collectors.history import HistoryLimits
from exporter.collectors.intake import FrameItem, RawLiquidation, keyed_entry
from exporter.collectors.venue import (
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

    from exporter.collectors.ccxt_types import CcxtExchange
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
            items.append(RawOpenInterest(market, partial(self.ticker_open_interest, info)))
        return items
