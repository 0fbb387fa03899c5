"""The model scored against the market simulation, whose true positions and randomised leverage
mix it does not know: its top-decile bins must catch far more liquidation USD than chance."""

from __future__ import annotations

import pytest

from exporter.events import Liquidation, OpenInterest
from exporter.fakeexchange.simulation import MarketSimulation
from exporter.heatmap import HeatmapBook, HeatmapParams

POLL_SECONDS = 15  # the exporter's default open-interest poll interval


def run(seed: int, days: float) -> HeatmapBook:
    simulation = MarketSimulation(seed=seed)
    book = HeatmapBook(HeatmapParams(), lambda: simulation.now_ms / 1000.0)
    for _ in range(int(days * 86_400 / POLL_SECONDS)):
        for liq in simulation.step(POLL_SECONDS):
            now = simulation.now_ms
            book.score(
                Liquidation(
                    exchange=liq.venue,
                    symbol=f"{liq.coin}/USDT:USDT",
                    coin=liq.coin,
                    side=liq.side,  # type: ignore[arg-type]  # the simulation's str: long/short
                    price=liq.price,
                    quantity=liq.coins,
                    notional_usd=liq.usd,
                    timestamp_ms=now,
                    received_ms=now,
                )
            )
        for state in simulation.market_states():
            book.observe_open_interest(
                OpenInterest(
                    exchange=state.venue,
                    symbol=f"{state.coin}/USDT:USDT",
                    coin=state.coin,
                    coins=state.open_interest_coins,
                    usd=state.open_interest_usd,
                    mark_price=state.mark_price,
                    timestamp_ms=simulation.now_ms,
                    received_ms=simulation.now_ms,
                )
            )
    mix = simulation.leverage_mix()
    assert mix != dict(HeatmapParams().leverage_mix)  # the truth is not the model's assumption
    return book


def test_model_beats_a_uniform_guess_by_a_clear_margin() -> None:
    accuracy = run(seed=2, days=1.5).accuracy()
    assert set(accuracy) == {"BTC", "ETH", "SOL"}
    for coin, score in accuracy.items():
        assert score.scored_usd > 1e6, coin  # enough liquidations to judge
        assert score.lift >= 2.0, (coin, score)  # a uniform guess scores lift 1
        assert score.hit_ratio >= 0.2, (coin, score)  # top 10 % of bins, >= 20 % of the USD


@pytest.mark.parametrize("side", ["long", "short"])
def test_a_liquidation_outside_the_grid_is_a_miss(side: str) -> None:
    book = run(seed=3, days=0.05)
    view = book._scoring_view("BTC")
    assert view is not None
    hit, uniform_share = view.score(side, view.price * 10)  # type: ignore[arg-type]  # parametrised str
    assert hit is False
    assert uniform_share == pytest.approx(view.top_fraction, rel=0.1)
