"""Bitfinex perpetuals (ccxt ``bitfinex`` for REST; the stream on the native client only).

ccxt.pro does not stream Bitfinex liquidations, so the stream is ours: one ``status`` channel
subscription with key ``liq:global`` carries every liquidation of every pair
(https://docs.bitfinex.com/reference/ws-public-status). Frames are JSON arrays, read by position
and tolerant of extra trailing elements: ``[CHAN_ID, [["pos", POS_ID, MTS, _, SYMBOL, AMOUNT,
BASE_PRICE, _, IS_MATCH, IS_MARKET_SOLD, _, LIQUIDATION_PRICE], ...]]``; ``[CHAN_ID, "hb"]`` is
a heartbeat.

What counts, each liquidation once (field meanings: https://docs.bitfinex.com/reference/
rest-public-liquidations, the same rows as the stream):

- a row with ``IS_MATCH`` 0, the "initial liquidation trigger", one per liquidated position;
  rows with ``IS_MATCH`` 1 are the "market execution" of that position, possibly several, and
  never count (as tardis-node ``src/mappers/bitfinex.ts`` does);
- ``AMOUNT`` is the position's size in coins, positive for a LONG position, negative for a SHORT;
- the price is ``LIQUIDATION_PRICE`` (index 11, "the price at which the position has been
  acquired" by the liquidation engine); a trigger row may carry null there (recorded frames do),
  and then ``BASE_PRICE`` ("the price at which the user entered the position") is the only price
  it states and stands in, off the true price by at most the position's margin;
- ``MTS`` is the exchange time in ms (the documentation's example has a fraction: truncated).

The first data frame after the ``subscribed`` acknowledgement is the channel's snapshot: the
latest liquidation, however old (a recorded one was 12 hours older than its frame, sequence 7 of
its connection). It is not counted (classified CONTROL), so a reconnect does not count it again.

Open interest (coins) and mark price of every perpetual come from one ``/v2/status/deriv?
keys=ALL`` call. The open-interest history (``/v2/status/deriv/{key}/hist``) serves status
snapshots at unaligned times, not 5-minute rows: no backfill (``HISTORY`` None).

Funding and index price come in the same rows (https://docs.bitfinex.com/reference/
rest-public-derivatives-status): ``SPOT_PRICE`` ("book mid price of the underlying Bitfinex
spot trading pair", the spot reference), ``CURRENT_FUNDING`` ("funding applied in the current
8h period"), ``NEXT_FUNDING_EVT_MTS`` (the next funding event) and ``NEXT_FUNDING_ACCRUED``
("current accrued funding for next 8h period"), read as ccxt and tardis-node read them: the
rate, the next funding time and the prediction (the index as tardis-node reads it; ccxt takes
DERIV_PRICE, the derivative's own book mid). The prediction is an accrual so far, not an
estimate of the whole period: two rows of one period that ccxt's bitfinex.py quotes grow in
step with NEXT_FUNDING_STEP (0.00000527 at step 82, 0.00001449 at step 222). Funding
falls "at three specific times a day", every 8 hours (Perpetual Contract Funding Summary,
https://www.bitfinex.com/legal/derivative_funding): the interval is in no response.
"""

from __future__ import annotations

import math
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
from exporter.events import InvalidEventError, Reason
from exporter.shard import WHOLE

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping, Sequence

    from exporter.collectors.ccxt_types import CcxtExchange
    from exporter.collectors.history import HistoryLimits
    from exporter.shard import Shard
    from exporter.venues import Venue

LIQUIDATION_KEY: Final = "liq:global"
HEARTBEAT: Final = "hb"
# Positions of a liquidation row (None: a placeholder); trailing extras are ignored.
ROW_FIELDS: Final = (
    "MSG_TYPE",
    "POS_ID",
    "MTS",
    None,
    "SYMBOL",
    "AMOUNT",
    "BASE_PRICE",
    None,
    "IS_MATCH",
    "IS_MARKET_SOLD",
    None,
    "LIQUIDATION_PRICE",
)
# Positions of a /v2/status/deriv row (https://docs.bitfinex.com/reference/
# rest-public-derivatives-status): the key, then the channel's status fields.
STATUS_FIELDS: Final = {
    "KEY": 0,
    "MTS": 1,
    "SPOT_PRICE": 4,
    "NEXT_FUNDING_EVT_MTS": 8,
    "NEXT_FUNDING_ACCRUED": 9,
    "CURRENT_FUNDING": 12,
    "MARK_PRICE": 15,
    "OPEN_INTEREST": 18,
}
# Funding every 8 hours (see the module docstring).
FUNDING_INTERVAL_S: Final = 8 * 3600.0
# IS_MATCH values: the initial trigger (counted) and a market execution (left out).
TRIGGER: Final = 0
MATCH: Final = 1
# Events the venue sends on its own: the version on connect, platform notices (20051 restart,
# 20060/20061 maintenance), and the answers to our ping and configuration.
INFORMATIONAL_EVENTS: Final = ("info", "pong", "conf")
# /v2/status/deriv: 90 requests a minute per IP (ccxt's cost table); we take half.
STATUS_REQUESTS_PER_MINUTE: Final = 45


