"""Binance USD-M futures (ccxt ``binanceusdm``).

Liquidations come from ``forceOrder`` (sampled by Binance: at most the latest per symbol per
second). The order side is the FORCED order's side, so SELL means a long was liquidated. The
quantity is ``z`` (accumulated fill): ccxt's ``contracts`` is ``l``, the last fill only.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import ccxt

from exporter.collectors import fields
from exporter.collectors.history import HistoryLimits
from exporter.collectors.intake import FrameItem, RawEntry, RawLiquidation
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

# Stream names of liquidation feeds: `<symbol>@forceOrder` and the all-market `!forceOrder@arr`.
FORCE_ORDER_STREAMS = ("@forceOrder", "!forceOrder@arr")
# Streams per SUBSCRIBE request (Binance allows 1024 per connection, 10 requests a second).
STREAMS_PER_REQUEST = 100
# 2400 weight/min per IP, USD-M and COIN-M alike (https://www.binance.com/en/support/faq/
# rate-limits-on-binance-futures-281596e222414cdd9051664ea621cdc3); openInterest costs 1 per
# symbol. Stay under half the budget.
REQUEST_WEIGHT_PER_MINUTE = 1200


def _open_interest_fields(info: Mapping[str, Any], mark: Mapping[str, Any]) -> OpenInterestFields:
    """``/fapi/v1/openInterest`` gives coins; USD is derived from the mark price."""
    return (
        fields.number(info, "openInterest"),
        None,
        fields.number(mark, "markPrice"),
        fields.timestamp_ms(info, "time"),
    )


class BinanceVenue(VenueAdapter):
    name: ClassVar[Venue] = "binance"
    ccxt_class: ClassVar[str] = "binanceusdm"
    # The server pings every 3 minutes; we ping too (WebSocket frames) to notice a dead link.
    # Market streams (forceOrder among them) are served under /market/ws, where ccxt 4.5.90
    # connects too (it rewrites the /ws root), so both transports reach the same endpoint.
    NATIVE: ClassVar[NativeFeed] = NativeFeed(
        default_root="wss://fstream.binance.com",
        path="/market/ws",
        keepalive_seconds=30.0,
        all_markets_channel=True,
    )
    SIDES: ClassVar[dict[str, Side]] = {"SELL": "long", "BUY": "short"}
    # /futures/data/openInterestHist: <= 500 rows, the last 30 days only, `sumOpenInterest` in
    # coins, and its own limit of 1000 requests / 5 min per IP (we take half). /fapi/v1/klines:
    # 499 rows cost weight 2 where 500-1000 cost 5; ccxt's throttle keeps weight at 1200/min.
    HISTORY: ClassVar[HistoryLimits] = HistoryLimits(
        open_interest_rows=500,
        candle_rows=499,
        open_interest_days=30.0,
        open_interest_budget=(500, 300.0),
    )
    # The REST family: ccxt's `<API><name>` roots (`urls.api` keys) we point at `/<API>/<version>`
    # under our root, and `<API>Data` at /futures/data.
    API: ClassVar[str] = "fapi"
    API_VERSIONS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("Public", "v1"),
        ("PublicV2", "v2"),
        ("PublicV3", "v3"),
        ("Private", "v1"),
    )
    # ccxt's `urls.api.ws` key of this feed's contracts.
    WS_API: ClassVar[str] = "linear"
    # Weight of a poll's one mark-price call (every symbol) beside openInterest's 1 per symbol;
    # 0: not counted.
    MARK_PRICE_WEIGHT: ClassVar[int] = 0

    @classmethod
    def url_overrides(cls, rest_url: str | None, ws_url: str | None) -> dict[str, Any]:
        api: dict[str, Any] = {}
        if rest_url:
            api |= {f"{cls.API}{name}": f"{rest_url}/{cls.API}/{v}" for name, v in cls.API_VERSIONS}
            api[f"{cls.API}Data"] = rest_url + "/futures/data"
        if ws_url:
            api["ws"] = {cls.WS_API: ws_url + "/ws"}
        return {"api": api} if api else {}

    @classmethod
    def ccxt_options(cls) -> dict[str, Any]:
        # Currencies come from a signed endpoint; markets alone are what we need.
        return {"fetchCurrencies": False}

    def classify_frame(self, message: object) -> FrameKind:
        if not isinstance(message, dict):
            return FrameKind.UNKNOWN
        if "error" in message:
            return FrameKind.REJECT
        if "result" in message and "id" in message:
            return FrameKind.ACK
        stream = message.get("stream")
        if isinstance(stream, str) and stream.endswith(FORCE_ORDER_STREAMS):
            return FrameKind.DATA  # a combined-stream frame, whatever its data holds
        if message.get("e") == "forceOrder":
            return FrameKind.DATA
        return FrameKind.UNKNOWN  # keepalive is WebSocket ping/pong, never a text frame

    def split_frame(self, message: Mapping[str, Any]) -> Sequence[FrameItem]:
        """One order per frame: ``o`` of the event, raw (``/ws``) or wrapped in a combined
        stream's ``{"stream", "data"}``."""
        payload = message.get("data", message) if "stream" in message else message
        if not isinstance(payload, dict):
            return [InvalidEventError(Reason.WRONG_TYPE, f"data={payload!r:.50}")]
        order = payload.get("o")
        if order is None:
            return [InvalidEventError(Reason.MISSING_FIELD, "o")]
        if not isinstance(order, dict):
            return [InvalidEventError(Reason.WRONG_TYPE, f"o={order!r:.50}")]
        market_id = order.get("s")
        if not isinstance(market_id, str) or not market_id:
            return [InvalidEventError(Reason.MISSING_FIELD, f"o.s={market_id!r:.50}")]
        return [RawEntry(market_id, order)]

    def parse_entry(self, entry: Mapping[str, Any]) -> RawLiquidation:
        return RawLiquidation(
            side=fields.lookup(entry, "S", self.SIDES, Reason.INVALID_SIDE),
            price=fields.number(entry, "ap"),
            amount=fields.number(entry, "z"),
            timestamp_ms=fields.timestamp_ms(entry, "T"),
        )

    def watch_calls(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[Callable[[], Coroutine[Any, Any, object]]]:
        # None subscribes the all-market stream !forceOrder@arr.
        wanted = list(symbols) if symbols else None
        return [lambda: exchange.watch_liquidations_for_symbols(wanted)]

    def native_subscriptions(self, market_ids: Sequence[str] | None) -> list[dict[str, Any]]:
        """``{"method": "SUBSCRIBE", "params": [...], "id": n}``, answered ``{"result": null,
        "id": n}``; stream names are lower-case market ids."""
        streams = (
            ["!forceOrder@arr"]
            if market_ids is None
            else [f"{market_id.lower()}@forceOrder" for market_id in market_ids]
        )
        return [
            {"method": "SUBSCRIBE", "params": streams[i : i + STREAMS_PER_REQUEST], "id": n}
            for n, i in enumerate(range(0, len(streams), STREAMS_PER_REQUEST), start=1)
        ]

    def min_poll_interval(self, symbol_count: int) -> float:
        return (symbol_count + self.MARK_PRICE_WEIGHT) * 60.0 / REQUEST_WEIGHT_PER_MINUTE

    async def read_open_interest(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[OpenInterestItem]:
        wanted = list(symbols) if symbols is not None else self.every_market(exchange)
        marks = await exchange.fetch_mark_prices(wanted if symbols is not None else None)
        markets = exchange.markets or {}
        items: list[OpenInterestItem] = []
        for symbol in wanted:
            try:
                reading = await exchange.fetch_open_interest(symbol)
            except (ccxt.BadSymbol, ccxt.BadRequest):
                # One delisted market must not stop the poll of all the others.
                items.append(InvalidEventError(Reason.UNKNOWN_SYMBOL, symbol))
                continue
            info = reading.get("info") or {}
            mark = marks.get(symbol) or {}
            items.append(
                RawOpenInterest(markets[symbol], partial(_open_interest_fields, info, mark))
            )
        return items
