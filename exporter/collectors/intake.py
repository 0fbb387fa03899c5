"""Turns each liquidation frame into events, entry by entry, as the frame arrives.

Frames are taken straight from the WebSocket client's receive callback, not from ccxt's
liquidation cache: that cache holds 2,000 rows and overflows between drains in a burst, and
ccxt's parser stops at the first bad entry of a frame. Here every entry stands alone: a bad one
is counted once under one reason and its neighbours still count, and an entry that fails for
any other reason (a bug) is counted as lost. Nothing in a frame is dropped without a count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exporter.dedup import RecentLiquidations, entry_key
from exporter.events import InvalidEventError, Liquidation, Reason, Side
from exporter.health import LostReason, Stream

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from exporter.collectors.ratelimitedlog import RateLimitedLog
    from exporter.collectors.sink import EventSink
    from exporter.collectors.venue import VenueAdapter
    from exporter.dedup import EntryKey
    from exporter.health import Health

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One liquidation of a frame, not yet read: the venue's market id and its own fields."""

    market_id: str
    fields: Any  # an object's fields, or an array's (Bitfinex)


@dataclass(frozen=True, slots=True)
class RawLiquidation:
    """One liquidation as an exchange states it, before market metadata is applied.

    ``amount`` is in coins, or in contracts where the venue states contracts.
    ``timestamp_ms`` None: the venue states no time (BitMEX), the receive time stands in.
    ``entry_id``: the venue's id of the trade or position, where it states one (de-duplication
    then tells apart fills alike in every other field).
    """

    side: Side
    price: float
    amount: float
    timestamp_ms: int | None
    entry_id: str | None = None


# What a venue's frame splitter yields: an entry, or the reason one element was not an entry.
FrameItem = RawEntry | InvalidEventError


def keyed_entry(item: object, id_field: str) -> FrameItem:
    """An object entry naming its market in ``id_field`` (Bybit ``s``, Gate ``contract``), or
    why it is not one: an element that is no object, or has no market, counts on its own."""
    if not isinstance(item, dict):
        return InvalidEventError(Reason.WRONG_TYPE, f"entry {item!r:.50}")
    market_id = item.get(id_field)
    if not isinstance(market_id, str) or not market_id:
        return InvalidEventError(Reason.MISSING_FIELD, f"{id_field}={market_id!r:.50}")
    return RawEntry(market_id, item)