def named(row: Sequence[Any], names: Sequence[str | None]) -> dict[str, Any]:
    """A positional row as a mapping by field name (placeholders and extras dropped)."""
    return {name: value for name, value in zip(names, row, strict=False) if name is not None}


def number(row: Mapping[str, Any], name: str) -> float:
    """A JSON number: Bitfinex sends numbers, never numeric strings."""
    value = row.get(name)
    if value is None:
        raise InvalidEventError(Reason.MISSING_FIELD, name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEventError(Reason.WRONG_TYPE, f"{name}={value!r:.50}")
    return float(value)


def timestamp_ms(row: Mapping[str, Any], name: str) -> int:
    """Milliseconds, truncated (the documentation's example has a fraction)."""
    value = number(row, name)
    if not math.isfinite(value):
        raise InvalidEventError(Reason.BAD_TIMESTAMP, f"{name}={value!r}")
    return int(value)


def _row(item: object) -> FrameItem | None:
    """One liquidation row as an entry; None for a market execution (not a liquidation of its
    own); an InvalidEventError for anything else."""
    try:
        return _trigger(item)
    except InvalidEventError as exc:
        return exc


def _trigger(item: object) -> RawEntry | None:
    if not isinstance(item, list):
        raise InvalidEventError(Reason.WRONG_TYPE, f"liquidation row {item!r:.50}")
    row = named(item, ROW_FIELDS)
    if row.get("MSG_TYPE") != "pos":
        raise InvalidEventError(Reason.WRONG_TYPE, f"MSG_TYPE={row.get('MSG_TYPE')!r:.50}")
    if _is_match(row):
        return None
    market_id = row.get("SYMBOL")
    if not isinstance(market_id, str) or not market_id:
        raise InvalidEventError(Reason.MISSING_FIELD, f"SYMBOL={market_id!r:.50}")
    return RawEntry(market_id, row)


def _is_match(row: Mapping[str, Any]) -> bool:
    """``IS_MATCH``: exactly the integer 0 (a trigger) or 1 (a market execution); JSON true
    would compare equal to 1."""
    is_match = row.get("IS_MATCH")
    if is_match is None:
        raise InvalidEventError(Reason.MISSING_FIELD, "IS_MATCH")
    if type(is_match) is not int or is_match not in (TRIGGER, MATCH):
        raise InvalidEventError(Reason.WRONG_TYPE, f"IS_MATCH={is_match!r:.50}")
    return is_match == MATCH


def _open_interest_fields(row: Mapping[str, Any]) -> OpenInterestFields:
    """Open interest in coins (a contract is one coin), USD from the mark price."""
    return (
        number(row, "OPEN_INTEREST"),
        None,
        number(row, "MARK_PRICE"),
        timestamp_ms(row, "MTS"),
    )


def _context_fields(row: Mapping[str, Any]) -> ContextFields:
    """The spot price as the index, the current period's rate, paid at the next funding
    event, and the next period's accrual so far."""
    return ContextFields(
        index_price=number(row, "SPOT_PRICE"),
        funding_rate=number(row, "CURRENT_FUNDING"),
        predicted_funding_rate=number(row, "NEXT_FUNDING_ACCRUED"),
        next_funding_ms=timestamp_ms(row, "NEXT_FUNDING_EVT_MTS"),
        funding_interval_s=FUNDING_INTERVAL_S,
    )


class BitfinexVenue(VenueAdapter):
    name: ClassVar[Venue] = "bitfinex"
    ccxt_class: ClassVar[str | None] = "bitfinex"
    CCXT_STREAMS: ClassVar[bool] = False
    # The venue sends a heartbeat per channel every 15 s; our ping is answered with a pong.
    NATIVE: ClassVar[NativeFeed] = NativeFeed(
        default_root="wss://api-pub.bitfinex.com",
        path="/ws/2",
        keepalive_seconds=15.0,
        keepalive='{"event":"ping","cid":1}',
        all_markets_channel=True,
    )
    HISTORY: ClassVar[HistoryLimits | None] = None
    # Every figure of the market context, from the status rows and the 8-hour schedule.
    CONTEXT: ClassVar[frozenset[str]] = EVERY_CONTEXT
    FIXED_FUNDING_INTERVAL_S: ClassVar[float | None] = FUNDING_INTERVAL_S

    def __init__(self, shard: Shard = WHOLE) -> None:
        super().__init__(shard)
        # Set by the `subscribed` acknowledgement: the next data frame is the snapshot.
        self._snapshot_due = False

    @classmethod
    def url_overrides(cls, rest_url: str | None, ws_url: str | None) -> dict[str, Any]:
        """Only REST goes through ccxt (public endpoints under ``/v2``)."""
        del ws_url  # the native client reads it
        return {"api": {"public": rest_url}} if rest_url else {}

    def listed_markets(self, exchange: CcxtExchange) -> list[str]:
        """Every active USDT-settled perpetual (``tBTCF0:USTF0``), as USD counts USDT at 1;
        the EURt-settled ones (``tBTCF0:EUTF0``) are left out."""
        return [
            symbol
            for symbol, market in (exchange.markets or {}).items()
            if market.get("swap")
            and market.get("settle") == "USDT"
            and market.get("active") is not False
        ]

    # --- the liquidation stream -------------------------------------------------------------

    def classify_frame(self, message: object) -> FrameKind:
        if isinstance(message, list):
            return self._classify_array(message)
        if not isinstance(message, dict):
            return FrameKind.UNKNOWN
        event = message.get("event")
        if event == "subscribed":
            self._snapshot_due = True
            return FrameKind.ACK
        if event == "error":
            return FrameKind.REJECT
        return FrameKind.CONTROL if event in INFORMATIONAL_EVENTS else FrameKind.UNKNOWN

    def _classify_array(self, message: list[Any]) -> FrameKind:
        """``[CHAN_ID, "hb"]`` or ``[CHAN_ID, rows, ...]``; the first rows after the
        acknowledgement are the snapshot."""
        payload = message[1] if len(message) > 1 and isinstance(message[0], int) else None
        if payload == HEARTBEAT:
            return FrameKind.CONTROL
        if not isinstance(payload, list):
            return FrameKind.UNKNOWN
        if self._snapshot_due:  # the latest liquidation, re-sent on every subscribe
            self._snapshot_due = False
            return FrameKind.CONTROL
        return FrameKind.DATA

    def split_frame(self, message: Any) -> Sequence[FrameItem]:
        """Every trigger row (``IS_MATCH`` 0) of ``[CHAN_ID, rows, ...]``; market executions
        are left out, anything else is an InvalidEventError in its place."""
        rows = message[1] if isinstance(message, list) and len(message) > 1 else None
        if not isinstance(rows, list):
            return [InvalidEventError(Reason.WRONG_TYPE, f"rows={rows!r:.50}")]
        return [item for item in map(_row, rows) if item is not None]

    def parse_entry(self, entry: Any) -> RawLiquidation:
        """AMOUNT > 0: a LONG position was liquidated; < 0: a SHORT one (Bitfinex
        'Liquidations': "positive values means a long position, negative values means a short
        position")."""
        amount = number(entry, "AMOUNT")
        if amount == 0:
            raise InvalidEventError(Reason.INVALID_SIDE, "AMOUNT=0 names no side")
        stated = entry.get("LIQUIDATION_PRICE") is not None
        price_field = "LIQUIDATION_PRICE" if stated else "BASE_PRICE"
        return RawLiquidation(
            side="long" if amount > 0 else "short",
            price=number(entry, price_field),
            amount=abs(amount),
            timestamp_ms=timestamp_ms(entry, "MTS"),
            entry_id=fields.entry_id(entry, "POS_ID"),
        )

    def watch_calls(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[Callable[[], Coroutine[Any, Any, object]]]:
        """None: ccxt.pro bitfinex has no liquidation watch (``CCXT_STREAMS`` is False)."""
        del exchange, symbols
        return []

    def native_subscriptions(
        self,
        market_ids: Sequence[str] | None,  # noqa: ARG002 - one channel for all
    ) -> list[dict[str, Any]]:
        """One ``liq:global`` subscription covers every pair (we keep our markets)."""
        return [{"event": "subscribe", "channel": "status", "key": LIQUIDATION_KEY}]

    # --- open interest ---------------------------------------------------------------------

    async def read_open_interest(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[OpenInterestItem]:
        """One ``/v2/status/deriv?keys=ALL`` call: every perpetual's status row."""
        status = getattr(exchange, "publicGetStatusDeriv")  # noqa: B009 - ccxt's implicit API
        rows = await status({"keys": "ALL"})
        wanted = set(symbols) if symbols is not None else None
        by_id = {m.get("id"): m for m in (exchange.markets or {}).values()}
        items: list[OpenInterestItem] = []
        for item in rows if isinstance(rows, list) else [rows]:
            if not isinstance(item, list) or not item:
                items.append(InvalidEventError(Reason.WRONG_TYPE, f"status row {item!r:.50}"))
                continue
            market = by_id.get(item[0])
            if market is None or (wanted is not None and market["symbol"] not in wanted):
                continue
            row = {name: item[i] if i < len(item) else None for name, i in STATUS_FIELDS.items()}
            items.append(
                RawOpenInterest(
                    market, partial(_open_interest_fields, row), partial(_context_fields, row)
                )
            )
        return items

    def min_poll_interval(self, symbol_count: int) -> float:
        """One request per poll, whatever the market count."""
        del symbol_count
        return 60.0 / STATUS_REQUESTS_PER_MINUTE
