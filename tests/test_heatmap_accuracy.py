"""The model scored against the market simulation, whose true positions and randomised leverage
mix it does not know: its top-decile bins must catch far more liquidation USD than chance."""

from __future__ import annotations

import pytest

from exporter.fakeexchange.simulation import MarketSimulation
from exporter.fakeexchange.typed import liquidation_event, open_interest_events
from exporter.heatmap import HeatmapBook, HeatmapParams

POLL_SECONDS = 15  # the exporter's default open-interest poll interval


def run(seed: int, days: float) -> HeatmapBook:
    simulation = MarketSimulation(seed=seed)
    book = HeatmapBook(HeatmapParams(), lambda: simulation.now_ms / 1000.0)
    for _ in range(int(days * 86_400 / POLL_SECONDS)):
        for liq in simulation.step(POLL_SECONDS):
            book.score(liquidation_event(liq, simulation.now_ms))
        for reading in open_interest_events(simulation):
            book.observe_open_interest(reading)
    # The truth is not the model's assumption: a drawn mix of ten leverages, not a density.
    assert HeatmapParams().leverage_model == "lognormal"
    assert len(simulation.leverage_mix()) == 10
    return book


def test_model_beats_a_uniform_guess_by_a_clear_margin() -> None:
    accuracy = run(seed=2, days=1.5).accuracy()
    assert set(accuracy) == {"BTC", "ETH", "SOL"}
    for coin, score in accuracy.items():
        assert score.scored_usd > 1e6, coin  # enough liquidations to judge
        assert score.lift >= 3.0, (coin, score)  # a uniform guess scores lift 1
        assert score.hit_ratio >= 0.3, (coin, score)  # top 10 % of bins, >= 30 % of the USD


@pytest.mark.parametrize("side", ["long", "short"])
def test_a_liquidation_outside_the_grid_is_a_miss(side: str) -> None:
    book = run(seed=3, days=0.05)
    view = book._scoring_view("BTC")
    assert view is not None
    hit, uniform_share = view.score(side, view.price * 10)  # type: ignore[arg-type]  # parametrised str
    assert hit is False
    assert uniform_share == pytest.approx(view.top_fraction, rel=0.1)
