"""Exchange collectors: I/O only, each turning one venue's feeds into core events.

``ADAPTERS`` is the registry: one line per venue of ``exporter.venues`` (tests/test_venues.py
checks that every venue has an adapter, a fake exchange and recorded frames).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from exporter.collectors.binance import BinanceVenue
from exporter.collectors.binance_coinm import BinanceCoinmVenue
from exporter.collectors.bitfinex import BitfinexVenue
from exporter.collectors.bitget import BitgetVenue
from exporter.collectors.bitmex import BitmexVenue
from exporter.collectors.bybit import BybitVenue
from exporter.collectors.bybit_inverse import BybitInverseVenue
from exporter.collectors.collector import Collector
from exporter.collectors.deribit import DeribitVenue
from exporter.collectors.dydx import DydxVenue
from exporter.collectors.gate import GateVenue
from exporter.collectors.htx import HtxVenue
from exporter.collectors.kraken import KrakenVenue
from exporter.collectors.okx import OkxVenue
from exporter.shard import WHOLE

if TYPE_CHECKING:
    from exporter.collectors.sink import EventSink
    from exporter.collectors.venue import VenueAdapter
    from exporter.config import Config, ExchangeConfig
    from exporter.core import Core
    from exporter.health import Health
    from exporter.shard import Shard
    from exporter.venues import Venue

ADAPTERS: Final[dict[Venue, type[VenueAdapter]]] = {
    "binance": BinanceVenue,
    "bybit": BybitVenue,
    "okx": OkxVenue,
    "binance_coinm": BinanceCoinmVenue,
    "bybit_inverse": BybitInverseVenue,
    "gate": GateVenue,
    "htx": HtxVenue,
    "bitget": BitgetVenue,
    "deribit": DeribitVenue,
    "dydx": DydxVenue,
    "kraken": KrakenVenue,
    "bitfinex": BitfinexVenue,
    "bitmex": BitmexVenue,
}


def make_collector(
    config: ExchangeConfig,
    sink: EventSink,
    health: Health,
    *,
    shard: Shard = WHOLE,
    **options: Any,
) -> Collector:
    """The collector of the venue ``config`` names, serving the markets of ``shard``
    (``options``: ``Collector``'s keywords)."""
    return Collector(ADAPTERS[config.name](shard), config, sink, health, **options)


def build_collectors(config: Config, core: Core) -> list[Collector]:
    """One collector per enabled exchange, all feeding the same core, each serving the
    markets of the configured shard."""
    return [
        make_collector(
            e, core, core.health, shard=config.shard, backfill_hours=config.backfill_hours
        )
        for e in config.enabled_exchanges()
    ]
