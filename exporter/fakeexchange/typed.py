"""The market simulation's output as the exporter's typed events, for what drives the model
without sockets (the accuracy test, the docs' pictures and accuracy table): each venue's coin is
its USDT perpetual, stamped with the simulation's clock."""

from __future__ import annotations

from typing import TYPE_CHECKING

from exporter.events import Liquidation, OpenInterest

if TYPE_CHECKING:
    from exporter.fakeexchange.simulation import MarketSimulation, SimLiquidation


def liquidation_event(liq: SimLiquidation, now_ms: int) -> Liquidation:
    return Liquidation(
        exchange=liq.venue,
        symbol=f"{liq.coin}/USDT:USDT",
        coin=liq.coin,
        side="long" if liq.side == "long" else "short",
        price=liq.price,
        quantity=liq.coins,
        notional_usd=liq.usd,
        timestamp_ms=now_ms,
        received_ms=now_ms,
    )


def open_interest_events(simulation: MarketSimulation) -> list[OpenInterest]:
    """Every venue's and coin's open interest and mark price now."""
    now = simulation.now_ms
    return [
        OpenInterest(
            exchange=state.venue,
            symbol=f"{state.coin}/USDT:USDT",
            coin=state.coin,
            coins=state.open_interest_coins,
            usd=state.open_interest_usd,
            mark_price=state.mark_price,
            timestamp_ms=now,
            received_ms=now,
        )
        for state in simulation.market_states()
    ]
