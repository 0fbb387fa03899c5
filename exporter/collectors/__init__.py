"""Exchange collectors: I/O only, each turning one exchange's feeds into core events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from exporter.collectors.binance import BinanceCollector
from exporter.collectors.bybit import BybitCollector
from exporter.collectors.okx import OkxCollector

if TYPE_CHECKING:
    from exporter.collectors.base import ExchangeCollector
    from exporter.config import Config
    from exporter.core import Core

COLLECTORS: dict[str, type[ExchangeCollector]] = {
    BinanceCollector.name: BinanceCollector,
    BybitCollector.name: BybitCollector,
    OkxCollector.name: OkxCollector,
}


def build_collectors(config: Config, core: Core) -> list[ExchangeCollector]:
    """One collector per enabled exchange, all feeding the same core."""
    return [
        COLLECTORS[e.name](e, core, core.health, backfill_hours=config.backfill_hours)
        for e in config.enabled_exchanges()
    ]
