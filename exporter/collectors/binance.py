"""Binance USD-M futures (ccxt ``binanceusdm``).

Liquidations come from ``forceOrder`` (sampled by Binance: at most the latest per symbol per
second). The order side is the FORCED order's side, so SELL means a long was liquidated. The
quantity is ``z`` (accumulated fill): ccxt's ``contracts`` is ``l``, the last fill only.
"""

from __future__ import annotations

import logging
import time
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
from exporter.shard import WHOLE

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping, Sequence

    from exporter.collectors.ccxt_types import CcxtExchange, Market
    from exporter.shard import Shard
    from exporter.venues import Venue

# Stream names of liquidation feeds: `<symbol>@forceOrder` and the all-market `!forceOrder@arr`.
FORCE_ORDER_STREAMS = ("@forceOrder", "!forceOrder@arr")
# Streams per SUBSCRIBE request (Binance allows 1024 per connection, 10 requests a second).
STREAMS_PER_REQUEST = 100
# 2400 weight/min per IP, USD-M and COIN-M alike (https://www.binance.com/en/support/faq/
# rate-limits-on-binance-futures-281596e222414cdd9051664ea621cdc3); openInterest costs 1 per
# symbol. Stay under half the budget.
REQUEST_WEIGHT_PER_MINUTE = 1200


# Funding every 8 h unless /fapi/v1/fundingInfo lists the symbol with its own interval ("Query
# funding rate info for symbols that had FundingRateCap/FundingRateFloor/fundingIntervalHours
# adjustment": https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/
# rest-api/Get-Funding-Rate-Info).
DEFAULT_FUNDING_INTERVAL_HOURS = 8.0
# fundingInfo changes with Binance's announcements, not by the second: read it every 10 minutes
# (its own budget is 500 / 5 min per IP, shared with /fapi/v1/fundingRate).
FUNDING_INFO_REFRESH_SECONDS = 600.0
log = logging.getLogger(__name__)
# The /futures/data endpoints of the long/short ratios (and openInterestHist): 1000 requests per
# 5 minutes per IP (https://developers.binance.com/docs/derivatives/usds-margined-futures/
# market-data/rest-api/Long-Short-Ratio); half of it.
DATA_REQUESTS_PER_SECOND = 500 / 300.0
# The ratio endpoints by source: accounts net long / net short, among all accounts and among the
# top 20 % by margin; the top 20 %'s long / short position size.
RATIO_PATHS: dict[PositioningSource, str] = {
    "accounts": "GlobalLongShortAccountRatio",
    "top_accounts": "TopLongShortAccountRatio",
    "top_positions": "TopLongShortPositionRatio",
}


def _context_fields(
    premium: Mapping[str, Any], interval_hours: float | InvalidEventError
) -> ContextFields:
    """``premiumIndex`` gives the index price, the funding rate of the running interval
    (``lastFundingRate``: "the latest estimated funding rate", settled at ``nextFundingTime``);
    no prediction beyond it. A dated future (COIN-M) pays no funding: an empty rate and a next
    funding time of 0, read as none."""
    index_price = fields.number(premium, "indexPrice")
    rate = fields.optional_number(premium, "lastFundingRate")
    if rate is None:
        return ContextFields(index_price=index_price)
    if isinstance(interval_hours, InvalidEventError):
        raise interval_hours
    return ContextFields(
        index_price=index_price,
        funding_rate=rate,
        next_funding_ms=fields.timestamp_ms(premium, "nextFundingTime"),
        funding_interval_s=interval_hours * 3600.0,
    )


