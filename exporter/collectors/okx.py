"""OKX perpetual swaps (ccxt ``okx``).

One ``liquidation-orders`` subscription covers every swap; we keep the configured symbols. Sizes
(``sz``) are in CONTRACTS (x ``contractSize`` coins for linear swaps, USD for inverse ones) and
``bkPx`` is the bankruptcy price. ``posSide`` names the position; in net mode it is ``net`` and
the order side tells (a forced sell closes a long). ccxt reads only the first of an entry's
``details``; we read them all.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

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

LIQUIDATION_CHANNEL = "liquidation-orders"
# Events OKX pushes on its own: service notices and the connection-count report.
INFORMATIONAL_EVENTS = ("notice", "channel-conn-count", "channel-conn-count-error", "login")


def _open_interest_fields(info: Mapping[str, Any], mark: Mapping[str, Any]) -> OpenInterestFields:
    """``oiCcy`` is in coins and ``oiUsd`` in USD (``oi`` would be contracts)."""
    return (
        fields.number(info, "oiCcy"),
        fields.number(info, "oiUsd"),
        fields.number(mark, "markPx"),
        fields.timestamp_ms(info, "ts"),
    )


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

    def every_market(self, exchange: CcxtExchange) -> list[str]:
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
        readings = await exchange.fetch_open_interests(None, {"instType": "SWAP"})
        marks = await exchange.fetch_mark_prices(None, {"instType": "SWAP"})
        wanted = set(symbols) if symbols is not None else None
        markets = exchange.markets or {}
        items: list[OpenInterestItem] = []
        for symbol, reading in readings.items():
            market = markets.get(symbol)
            if market is None or (wanted is not None and symbol not in wanted):
                continue
            info = reading.get("info") or {}
            mark = (marks.get(symbol) or {}).get("info") or {}
            items.append(RawOpenInterest(market, partial(_open_interest_fields, info, mark)))
        return items
