"""``--demo``: the real collectors against in-process fake exchanges driven by a market simulation.

The fakes speak each exchange's real REST and WebSocket protocol on loopback, so everything
from ccxt.pro onwards is the production path; only the market is simulated (a real BTC price
and open-interest path, see ``exporter.fakeexchange.simulation``). Event timestamps are real
time: the simulation supplies prices and sizes, the wall clock supplies "when".
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from exporter.collectors import ADAPTERS
from exporter.fakeexchange import FakeExchange
from exporter.fakeexchange.simulation import MarketSimulation
from exporter.venues import is_venue

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

    from exporter.config import Config
    from exporter.events import Side

log = logging.getLogger(__name__)

TICK_SECONDS = 0.25  # real seconds between simulation steps
DEMO_BACKFILL_HOURS = 24.0
DEMO_LOG_LIMIT = 1000  # the fakes' frame logs are ground truth for tests; a demo needs none


def watched_symbol(fake: FakeExchange, coin: str) -> str:
    """The market of ``coin`` the venue's collector watches when configured with the coin
    (Kraken: the ``PF_`` perpetual, not the ``PI_`` one the fake also lists)."""
    symbols = fake.symbols
    symbol = ADAPTERS[fake.venue].market_of(coin, symbols)
    return symbol if symbol in symbols else fake.symbol_of(coin)


class MarketDriver:
    """Steps the simulation in real time x ``speed`` and puts its output on the fake wires."""

    name = "demo"

    def __init__(
        self,
        simulation: MarketSimulation,
        fakes: Mapping[str, FakeExchange],
        speed: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._simulation = simulation
        self._fakes = fakes
        self._speed = speed
        self._clock = clock
        self._sleep = sleep

    def publish_market_state(self) -> None:
        for state in self._simulation.market_states():
            fake = self._fakes.get(state.venue)
            if fake is not None:
                fake.set_market_state(
                    watched_symbol(fake, state.coin),
                    open_interest_coins=state.open_interest_coins,
                    mark_price=state.mark_price,
                    index_price=state.index_price,
                    funding_rate=state.funding_rate,
                    predicted_funding_rate=state.predicted_funding_rate,
                    funding_interval_hours=state.funding_hours,
                    long_short=state.long_short,
                )

    def tick(self, real_seconds: float) -> int:
        """Advance the market by ``real_seconds`` x speed; returns liquidations published."""
        now_ms = int(self._clock() * 1000)
        published = 0
        for liquidation in self._simulation.step(real_seconds * self._speed):
            fake = self._fakes.get(liquidation.venue)
            if fake is None:
                continue
            side: Side = "long" if liquidation.side == "long" else "short"
            symbol = watched_symbol(fake, liquidation.coin)
            fake.publish_liquidation(symbol, side, liquidation.price, liquidation.coins, now_ms)
            published += 1
        self.publish_market_state()
        return published

    async def run(self) -> None:
        self.publish_market_state()
        last = self._clock()
        while True:
            await self._sleep(TICK_SECONDS)
            now = self._clock()
            self.tick(max(now - last, 1e-3))
            last = now


def demo_config(config: Config, fakes: Mapping[str, FakeExchange]) -> Config:
    """What the collectors of a demo run with: ``config`` with every enabled exchange's URLs on
    its fake, and at most a day of (fake) history, enough to show the heatmap and quick to
    fetch."""
    exchanges = tuple(
        replace(e, rest_url=fakes[e.name].rest_url, ws_url=fakes[e.name].ws_url)
        if e.name in fakes
        else e
        for e in config.exchanges
    )
    backfill_hours = min(config.backfill_hours, DEMO_BACKFILL_HOURS)
    return replace(config, exchanges=exchanges, backfill_hours=backfill_hours)


@asynccontextmanager
async def fake_venues(config: Config) -> AsyncIterator[tuple[Config, MarketDriver]]:
    """A fake of every enabled exchange, listening on loopback while the block runs. Yields
    the config to run the collectors with (``demo_config``) and the driver that moves the
    simulated market (a task to supervise); stops the fakes on exit."""
    venues = [name for e in config.enabled_exchanges() if is_venue(name := e.name)]
    fakes: dict[str, FakeExchange] = {v: FakeExchange(v, log_limit=DEMO_LOG_LIMIT) for v in venues}
    try:
        for fake in fakes.values():
            await fake.start()
        driver = MarketDriver(MarketSimulation(venues=venues), fakes, config.demo_speed)
        log.info(
            "demo: simulated %s at %gx real time (%s)",
            ", ".join(venues),
            config.demo_speed,
            ", ".join(f"{v} on {f.rest_url}" for v, f in fakes.items()),
        )
        yield demo_config(config, fakes), driver
    finally:
        for fake in fakes.values():
            await fake.stop()