def _long_short_fields(rows: object) -> tuple[float, int]:
    """The newest row of a ratio endpoint: ``longShortRatio`` at ``timestamp``."""
    if not isinstance(rows, list) or not rows:
        raise InvalidEventError(Reason.MISSING_FIELD, f"no ratio row: {rows!r:.50}")
    row = rows[-1]
    if not isinstance(row, dict):
        raise InvalidEventError(Reason.WRONG_TYPE, f"row={row!r:.50}")
    return fields.number(row, "longShortRatio"), fields.timestamp_ms(row, "timestamp")


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
    # 0: not counted. fundingInfo (every symbol) has a budget of its own, 500 / 5 min per IP.
    MARK_PRICE_WEIGHT: ClassVar[int] = 0
    # premiumIndex, read with the open interest, and fundingInfo for the interval.
    CONTEXT: ClassVar[frozenset[str]] = frozenset(
        {"index_price", "funding_rate", "next_funding_ms", "funding_interval_s"}
    )
    POSITIONING: ClassVar[tuple[PositioningSource, ...]] = tuple(RATIO_PATHS)
    # The parameter each ratio endpoint names its market with (``ratio_market``): on USD-M,
    # ``symbol`` throughout.
    RATIO_PARAMS: ClassVar[Mapping[PositioningSource, str]] = dict.fromkeys(RATIO_PATHS, "symbol")

    def __init__(self, shard: Shard = WHOLE) -> None:
        super().__init__(shard)
        self._intervals: Mapping[str, float | InvalidEventError] | None = None
        self._intervals_at = 0.0

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
        intervals = await self._funding_intervals(exchange)
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
            market = markets[symbol]
            interval = (
                intervals
                if isinstance(intervals, InvalidEventError)
                else intervals.get(market["id"], DEFAULT_FUNDING_INTERVAL_HOURS)
            )
            items.append(
                RawOpenInterest(
                    market,
                    partial(_open_interest_fields, info, mark),
                    partial(_context_fields, mark.get("info") or {}, interval),
                )
            )
        return items

    async def _funding_intervals(
        self, exchange: CcxtExchange
    ) -> Mapping[str, float | InvalidEventError] | InvalidEventError:
        """Funding interval in hours of each market id whose interval was adjusted (all other
        markets: 8 h), or why its row is unreadable (its markets' context is then rejected).
        Read at most every ``FUNDING_INFO_REFRESH_SECONDS``; a failed refresh keeps the last
        answer (with a warning); with none yet, why every market's interval is unknown."""
        now = time.monotonic()
        if self._intervals is not None and now - self._intervals_at < FUNDING_INFO_REFRESH_SECONDS:
            return self._intervals
        call = getattr(exchange, f"{self.API}PublicGetFundingInfo")
        rows = await context_answer(call(), "fundingInfo")
        if isinstance(rows, InvalidEventError):
            if self._intervals is not None:
                log.warning("%s: %s; keeping the last intervals", self.name, rows.detail)
                return self._intervals
            return rows
        intervals: dict[str, float | InvalidEventError] = {}
        for row in rows if isinstance(rows, list) else ():
            if not isinstance(row, dict) or not isinstance(row.get("symbol"), str):
                continue  # names no market
            try:
                intervals[row["symbol"]] = fields.number(row, "fundingIntervalHours")
            except InvalidEventError as exc:
                intervals[row["symbol"]] = exc
        self._intervals, self._intervals_at = intervals, now
        return intervals

    async def read_positioning(
        self, exchange: CcxtExchange, symbols: Sequence[str]
    ) -> list[PositioningItem]:
        """The newest 5-minute row of each ratio endpoint, a request per market and ratio."""
        markets = exchange.markets or {}
        items: list[PositioningItem] = []
        for symbol in symbols:
            market = markets[symbol]
            for source, path in RATIO_PATHS.items():
                call = getattr(exchange, f"{self.API}DataGet{path}")
                params = {
                    self.RATIO_PARAMS[source]: self.ratio_market(market),
                    "period": self.POSITIONING_PERIOD,
                    "limit": 1,
                }
                try:
                    rows = await call(params)
                except (ccxt.BadSymbol, ccxt.BadRequest):
                    items.append(InvalidEventError(Reason.UNKNOWN_SYMBOL, symbol))
                    continue
                items.append(RawLongShort(market, source, partial(_long_short_fields, rows)))
        return items

    @staticmethod
    def ratio_market(market: Market) -> str:
        """How the ratio endpoints name a market: USD-M by its id (BTCUSDT)."""
        return str(market["id"])

    def min_positioning_interval(self, symbol_count: int) -> float:
        return symbol_count * len(RATIO_PATHS) / DATA_REQUESTS_PER_SECOND
