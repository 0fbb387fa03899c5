"""Bitget USDT-M perpetual futures (ccxt ``bitget`` for REST; ccxt.pro streams no public
liquidations here, so the native client always carries the stream).

The UTA (v3) public ``liquidation`` topic of instType ``usdt-futures`` covers every USDT-M
contract. It is SAMPLED: one push per second holding, per pair, only the largest long and the
largest short liquidation of the previous second
(https://www.bitget.com/api-doc/uta/websocket/public/Liquidation-Channel), so its totals are
lower bounds. ``side`` is the side of the POSITION; ``amount`` is in the QUOTE coin (USDT), so
coins are ``amount / price`` (a recorded frame's amounts are exactly lot-size multiples of the
price: 13.70319 = 83.1 APE x 0.1649).

Open interest (``holdingAmount``, base coin) and mark price of every contract come from one
``/api/v2/mix/market/tickers?productType=USDT-FUTURES`` call, which also carries the funding rate
and the index price (https://www.bitget.com/api-doc/contract/market/Get-All-Symbol-Ticker).
When funding is paid next (``nextUpdate``, ms) and how often (``fundingRateInterval``, hours: 1,
2, 4 or 8) come from ``/api/v2/mix/market/current-fund-rate?productType=USDT-FUTURES``, every
contract in one call when no symbol is given
(https://www.bitget.com/api-doc/contract/market/Get-Current-Funding-Rate). Bitget publishes no
predicted rate: ``fundingRate`` is the current period's, paid at ``nextUpdate``. Bitget serves no
open-interest history, so there is no backfill.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Final

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
from exporter.events import InvalidEventError, Reason

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping, Sequence

    from exporter.collectors.ccxt_types import CcxtExchange
    from exporter.collectors.history import HistoryLimits
    from exporter.events import Side
    from exporter.venues import Venue

TOPIC: Final = "liquidation"
INST_TYPE: Final = "usdt-futures"  # the v3 name; REST v2 calls it USDT-FUTURES
PRODUCT_TYPE: Final = "USDT-FUTURES"
SETTLE: Final = "USDT"
SECONDS_PER_HOUR: Final = 3600.0


def _open_interest_fields(row: Mapping[str, Any]) -> OpenInterestFields:
    """``holdingAmount`` is in the base coin; USD from the mark price; ``ts`` in ms."""
    return (
        fields.number(row, "holdingAmount"),
        None,
        fields.number(row, "markPrice"),
        fields.timestamp_ms(row, "ts"),
    )


def _context_fields(
    ticker: Mapping[str, Any], schedule: Mapping[str, Any] | InvalidEventError | None
) -> ContextFields:
    """Funding rate and index price from the ticker; the next funding time (ms) and the
    interval (hours) from the symbol's current-fund-rate row (why there is none if that call
    failed)."""
    if isinstance(schedule, InvalidEventError):
        raise schedule
    if schedule is None:
        symbol = ticker.get("symbol")
        raise InvalidEventError(Reason.MISSING_FIELD, f"{symbol} in current-fund-rate")
    return ContextFields(
        index_price=fields.number(ticker, "indexPrice"),
        funding_rate=fields.number(ticker, "fundingRate"),
        next_funding_ms=fields.timestamp_ms(schedule, "nextUpdate"),
        funding_interval_s=fields.number(schedule, "fundingRateInterval") * SECONDS_PER_HOUR,
    )


class BitgetVenue(VenueAdapter):
    name: ClassVar[Venue] = "bitget"
    ccxt_class: ClassVar[str | None] = "bitget"
    CCXT_STREAMS: ClassVar[bool] = False  # ccxt.pro bitget has no public liquidation watch
    # Bitget drops a connection that sends no text `ping` for 2 minutes and asks for one every
    # 30 s; it answers the text `pong`.
    NATIVE: ClassVar[NativeFeed] = NativeFeed(
        default_root="wss://ws.bitget.com",
        path="/v3/ws/public",
        keepalive_seconds=25.0,
        keepalive="ping",
        all_markets_channel=True,
    )
    # `side` of the liquidated POSITION: "buy" = long position liquidation, "sell" = short
    # (https://www.bitget.com/api-doc/uta/websocket/public/Liquidation-Channel, field `side`).
    SIDES: ClassVar[dict[str, Side]] = {"buy": "long", "sell": "short"}
    HISTORY: ClassVar[HistoryLimits | None] = None  # Bitget has no open-interest history
    # No predicted rate: Bitget states only the current period's (see the module docstring).
    CONTEXT: ClassVar[frozenset[str]] = frozenset(
        {"index_price", "funding_rate", "next_funding_ms", "funding_interval_s"}
    )

    @classmethod
    def url_overrides(cls, rest_url: str | None, ws_url: str | None) -> dict[str, Any]:
        """REST only: ccxt never opens Bitget's WebSocket here (``CCXT_STREAMS`` is False).
        ccxt appends ``/api/v2/...`` to these roots."""
        del ws_url
        if not rest_url:
            return {}
        return {"api": {"spot": rest_url, "mix": rest_url}}

    @classmethod
    def ccxt_options(cls) -> dict[str, Any]:
        """Contracts only: load_markets asks /api/v2/spot/public/coins (ccxt always does) and
        /api/v2/mix/market/contracts once per productType (six; ccxt has no narrower option),
        not the spot and margin lists."""
        return {"fetchMarkets": {"types": ["swap"]}}

    def listed_markets(self, exchange: CcxtExchange) -> list[str]:
        """``symbols: all`` is every active USDT-M perpetual: the ``usdt-futures`` feed carries
        no USDC-M or coin-M contract."""
        return [
            symbol
            for symbol in super().listed_markets(exchange)
            if (exchange.markets or {})[symbol].get("settle") == SETTLE
        ]

    # --- the liquidation stream -------------------------------------------------------------

    def classify_frame(self, message: object) -> FrameKind:
        if not isinstance(message, dict):
            return FrameKind.CONTROL if message == "pong" else FrameKind.UNKNOWN
        event = message.get("event")
        if event == "subscribe":
            return FrameKind.ACK
        if event == "error":
            return FrameKind.REJECT
        if event == "unsubscribe":
            return FrameKind.CONTROL
        arg = message.get("arg")
        if isinstance(arg, dict) and arg.get("topic") == TOPIC and "data" in message:
            return FrameKind.DATA
        return FrameKind.UNKNOWN

    def split_frame(self, message: Any) -> Sequence[FrameItem]:
        """Every ``data`` entry: one (sampled) liquidation each, of any USDT-M pair."""
        data = message.get("data") if isinstance(message, dict) else None
        if not isinstance(data, list):
            return [InvalidEventError(Reason.WRONG_TYPE, f"data={data!r:.50}")]
        return [keyed_entry(item, "symbol") for item in data]

    def parse_entry(self, entry: Any) -> RawLiquidation:
        """``amount`` is USDT (the doc: "Liquidation amount, Unit: quote coin"): coins are
        amount / price."""
        side = fields.lookup(entry, "side", self.SIDES, Reason.INVALID_SIDE)
        price = fields.number(entry, "price")
        if not price > 0:  # also NaN: the division below needs a positive price
            raise InvalidEventError(Reason.NOT_POSITIVE, f"price={price!r}")
        return RawLiquidation(
            side=side,
            price=price,
            amount=fields.number(entry, "amount") / price,
            timestamp_ms=fields.timestamp_ms(entry, "ts"),
        )

    def watch_calls(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[Callable[[], Coroutine[Any, Any, object]]]:
        """None: ccxt.pro bitget has no public liquidation watch (``CCXT_STREAMS`` is False)."""
        del exchange, symbols
        return []

    def native_subscriptions(
        self,
        market_ids: Sequence[str] | None,  # noqa: ARG002 - one topic covers every USDT-M pair
    ) -> list[dict[str, Any]]:
        """One subscription for every USDT-M pair (we keep our markets); Bitget acknowledges
        each arg with ``{"event":"subscribe","arg":...}``."""
        return [{"op": "subscribe", "args": [{"instType": INST_TYPE, "topic": TOPIC}]}]

    # --- open interest ---------------------------------------------------------------------

    async def read_open_interest(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[OpenInterestItem]:
        """``GET /api/v2/mix/market/tickers`` and ``GET /api/v2/mix/market/current-fund-rate``,
        each for every USDT-M contract (Bitget: 20 requests / s per IP on each; the default 1 s
        poll floor uses 5 % of each)."""
        tickers = getattr(exchange, "publicMixGetV2MixMarketTickers")  # noqa: B009 - implicit API
        funding = getattr(exchange, "publicMixGetV2MixMarketCurrentFundRate")  # noqa: B009
        response = await tickers({"productType": PRODUCT_TYPE})
        rows = response.get("data") if isinstance(response, dict) else None
        if not isinstance(rows, list):
            return [InvalidEventError(Reason.WRONG_TYPE, f"tickers={response!r:.50}")]
        rates = await context_answer(funding({"productType": PRODUCT_TYPE}), "current-fund-rate")
        listed = rates.get("data") if isinstance(rates, dict) else None
        schedule: dict[str, Any] | InvalidEventError = (
            rates
            if isinstance(rates, InvalidEventError)
            else {
                str(row.get("symbol")): row
                for row in (listed if isinstance(listed, list) else ())
                if isinstance(row, dict)
            }
        )
        markets = exchange.markets or {}
        by_id = {
            str(m.get("id")): m
            for m in markets.values()
            if m.get("swap") and m.get("settle") == SETTLE
        }
        wanted = set(symbols) if symbols is not None else None
        items: list[OpenInterestItem] = []
        for row in rows:
            if not isinstance(row, dict):
                items.append(InvalidEventError(Reason.WRONG_TYPE, f"ticker {row!r:.50}"))
                continue
            market_id = str(row.get("symbol"))
            market = by_id.get(market_id)
            if market is None or (wanted is not None and market["symbol"] not in wanted):
                continue  # a contract we do not watch (or one listed since load_markets)
            funding_row = (
                schedule if isinstance(schedule, InvalidEventError) else schedule.get(market_id)
            )
            context = partial(_context_fields, row, funding_row)
            items.append(RawOpenInterest(market, partial(_open_interest_fields, row), context))
        return items
