"""The heatmap model on hand-computed cases and on the real BTC 5-minute price/OI path."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

from exporter.heatmap import HeatmapParams
from exporter.heatmap.grid import label_decimals, nice_step
from exporter.heatmap.model import LONG, SHORT, CoinHeatmap
from exporter.heatmap.views import CoinView, build_view

P = 80_000.0
T = 1_000_000.0


def opened(params: HeatmapParams | None = None, coins: float = 10.0) -> CoinHeatmap:
    """BTC at 80,000: a baseline reading, then +``coins`` of open interest at the same instant."""
    heatmap = CoinHeatmap("BTC", params or HeatmapParams(), P)
    heatmap.update("binance:BTC/USDT:USDT", time_s=T, open_interest=1000.0, price=P)
    heatmap.update("binance:BTC/USDT:USDT", time_s=T, open_interest=1000.0 + coins, price=P)
    return heatmap


def bins(view: CoinView, side: int) -> dict[float, float]:
    """{bin lower edge: USD} of the non-empty bins of one side."""
    return {
        round((view.first_index + i) * view.step, 6): float(view.usd[side, i])
        for i in np.flatnonzero(view.usd[side])
    }


def test_one_increase_lands_in_the_hand_computed_bins() -> None:
    # Step: nice(0.25 % x 80,000 = 200) = 200. MMR(BTC) = 0.4 %. Grid 68,000..92,000.
    # Long LP = 80,000 x (1 - 1/L + 0.004), short LP = 80,000 x (1 + 1/L - 0.004);
    # USD = coins x weight x 80,000 (the mark price) = 10 x w x 80,000.
    view = build_view(opened(), P, T)
    assert view.step == 200.0
    assert bins(view, LONG) == pytest.approx(
        {
            72_200.0: 240_000.0,  # 10x: LP 72,320, weight 0.30
            77_000.0: 200_000.0,  # 25x: LP 77,120, weight 0.25
            78_600.0: 160_000.0,  # 50x: LP 78,720, weight 0.20
            79_400.0: 80_000.0,  # 100x: LP 79,520, weight 0.10
        }
    )  # 5x (LP 64,320) is outside the +-15 % grid
    assert bins(view, SHORT) == pytest.approx(
        {
            80_400.0: 80_000.0,  # 100x: LP 80,480
            81_200.0: 160_000.0,  # 50x: LP 81,280
            82_800.0: 200_000.0,  # 25x: LP 82,880
            87_600.0: 240_000.0,  # 10x: LP 87,680
        }
    )  # 5x (LP 95,680) is outside too
    assert view.usd.shape == (2, 121)  # 68,000 ... 92,000 in steps of 200: zeros included
    # At risk: longs with LP >= 79,200 / 78,400 / 76,000 / 72,000 (moves of 1/2/5/10 %).
    assert view.at_risk[LONG].tolist() == pytest.approx([80_000, 240_000, 440_000, 680_000])
    assert view.at_risk[SHORT].tolist() == pytest.approx([80_000, 240_000, 440_000, 680_000])
    top_long = [c for c in view.clusters if c.side == "long"]
    assert [(c.rank, c.price) for c in top_long[:2]] == [(1, 72_300.0), (2, 77_100.0)]
    assert [c.usd for c in top_long[:2]] == pytest.approx([240_000.0, 200_000.0])


def test_sweep_removes_exactly_the_crossed_levels() -> None:
    heatmap = opened()
    # The low reaches 78,600: longs with LP 78,720 and 79,520 are crossed, 77,120 is not.
    # The high reaches 81,300, the upper edge of the fine bin holding LP 81,280.
    heatmap.update(
        "binance:BTC/USDT:USDT",
        time_s=T,
        open_interest=1010.0,
        price=P,
        low=78_600.0,
        high=81_300.0,
    )
    view = build_view(heatmap, P, T)
    assert bins(view, LONG) == pytest.approx({72_200.0: 240_000.0, 77_000.0: 200_000.0})
    assert bins(view, SHORT) == pytest.approx({82_800.0: 200_000.0, 87_600.0: 240_000.0})
    # A low inside a fine bin (above its lower edge) leaves that bin: 77,120 is in
    # [77,100, 77,150).
    heatmap.update("binance:BTC/USDT:USDT", time_s=T, open_interest=1010.0, price=P, low=77_110.0)
    assert 77_000.0 in bins(build_view(heatmap, P, T), LONG)
    heatmap.update("binance:BTC/USDT:USDT", time_s=T, open_interest=1010.0, price=P, low=77_100.0)
    assert 77_000.0 not in bins(build_view(heatmap, P, T), LONG)


def test_decrease_closes_every_position_proportionally() -> None:
    heatmap = opened()
    before = build_view(heatmap, P, T).usd.copy()
    heatmap.update("binance:BTC/USDT:USDT", time_s=T, open_interest=1006.0, price=P)
    after = build_view(heatmap, P, T).usd
    # Each side held 10 coins; 4 closed: every bin keeps 60 %.
    np.testing.assert_allclose(after, before * 0.6)
    heatmap.update("binance:BTC/USDT:USDT", time_s=T, open_interest=900.0, price=P)
    assert build_view(heatmap, P, T).usd.sum() == 0.0


def test_one_half_life_halves_the_total() -> None:
    heatmap = opened()
    total = heatmap.side_totals().sum()
    later = T + 72 * 3600.0
    heatmap.update("binance:BTC/USDT:USDT", time_s=later, open_interest=1010.0, price=P)
    assert heatmap.side_totals().sum() == pytest.approx(total / 2)
    # Reading the view later decays it too, without an update.
    view = build_view(heatmap, P, later + 72 * 3600.0)
    assert view.usd.sum() == pytest.approx(10 * 2 * 0.85 * P / 4, rel=1e-9)


def test_trend_attribution_opens_only_the_side_the_price_moved_to() -> None:
    params = HeatmapParams(side_attribution="trend")
    heatmap = CoinHeatmap("BTC", params, P)
    heatmap.update("m", time_s=T, open_interest=100.0, price=P)
    heatmap.update("m", time_s=T, open_interest=110.0, price=P + 100)  # rising: longs opened
    totals = heatmap.side_totals()[0]
    assert totals[LONG] == pytest.approx(10.0)
    assert totals[SHORT] == 0.0


def test_markets_add_up_and_close_independently() -> None:
    heatmap = opened()
    heatmap.update("okx:BTC/USDT:USDT", time_s=T, open_interest=50.0, price=P)
    heatmap.update("okx:BTC/USDT:USDT", time_s=T, open_interest=60.0, price=P)
    assert build_view(heatmap, P, T).usd.sum() == pytest.approx(
        2 * build_view(opened(), P, T).usd.sum()
    )
    heatmap.update("okx:BTC/USDT:USDT", time_s=T, open_interest=50.0, price=P)  # okx closes all
    np.testing.assert_allclose(build_view(heatmap, P, T).usd, build_view(opened(), P, T).usd)


def test_nice_steps_and_labels() -> None:
    assert [nice_step(t) for t in (205.1, 0.00018, 7.3, 0.45, 3.3)] == [200, 0.0002, 10, 0.5, 2.5]
    assert [label_decimals(s) for s in (200.0, 0.0002, 2.5, 0.25)] == [0, 4, 1, 2]


def test_series_stay_under_the_bound_while_price_moves_20_percent() -> None:
    params = HeatmapParams()
    heatmap = CoinHeatmap("BTC", params, P)
    rng = np.random.default_rng(7)
    path = P * np.exp(np.cumsum(rng.normal(0, 0.002, 3000)))
    path = np.concatenate([np.linspace(P, P * 1.2, 500), np.linspace(P * 1.2, P * 0.8, 1000), path])
    oi = 1000.0
    steps = set()
    for i, price in enumerate(path):
        oi = max(10.0, oi + rng.normal(0, 5))
        heatmap.update("m", time_s=T + 60 * i, open_interest=oi, price=float(price))
        view = build_view(heatmap, float(price), T + 60 * i)
        assert view.usd.shape[1] <= params.max_bins_per_side() == 242
        steps.add(view.step)
    assert steps == {200.0}  # +-20 % keeps the step (hysteresis): Grafana's rows stay put
    for i, price in enumerate(np.linspace(path[-1], P * 2.5, 200)):
        heatmap.update("m", time_s=T + 1e6 + 60 * i, open_interest=oi, price=float(price))
        view = build_view(heatmap, float(price), T + 1e6 + 60 * i)
        assert view.usd.shape[1] <= 242
        steps.add(view.step)
    assert steps == {200.0, 500.0}  # re-chosen once the price drifted far


def load_real_btc() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The real Binance BTCUSDT 5-minute candles and open interest (USD) shipped in the package."""
    data = resources.files("exporter.fakeexchange").joinpath(
        "data/binance_btcusdt_5m_price_oi_2026-06.csv"
    )
    table = np.loadtxt(
        data.open(encoding="utf-8"), delimiter=",", skiprows=1, usecols=(0, 3, 4, 5, 6)
    )
    return table[:, 0] / 1000.0, table[:, 1], table[:, 2], table[:, 3], table[:, 4]


@pytest.mark.parametrize("attribution", ["both", "trend"])
def test_totals_stay_within_open_interest_over_real_data(attribution: str) -> None:
    times, high, low, close, oi_usd = load_real_btc()
    assert times.size == 4406
    params = HeatmapParams(side_attribution=attribution)  # type: ignore[arg-type]  # parametrised str
    heatmap = CoinHeatmap("BTC", params, float(close[0]))
    oi_coins = oi_usd / close
    totals = []
    for t, h, lo, c, oi in zip(times, high, low, close, oi_coins, strict=True):
        heatmap.update("binance:BTC/USDT:USDT", time_s=t, open_interest=oi, price=c, low=lo, high=h)
        sides = heatmap.side_totals()[0] * c  # USD at the mark price, per side
        assert sides.max() <= oi * c * (1 + 1e-9), (t, sides, oi * c)
        totals.append(sides.sum())
    assert max(totals) > 0.05 * oi_usd.mean()  # the invariant is not met by an empty model
