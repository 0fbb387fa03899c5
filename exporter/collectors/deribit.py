"""Deribit perpetuals: REST through ccxt ``deribit``, the stream through our own client (ccxt.pro
has no liquidation watch for Deribit).

Deribit has no liquidation channel: liquidations are TRADES flagged ``liquidation``: ``"T"``
the taker was being liquidated, ``"M"`` the maker, ``"MT"`` both, i.e. two liquidations of
one fill, one on each side. Trades without the flag are not entries (they are left out, not
rejected). Unlike the book channel, the trades channel documents no snapshot of past trades on
subscribe: every trade frame is new. ``amount`` is in USD on the inverse perpetuals
(``BTC-PERPETUAL``, ``ETH-PERPETUAL``) and in the base coin on the linear USDC ones
(``SOL_USDC-PERPETUAL``); we state coins.

One ``trades.<instrument>.100ms`` channel per perpetual, up to 500 per ``public/subscribe``
(the unauthenticated ``raw`` interval is refused with 13778): a per-currency channel
(``trades.future.BTC.100ms``) would also bring every dated future of the currency, and for
USDC every linear perpetual, watched or not. A subscribe is acknowledged by the list of
channels taken; an unknown channel is silently left out of it, so an empty list is a refusal.
The connection opens with ``public/set_heartbeat``; the server then sends ``test_request``s,
each answered with ``public/test`` (``reply``), and closes a connection that does not answer.
We also send ``public/test`` ourselves every 20 s, so silence means a dead connection.

Open interest and mark price: one ``public/get_book_summary_by_currency`` per settlement
currency watched (BTC, ETH, USDC: at most 3 per poll). Deribit allows 20 non-matching-engine
requests a second (burst 100) per account, public calls an unpublished rate per IP: the 1 s
floor keeps a poll under 3 requests a second. There is no 5-minute open-interest history.

Funding and index price come in the same rows, at no extra request
(https://docs.deribit.com/api-reference/market-data/public-get_book_summary_by_currency):
``current_funding`` and ``funding_8h`` ("perpetual only") and ``estimated_delivery_price``,
which on a perpetual is the index (Deribit prints the same figure as ``index_price`` in a
ticker). Deribit's funding has no payment times: it "is actually calculated and paid/received
continuously", the rate being "expressed as an 8-hour interest rate" (Funding Specifications,
https://support.deribit.com/hc/en-us/articles/31424939178397-Funding-Specifications). So the
rate is ``current_funding``, the rate being paid now, per 8 h; ``funding_8h`` is what the
last 8 hours paid (``interest_8h``, "the funding rate over the trailing eight hours", of
``public/get_funding_rate_history``), a past figure. The interval is the 8 h the rate is
stated per (what annualising it needs); there is no next funding time nor any prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from exporter.collectors import fields
from exporter.collectors.intake import FrameItem, RawEntry, RawLiquidation
from exporter.collectors.venue import (
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

Party = Literal["T", "M"]

TRADES_PREFIX: Final = "trades."
INTERVAL: Final = "100ms"
# Deribit's Market Data Collection Best Practices: subscribe in batches, "e.g. 2 messages of
# 500 each".
CHANNELS_PER_REQUEST: Final = 500
# Our own requests' ids: the heartbeat set-up, then the subscribes. Answers to public/test
# (ours and those to the server's test_request) carry KEEPALIVE_ID and are keepalive traffic.
HEARTBEAT_ID: Final = 1
KEEPALIVE_ID: Final = 0
HEARTBEAT_SECONDS: Final = 30
KEEPALIVE: Final = '{"jsonrpc":"2.0","id":0,"method":"public/test","params":{}}'
# Deribit lists inverse (USD-margined in the coin) perpetuals for these coins only; every
# other coin's perpetual is linear, settled in USDC.
INVERSE_COINS: Final = frozenset({"BTC", "ETH"})
# The period Deribit states every funding rate per (its funding itself is continuous): a venue
# rule, in no response.
FUNDING_PERIOD_S: Final = 8 * 3600.0


def is_inverse(instrument: str) -> bool:
    """Inverse perpetuals are named ``<COIN>-PERPETUAL``, linear ones ``<COIN>_USDC-PERPETUAL``
    (https://docs.deribit.com/api-reference/market-data/public-get_instruments)."""
    return "_" not in instrument.partition("-")[0]


@dataclass(frozen=True, slots=True)
class Liquidated:
    """One liquidated party of a flagged trade: the taker (``T``) or the maker (``M``)."""

    party: Party
    trade: Mapping[str, Any]


def _trade_items(trade: object) -> list[FrameItem]:
    """The liquidations of one trade: none without the flag, two for ``MT``."""
    if not isinstance(trade, dict):
        return [InvalidEventError(Reason.WRONG_TYPE, f"trade {trade!r:.50}")]
    flag = trade.get("liquidation")
    if flag is None:
        return []  # an ordinary trade
    if flag not in ("T", "M", "MT"):
        return [InvalidEventError(Reason.INVALID_SIDE, f"liquidation={flag!r:.50}")]
    market_id = trade.get("instrument_name")
    if not isinstance(market_id, str) or not market_id:
        return [InvalidEventError(Reason.MISSING_FIELD, f"instrument_name={market_id!r:.50}")]
    parties: tuple[Party, ...] = ("M", "T") if flag == "MT" else (flag,)
    return [RawEntry(market_id, Liquidated(party, trade)) for party in parties]


def _answer_kind(message: Mapping[str, Any]) -> FrameKind:
    """The answer to one of our requests: public/test's is keepalive traffic; a subscribe that
    took none of its channels answers an empty list."""
    if message.get("id") == KEEPALIVE_ID:
        return FrameKind.CONTROL
    return FrameKind.REJECT if message["result"] == [] else FrameKind.ACK


def _subscription_kind(params: object) -> FrameKind:
    channel = params.get("channel") if isinstance(params, dict) else None
    if isinstance(channel, str) and channel.startswith(TRADES_PREFIX):
        return FrameKind.DATA
    return FrameKind.UNKNOWN


def _open_interest_fields(row: Mapping[str, Any], *, inverse: bool) -> OpenInterestFields:
    """``open_interest`` is USD on inverse perpetuals and coins on linear ones (Deribit
    ``public/get_book_summary_by_currency``); ``creation_timestamp`` is the reading's time."""
    open_interest = fields.number(row, "open_interest")
    mark = fields.number(row, "mark_price")
    when = fields.timestamp_ms(row, "creation_timestamp")
    if not inverse:
        return open_interest, None, mark, when
    if mark == 0:
        raise InvalidEventError(Reason.NOT_POSITIVE, "mark_price=0")
    return open_interest / mark, open_interest, mark, when


def _context_fields(row: Mapping[str, Any]) -> ContextFields:
    """The index and the funding rate being paid now, per 8 h (see the module docstring)."""
    return ContextFields(
        index_price=fields.number(row, "estimated_delivery_price"),
        funding_rate=fields.number(row, "current_funding"),
        funding_interval_s=FUNDING_PERIOD_S,
    )


class DeribitVenue(VenueAdapter):
    name: ClassVar[Venue] = "deribit"
    ccxt_class: ClassVar[str | None] = "deribit"
    CCXT_STREAMS: ClassVar[bool] = False
    HISTORY: ClassVar[HistoryLimits | None] = None
    NATIVE: ClassVar[NativeFeed] = NativeFeed(
        default_root="wss://www.deribit.com",
        path="/ws/api/v2",
        keepalive_seconds=20.0,
        keepalive=KEEPALIVE,
        all_markets_channel=False,
    )
    # The side of the liquidated POSITION from the trade's ``direction``, which is the TAKER's
    # order side (Deribit public trade: "direction: Trade direction of the taker";
    # "liquidation: "M" when maker side of trade was under liquidation, "T" when taker side
    # was under liquidation, "MT" when both", https://docs.deribit.com/subscriptions/trades/
    # tradesinstrument_nameinterval). A liquidated taker's forced SELL closes a long; the maker
    # is on the other side of the taker, so a taker BUY means the liquidated maker sold: a long.
    SIDES: ClassVar[dict[Party, dict[str, Side]]] = {
        "T": {"sell": "long", "buy": "short"},
        "M": {"buy": "long", "sell": "short"},
    }
    # The book summary's index and current funding; funding is continuous, stated per 8 h.
    CONTEXT: ClassVar[frozenset[str]] = frozenset(
        {"index_price", "funding_rate", "funding_interval_s"}
    )
    FIXED_FUNDING_INTERVAL_S: ClassVar[float | None] = FUNDING_PERIOD_S

    @classmethod
    def url_overrides(cls, rest_url: str | None, ws_url: str | None) -> dict[str, Any]:
        api: dict[str, Any] = {}
        if rest_url:
            api["rest"] = rest_url
        if ws_url:
            api["ws"] = ws_url + cls.NATIVE.path
        return {"api": api} if api else {}

    @classmethod
    def coin_symbol(cls, coin: str) -> str:
        """BTC and ETH mean the inverse perpetual (``BTC/USD:BTC``), other coins the USDC one."""
        return f"{coin}/USD:{coin}" if coin in INVERSE_COINS else f"{coin}/USDC:USDC"

    def listed_markets(self, exchange: CcxtExchange) -> list[str]:
        """Every active perpetual, inverse and linear."""
        return [
            symbol
            for symbol, market in (exchange.markets or {}).items()
            if market.get("swap") and market.get("active") is not False
        ]

    # --- the liquidation stream -------------------------------------------------------------

    def classify_frame(self, message: object) -> FrameKind:
        if not isinstance(message, dict):
            return FrameKind.UNKNOWN
        if "error" in message:
            return FrameKind.REJECT
        if "result" in message:
            return _answer_kind(message)
        method = message.get("method")
        if method == "subscription":
            return _subscription_kind(message.get("params"))
        return FrameKind.CONTROL if method == "heartbeat" else FrameKind.UNKNOWN

    def reply(self, message: object) -> str | None:
        """``public/test`` for the server's ``test_request`` (Deribit closes the connection
        when one goes unanswered)."""
        if isinstance(message, dict) and message.get("method") == "heartbeat":
            params = message.get("params")
            if isinstance(params, dict) and params.get("type") == "test_request":
                return KEEPALIVE
        return None

    def split_frame(self, message: Any) -> Sequence[FrameItem]:
        """Every liquidated party of every flagged trade of ``params.data``."""
        params = message.get("params")
        data = params.get("data") if isinstance(params, dict) else None
        if not isinstance(data, list):
            return [InvalidEventError(Reason.WRONG_TYPE, f"params.data={data!r:.50}")]
        items: list[FrameItem] = []
        for trade in data:
            items.extend(_trade_items(trade))
        return items

    def parse_entry(self, entry: Any) -> RawLiquidation:
        """One liquidated party; coins are USD / price on inverse perpetuals."""
        liquidated: Liquidated = entry
        trade = liquidated.trade
        side = fields.lookup(trade, "direction", self.SIDES[liquidated.party], Reason.INVALID_SIDE)
        price = fields.number(trade, "price")
        amount = fields.number(trade, "amount")
        if is_inverse(str(trade.get("instrument_name"))):
            if price == 0:
                raise InvalidEventError(Reason.NOT_POSITIVE, "price=0")
            amount /= price
        return RawLiquidation(
            side=side,
            price=price,
            amount=amount,
            timestamp_ms=fields.timestamp_ms(trade, "timestamp"),
            entry_id=fields.entry_id(trade, "trade_id"),
        )

    def watch_calls(
        self,
        exchange: CcxtExchange,  # noqa: ARG002 - ccxt.pro does not stream Deribit liquidations
        symbols: Sequence[str] | None,  # noqa: ARG002
    ) -> list[Callable[[], Coroutine[Any, Any, object]]]:
        return []

    def native_subscriptions(self, market_ids: Sequence[str] | None) -> list[dict[str, Any]]:
        """``public/set_heartbeat`` (answered ``"ok"``), then ``public/subscribe`` with at most
        ``CHANNELS_PER_REQUEST`` channels each (answered with the channels taken). There is no
        all-market channel: ``market_ids`` is never None here."""
        channels = [f"{TRADES_PREFIX}{market_id}.{INTERVAL}" for market_id in market_ids or ()]
        heartbeat = {
            "jsonrpc": "2.0",
            "id": HEARTBEAT_ID,
            "method": "public/set_heartbeat",
            "params": {"interval": HEARTBEAT_SECONDS},
        }
        subscribes = [
            {
                "jsonrpc": "2.0",
                "id": HEARTBEAT_ID + n,
                "method": "public/subscribe",
                "params": {"channels": channels[i : i + CHANNELS_PER_REQUEST]},
            }
            for n, i in enumerate(range(0, len(channels), CHANNELS_PER_REQUEST), start=1)
        ]
        return [heartbeat, *subscribes]

    # --- open interest ---------------------------------------------------------------------

    async def read_open_interest(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[OpenInterestItem]:
        """One book summary per settlement currency of the watched perpetuals."""
        markets = exchange.markets or {}
        wanted = list(symbols) if symbols is not None else self.every_market(exchange)
        by_currency: dict[str, dict[str, Market]] = {}
        for symbol in wanted:
            market = markets[symbol]
            by_currency.setdefault(str(market["settleId"]), {})[str(market["id"])] = market
        api: Any = exchange  # ccxt's implicit endpoint methods are not in CcxtExchange
        items: list[OpenInterestItem] = []
        for currency, by_id in sorted(by_currency.items()):
            response = await api.publicGetGetBookSummaryByCurrency(
                {"currency": currency, "kind": "future"}
            )
            items.extend(_readings(response, by_id))
        return items


def _readings(response: object, by_id: Mapping[str, Market]) -> list[OpenInterestItem]:
    """A reading per watched instrument of one currency's book summary, or why there is none."""
    rows = response.get("result") if isinstance(response, dict) else None
    if not isinstance(rows, list):
        return [InvalidEventError(Reason.MALFORMED, f"result of {symbol}") for symbol in by_id]
    found: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        if isinstance(row, dict) and row.get("instrument_name") in by_id:
            found[row["instrument_name"]] = row
    items: list[OpenInterestItem] = []
    for market_id, market in by_id.items():
        row = found.get(market_id)
        if row is None:
            items.append(InvalidEventError(Reason.MISSING_FIELD, f"no book summary of {market_id}"))
            continue
        read = partial(_open_interest_fields, row, inverse=bool(market.get("inverse")))
        items.append(RawOpenInterest(market, read, partial(_context_fields, row)))
    return items
