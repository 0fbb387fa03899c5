"""The long/short-ratio poll of one venue: every interval, the latest ratio of each kind the
venue publishes for the watched markets, each validated on its own, within its REST budget.

Under ``symbols: all`` it covers the markets of heatmap coins only: the venues answer one
market per request, and every market of a venue would take hours of their budget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from exporter.collectors.poll import RestPoll
from exporter.events import InvalidEventError, LongShortRatio
from exporter.health import Stream

if TYPE_CHECKING:
    from exporter.collectors.ccxt_types import CcxtExchange
    from exporter.collectors.venue import PositioningItem


class PositioningPoll(RestPoll):
    STREAM: ClassVar[Stream] = Stream.POSITIONING

    async def poll_once(self) -> float:
        exchange = self._exchange
        symbols = self._symbols(exchange)
        budget = self._venue.min_positioning_interval(len(symbols))
        if symbols:
            items = await self.within(budget, self._venue.read_positioning(exchange, symbols))
            for item in items:
                event = self._event(item)
                if event is not None:
                    self._sink.record_long_short(event)
            self._health.message(self._name, Stream.POSITIONING, len(items))
        return budget

    def _symbols(self, exchange: CcxtExchange) -> list[str]:
        """The configured markets; under ``symbols: all``, those of heatmap coins."""
        symbols = self._resolve_symbols(exchange)
        if symbols is not None:
            return symbols
        markets = exchange.markets or {}
        return [
            symbol
            for symbol in self._venue.every_market(exchange)
            if self._sink.wants_history(markets[symbol]["base"]) is True
        ]

    def _event(self, item: PositioningItem) -> LongShortRatio | None:
        """One validated ratio; an invalid one is counted and None returned."""
        try:
            if isinstance(item, InvalidEventError):
                raise item
            ratio, timestamp_ms = item.read()
            market = item.market
            return LongShortRatio(
                exchange=self._venue.exchange,
                symbol=market["symbol"],
                coin=market["base"],
                source=item.source,
                period=self._venue.POSITIONING_PERIOD,
                ratio=ratio,
                timestamp_ms=timestamp_ms,
                received_ms=int(self._clock() * 1000),
            )
        except InvalidEventError as exc:
            self.invalid(exc, "invalid-positioning", "an invalid long/short ratio")
            return None