class FrameIntake:
    """Validates, de-duplicates and records the liquidations of one venue's data frames."""

    def __init__(
        self,
        venue: str,
        adapter: VenueAdapter,
        sink: EventSink,
        *,
        health: Health,
        warn: RateLimitedLog,
        clock: Callable[[], float],
        quantity_in_contracts: bool,
    ) -> None:
        """``quantity_in_contracts``: the venue states sizes in contracts (x ``contractSize``
        coins, or USD for inverse contracts) rather than in coins."""
        self._venue = venue
        self._adapter = adapter
        self._in_contracts = quantity_in_contracts
        self._sink = sink
        self._health = health
        self._warn = warn
        self._clock = clock
        # Frames a venue re-sends after a reconnect must count once.
        self._recent = RecentLiquidations()
        self._markets: Mapping[str, Mapping[str, Any]] = {}
        self._wanted: frozenset[str] | None = None
        self._elsewhere: frozenset[str] = frozenset()

    def use_markets(
        self,
        markets_by_id: Mapping[str, Mapping[str, Any]],
        wanted: frozenset[str] | None,
        elsewhere: frozenset[str] = frozenset(),
    ) -> None:
        """The venue's markets by their id in frames, and the unified symbols to keep (None:
        all). An all-market feed (OKX, Binance ``!forceOrder@arr``) also brings the others:
        those of ``elsewhere`` (markets other shards serve) are counted as left to their
        shard, the rest (markets nobody watches) skipped without a count, as before."""
        self._markets = markets_by_id
        self._wanted = wanted
        self._elsewhere = elsewhere

    def take(self, message: Any) -> None:
        """Record every liquidation of one data frame."""
        received_ms = int(self._clock() * 1000)
        try:
            items = self._adapter.split_frame(message)
        except InvalidEventError as exc:
            self._invalid(exc)
            return
        except Exception:  # noqa: BLE001 - a bug in a splitter must not end the receive loop
            self._lost(1, "a data frame")  # its size is unknown: at least one
            return
        # Identical entries inside one frame are separate fills; the de-duplication key
        # carries how many identical ones came before in the frame (see exporter/dedup.py).
        in_frame: dict[EntryKey, int] = {}
        for item in items:
            try:
                if isinstance(item, InvalidEventError):
                    raise item  # noqa: TRY301 - one path for every rejected entry
                read = self._event(item, received_ms)
                if read is None:
                    continue
                event, raw = read
                key = entry_key(event, raw.entry_id)
                occurrence = in_frame.get(key, 0)
                in_frame[key] = occurrence + 1
                # Without the venue's own time (BitMEX) the key is the receive time: two equal
                # orders of one millisecond would merge, and such a venue re-sends nothing.
                timed = raw.timestamp_ms is not None
                if timed and self._recent.is_duplicate(key, occurrence, event.timestamp_ms):
                    self._health.duplicate(self._venue)
                else:
                    self._sink.record_liquidation(event)
            except InvalidEventError as exc:
                self._invalid(exc)
            except Exception:  # noqa: BLE001 - one entry must never take its neighbours
                self._lost(1, f"an entry {item!r:.200}")

    def _event(
        self, entry: RawEntry, received_ms: int
    ) -> tuple[Liquidation, RawLiquidation] | None:
        """The validated event of one entry, and the entry as read; None for a market we do
        not watch."""
        market = self._markets.get(entry.market_id)
        if market is None:
            raise InvalidEventError(Reason.UNKNOWN_SYMBOL, f"market id {entry.market_id!r:.60}")
        symbol = market["symbol"]
        if self._wanted is not None and symbol not in self._wanted:
            if symbol in self._elsewhere:
                self._health.other_shard(self._venue)
            return None
        raw = self._adapter.parse_entry(entry.fields)
        coins, usd = self.amounts(market, raw.price, raw.amount)
        event = Liquidation(
            exchange=self._adapter.exchange,
            symbol=symbol,
            coin=market["base"],
            side=raw.side,
            price=raw.price,
            quantity=coins,
            notional_usd=usd,
            timestamp_ms=received_ms if raw.timestamp_ms is None else raw.timestamp_ms,
            received_ms=received_ms,
        )
        return event, raw

    def amounts(
        self, market: Mapping[str, Any], price: float, amount: float
    ) -> tuple[float, float]:
        """(coins, USD) of ``amount`` at ``price`` on ``market``.

        Linear contracts are worth ``contractSize`` coins; inverse ones ``contractSize`` USD.
        Quote currencies USDT and USDC are taken at 1 USD.
        """
        if price == 0:  # would divide by zero below; NaN and negatives fail the event's checks
            raise InvalidEventError(Reason.NOT_POSITIVE, f"price={price!r}")
        if not self._in_contracts:
            return amount, amount * price
        size = market.get("contractSize")
        if not isinstance(size, int | float) or size <= 0:
            raise InvalidEventError(Reason.MISSING_FIELD, f"contractSize of {market.get('symbol')}")
        if market.get("inverse"):
            usd = amount * size
            return usd / price, usd
        coins = amount * size
        return coins, coins * price

    def _invalid(self, exc: InvalidEventError) -> None:
        self._health.invalid(self._venue, Stream.LIQUIDATIONS, exc.reason)
        self._warn.warning(
            f"invalid:{exc.reason}", "%s: skipped an invalid liquidation: %s", self._venue, exc
        )

    def _lost(self, count: int, what: str) -> None:
        self._health.lost(self._venue, LostReason.INTERNAL_ERROR, count)
        self._warn.exception(
            "lost:internal", "%s: could not read %s; counted as lost", self._venue, what
        )


def markets_by_id(markets: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Each market id of ``markets`` (ccxt's, keyed by unified symbol) to its market; where
    one id names several markets (a spot and a swap), the contract."""
    found: dict[str, Mapping[str, Any]] = {}
    for market in markets.values():
        market_id = market.get("id")
        if not isinstance(market_id, str):
            continue
        known = found.get(market_id)
        if known is None or (market.get("contract") and not known.get("contract")):
            found[market_id] = market
    return found
