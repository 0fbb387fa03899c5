"""The heatmap model on hand-computed cases and on the real BTC 5-minute price/OI path."""

from __future__ import annotations

import math
from importlib import resources

import numpy as np
import pytest

from exporter.events import MarketHistory, OpenInterest
from exporter.heatmap import HeatmapBook, HeatmapParams
from exporter.heatmap.grid import ZONE_MARGIN, label_decimals, nice_step, zone_of, zone_step
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


# Bins of 200 at 80,000: its zone is the octave 65,536..131,072 (grid.py), whose step is
# nice(0.2 % x 65,536 x sqrt 2 = 185.4) = 200.
FRACTION = 0.002
MIX = HeatmapParams(leverage_model="mix", bin_fraction=FRACTION)
MARKET = "binance:BTC/USDT:USDT"


def test_one_increase_lands_in_the_hand_computed_bins() -> None:
    # Step 200 (FRACTION). MMR(BTC) = 0.4 %. Grid: 15 % around the lattice cell holding
    # 80,000, 2^(260/16) = 77,935.2 .. 2^(261/16) = 81,386.2: 66,245 .. 93,594.
    # Long LP = 80,000 x (1 - 1/L) / 0.996, short LP = 80,000 x (1 + 1/L) / 1.004;
    # USD = coins x weight x 80,000 (the mark price) = 10 x w x 80,000.
    view = build_view(opened(MIX), P)
    assert view.step == 200.0
    assert bins(view, LONG) == pytest.approx(
        {
            72_200.0: 240_000.0,  # 10x: LP 72,289.2, weight 0.30
            77_000.0: 200_000.0,  # 25x: LP 77,108.4, weight 0.25
            78_600.0: 160_000.0,  # 50x: LP 78,714.9, weight 0.20
            79_400.0: 80_000.0,  # 100x: LP 79,518.1, weight 0.10
        }
    )  # 5x (LP 64,257.0) is outside the grid
    assert bins(view, SHORT) == pytest.approx(
        {
            80_400.0: 80_000.0,  # 100x: LP 80,478.1
            81_200.0: 160_000.0,  # 50x: LP 81,274.9
            82_800.0: 200_000.0,  # 25x: LP 82,868.5
            87_600.0: 240_000.0,  # 10x: LP 87,649.4
        }
    )  # 5x (LP 95,617.5) is outside too
    assert view.usd.shape == (2, 137)  # 66,200 ... 93,400 in steps of 200: zeros included
    assert (view.first_index * view.step, view.bin_count) == (66_200.0, 137)
    # At risk: longs with LP >= 79,200 / 78,400 / 76,000 / 72,000 (moves of 1/2/5/10 %).
    assert view.at_risk[LONG].tolist() == pytest.approx([80_000, 240_000, 440_000, 680_000])
    assert view.at_risk[SHORT].tolist() == pytest.approx([80_000, 240_000, 440_000, 680_000])
    top_long = [c for c in view.clusters if c.side == "long"]
    assert [(c.rank, c.price) for c in top_long[:2]] == [(1, 72_300.0), (2, 77_100.0)]
    assert [c.usd for c in top_long[:2]] == pytest.approx([240_000.0, 200_000.0])
    # The model holds 10 of the 1,010 coins of open interest on each side.
    assert view.book_ratio == pytest.approx((10 / 1010, 10 / 1010))


@pytest.mark.parametrize("leverage", [1.5, 2, 3, 5, 10, 20, 25, 50, 75, 100, 125])
@pytest.mark.parametrize(("coin", "mmr"), [("BTC", 0.004), ("DOGE", 0.01)])
def test_the_liquidation_price_is_exact_at_every_leverage(
    leverage: float, coin: str, mmr: float
) -> None:
    """Isolated margin: liquidated when margin EP/L plus profit equals MMR x LP."""
    params = HeatmapParams(leverage_model="mix", leverage_mix={leverage: 1.0})
    heatmap = CoinHeatmap(coin, params, P)
    heatmap.update("m", time_s=T, open_interest=1000.0, price=P)
    heatmap.update("m", time_s=T, open_interest=1001.0, price=P)
    fine = heatmap.fine
    for side, sign in ((LONG, 1.0), (SHORT, -1.0)):
        # Long: P/L + (LP - P) = mmr x LP; short: P/L + (P - LP) = mmr x LP.
        want = P * (1 - sign / leverage) / (1 - sign * mmr)
        assert P / leverage + sign * (want - P) == pytest.approx(mmr * want)
        occupied = np.flatnonzero(heatmap.actual_coins()[side])
        index = math.floor(want / fine) - heatmap.base
        if index < 0:  # below the zone's state array (1.5x longs: 2^16 x 0.45 = 29,491)
            assert occupied.size == 0
            continue
        assert occupied.tolist() == [index]
        assert heatmap.actual_coins()[side, occupied[0]] == pytest.approx(1.0)
    # What fell off the array is counted, not lost silently.
    assert heatmap.dropped_coins == pytest.approx(1.0 if leverage < 2 else 0.0)


def test_sweep_removes_the_crossed_bins_and_reopens_them_at_the_price() -> None:
    params = HeatmapParams(leverage_model="mix", leverage_mix={25: 1.0}, bin_fraction=FRACTION)
    heatmap = opened(params)
    # 25x long: LP 80,000 x 0.96 / 0.996 = 77,108.43, in the fine bin [77,100, 77,150).
    heatmap.update(MARKET, time_s=T, open_interest=1010.0, price=77_120.0)
    assert bins(build_view(heatmap, 77_120.0), LONG) == pytest.approx({77_000.0: 10 * 77_120.0})
    # A low at its lower edge crosses it: liquidated, and as many coins open at 77,100
    # (the open interest did not change): LP 77,100 x 0.96 / 0.996 = 74,313.25.
    heatmap.update(MARKET, time_s=T, open_interest=1010.0, price=77_100.0)
    assert bins(build_view(heatmap, 77_100.0), LONG) == pytest.approx({74_200.0: 10 * 77_100.0})
    # Shorts (LP 82,868.5) were not reached.
    assert bins(build_view(heatmap, 77_100.0), SHORT) == pytest.approx({82_800.0: 10 * 77_100.0})


def test_a_fall_of_x_percent_of_open_interest_closes_x_percent_of_each_side() -> None:
    heatmap = opened()
    before = heatmap.actual_coins().copy()
    totals = heatmap.side_totals()[0].copy()
    # 1,010 -> 949.4 coins is a fall of 6 %: the modelled positions are part of all open
    # positions, so each side keeps 94 %, every bin alike (not 10 - 60.6 coins).
    heatmap.update(MARKET, time_s=T, open_interest=949.4, price=P)
    np.testing.assert_allclose(heatmap.actual_coins(), before * 0.94, rtol=1e-12)
    np.testing.assert_allclose(heatmap.side_totals()[0], totals * 0.94, rtol=1e-12)
    heatmap.update(MARKET, time_s=T, open_interest=0.0, price=P)
    assert heatmap.actual_coins().sum() == 0.0


def test_turnover_moves_positions_to_the_price_without_losing_any() -> None:
    params = HeatmapParams(leverage_model="mix", leverage_mix={25: 1.0}, bin_fraction=FRACTION)
    heatmap = opened(params)
    later, price = T + 12 * 3600.0, 80_080.0  # one half-life on; a move that crosses nothing
    heatmap.update(MARKET, time_s=later, open_interest=1010.0, price=price)
    assert heatmap.side_totals()[0] == pytest.approx([10.0, 10.0])
    # Half stays at the old liquidation price (77,108.4), half reopened at 80,080 (77,185.5):
    # both in the shown bin from 77,000, in two fine bins.
    assert bins(build_view(heatmap, price), LONG) == pytest.approx({77_000.0: 10 * price})
    fine_bins = np.flatnonzero(heatmap.actual_coins()[LONG])
    assert [(b + heatmap.base) * heatmap.fine for b in fine_bins] == [77_100.0, 77_150.0]
    assert heatmap.actual_coins()[LONG, fine_bins].tolist() == pytest.approx([5.0, 5.0])


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
    alone = build_view(opened(), P).usd
    np.testing.assert_allclose(build_view(heatmap, P).usd, 2 * alone)
    # OKX falls by a sixth: its 10 coins per side keep 5/6, Binance's are untouched.
    heatmap.update("okx:BTC/USDT:USDT", time_s=T, open_interest=50.0, price=P)
    np.testing.assert_allclose(build_view(heatmap, P).usd, alone * (1 + 5 / 6))


def lognormal_share(low_leverage: float, high_leverage: float) -> float:
    """Share of the default density (log-normal, median 33, sigma 1.2, cut to 2x-125x) between
    two leverages, from the error function: independent of the model's tables."""
    assert (HeatmapParams().leverage_median, HeatmapParams().leverage_sigma) == (33.0, 1.2)

    def cdf(leverage: float) -> float:
        return 0.5 * (1 + math.erf(math.log(leverage / 33) / (1.2 * math.sqrt(2))))

    def clip(leverage: float) -> float:
        return min(max(leverage, 2.0), 125.0)

    return (cdf(clip(high_leverage)) - cdf(clip(low_leverage))) / (cdf(125) - cdf(2))


def test_the_density_fills_each_bin_with_its_exact_share() -> None:
    view = build_view(opened(), P)
    mmr = 0.004
    for i in range(view.bin_count):
        low, high = (view.first_index + i) * view.step, (view.first_index + i + 1) * view.step
        # Long LP = P (1 - 1/L) / (1 - mmr): L = 1 / (1 - LP (1 - mmr) / P), rising with LP.
        leverage = [1 / max(1e-12, 1 - x * (1 - mmr) / P) if x < P else 1e9 for x in (low, high)]
        want = 10 * P * lognormal_share(*leverage)
        assert view.usd[LONG, i] == pytest.approx(want, abs=1e-3 * 10 * P), low
    # Every coin opened is somewhere on the state array (2x is 50 % below the price).
    assert view.coins.sum(axis=1) == pytest.approx([10.0, 10.0], rel=1e-12)


def test_adjacent_leverages_leave_no_empty_bin_between_them() -> None:
    view = build_view(opened(), P)
    lp_5x, lp_125x = P * 0.8 / 0.996, P * (1 - 1 / 125) / 0.996
    inside = [view.bin_of(x) for x in (lp_5x, lp_125x)]
    first, last = (inside[0] or 0), inside[1]
    assert last is not None
    assert np.all(view.usd[LONG, first : last + 1] > 0)


def test_the_map_bands_sum_to_the_heatmap_and_the_cumulative_curves_add_up() -> None:
    heatmap = opened(coins=25.0)
    heatmap.update(MARKET, time_s=T + 600, open_interest=1040.0, price=P * 1.02, low=P)
    view = build_view(heatmap, P * 1.02)
    merged = view.map_usd.sum(axis=1)  # over the leverage bands
    multiple = view.map_multiple
    for k in range(view.map_count):
        first = (view.map_first + k) * multiple - view.first_index
        if first >= 0 and first + multiple <= view.bin_count:
            np.testing.assert_allclose(
                merged[:, k], view.usd[:, first : first + multiple].sum(axis=1), rtol=1e-12
            )
    # Bands: everything at or below 10x, between, above 50x; the bands hold every coin.
    outside = outside_map(view)
    inside = [
        float(x) * view.price - o for x, o in zip(view.coins.sum(axis=1), outside, strict=True)
    ]
    assert view.map_usd.sum(axis=2).sum(axis=1).tolist() == pytest.approx(inside)
    # Longs liquidated by a fall to a bin's lower edge: every long bin from there up.
    longs, shorts = view.coins
    width = 4 * multiple
    for k in range(view.map_count):
        start = (view.map_first + k) * width - view.base
        assert view.cumulative[LONG, k] == pytest.approx(longs[start:].sum() * view.price)
        assert view.cumulative[SHORT, k] == pytest.approx(
            shorts[: start + width].sum() * view.price
        )


def outside_map(view: CoinView) -> list[float]:
    """USD per side of fine bins outside the map's range."""
    width = 4 * view.map_multiple
    start = view.map_first * width - view.base
    stop = start + view.map_count * width
    coins = view.coins
    outside = (coins[:, :start].sum(axis=1) + coins[:, stop:].sum(axis=1)) * view.price
    return [float(x) for x in outside]


def test_the_stale_stretch_of_the_shared_csv_opens_and_closes_nothing() -> None:
    """The CSV's open interest repeats 1,680 times (2026-06-14 15:00 to 06-20 10:55, an
    upstream gap carried forward) and then steps down 211 M USD; neither the repeats nor the
    step may open or close positions."""
    times, high, low, close, oi_usd = load_real_btc()
    opens = np.r_[close[0], close[:-1]]  # a candle's open is the previous close, here exactly
    same = np.flatnonzero(oi_usd[1:] == oi_usd[:-1])
    first, last = int(same[0]), int(same[-1]) + 1  # the repeated stretch
    assert last - first + 1 == 1680
    assert oi_usd[last + 1] < oi_usd[last] - 2.1e8
    real = CoinHeatmap("BTC", HeatmapParams(), float(opens[0]))
    held = CoinHeatmap("BTC", HeatmapParams(), float(opens[0]))
    readings = []
    for i in range(last + 2):  # up to and including the step when it moves again
        price = float(opens[i])
        step = {"time_s": times[i], "price": price, "low": low[i - 1], "high": high[i - 1]}
        coins = oi_usd[i] / price  # coins move with the price while the USD figure is frozen
        readings.append(real.update(MARKET, open_interest=coins, **step))
        # The twin never sees the open interest change after the stretch begins.
        frozen = oi_usd[first] / float(opens[first]) if i >= first else coins
        held.update(MARKET, open_interest=frozen, **step)
    # 15 minutes of repeats are taken as quiet; after that every reading is stale.
    assert readings[first] == "applied"
    assert readings[first + 1 : first + 4] == ["unchanged"] * 3
    assert readings[first + 4 : last + 1] == ["stale"] * (last - first - 3)
    assert readings[last + 1] == "resumed"
    np.testing.assert_array_equal(real.actual_coins(), held.actual_coins())
    assert real.markets[MARKET].open_interest == pytest.approx(oi_usd[last + 1] / opens[last + 1])


def test_nice_steps_and_labels() -> None:
    assert [nice_step(t) for t in (205.1, 0.00018, 7.3, 0.45, 3.3)] == [200, 0.0002, 10, 0.5, 2.5]
    assert [label_decimals(s) for s in (200.0, 0.0002, 2.5, 0.25)] == [0, 4, 1, 2]


def test_series_stay_under_the_bound_while_price_moves_20_percent() -> None:
    params = HeatmapParams()
    heatmap = CoinHeatmap("BTC", params, P)
    rng = np.random.default_rng(7)
    path = P * np.exp(np.cumsum(rng.normal(0, 0.002, 3000)))
    up, down = np.linspace(P, P * 1.2, 500), np.linspace(P * 1.2, P * 0.85, 1000)
    path = np.concatenate([up, down, path])
    oi = 1000.0
    steps: list[float] = []
    for i, price in enumerate(path):
        oi = max(10.0, oi + rng.normal(0, 5))
        heatmap.update("m", time_s=T + 60 * i, open_interest=oi, price=float(price))
        view = build_view(heatmap, float(price))
        assert view.usd.shape[1] <= params.max_bins_per_side() == 311
        assert view.map_count <= params.max_map_bins_per_side() == 157
        if not steps or steps[-1] != view.step:
            steps.append(view.step)
    # 68,000 .. 96,000 and the random walk stay within 65,536 x 0.99 .. 131,072 x 1.01: one
    # zone, one step, and Grafana's rows stay put.
    assert path.min() > 2**16 * (1 - ZONE_MARGIN)
    assert steps == [250.0]
    for i, price in enumerate(np.linspace(path[-1], P * 2.5, 200)):
        heatmap.update("m", time_s=T + 1e6 + 60 * i, open_interest=oi, price=float(price))
        view = build_view(heatmap, float(price))
        assert view.usd.shape[1] <= 311
        assert view.map_count <= 157
        if steps[-1] != view.step:
            steps.append(view.step)
    # The next octave (from 131,072 x 1.01): nice(0.25 % x 131,072 x sqrt 2 = 463.4) = 500.
    assert steps == [250.0, 500.0]


def test_the_step_is_the_zones_whatever_the_path() -> None:
    """Two grids that reach a price from opposite sides agree on its step (replicas must),
    unless the price sits within the margin of an octave's edge."""
    params = HeatmapParams()
    for price in (70_000.0, 100_000.0, 125_000.0, 140_000.0, 3_000.0):
        steps = set()
        for start in (price / 1.9, price * 1.9, price):
            heatmap = CoinHeatmap("BTC", params, start)
            heatmap.update("m", time_s=T, open_interest=1.0, price=price)
            steps.add(heatmap.step)
        assert steps == {zone_step(zone_of(price), params.bin_fraction)}, price


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
    # The per-side totals kept along the way are the coins the state array holds.
    book = heatmap.markets["binance:BTC/USDT:USDT"]
    assert book.total == pytest.approx(heatmap.side_totals()[0].tolist(), rel=1e-9)


def test_replicas_change_the_step_together_at_the_hour() -> None:
    """Two replicas, each with one market of a coin 0.1 % apart, rising through 2^16 = 65,536
    within an hour: both keep the hour's step (100), whenever each crossed; at the first
    reading of the next hour both take the step of the octave above (250), before either
    market's next reading, so their markets' positions are re-binned at the same point of
    their histories. Prices straddling 65,536 at that moment would leave them apart until the
    hour after."""
    params = HeatmapParams()
    start = 3600.0 * math.ceil(T / 3600.0)  # an hour's first second
    first, second = CoinHeatmap("BTC", params, 65_000.0), CoinHeatmap("BTC", params, 65_000.0)
    below, above = zone_step(15, params.bin_fraction), zone_step(16, params.bin_fraction)
    path = [65_000.0, 65_500.0, 65_560.0, 66_300.0, 65_900.0]
    for i, price in enumerate(path):
        first.update("binance:m", time_s=start + 60 * i, open_interest=100.0, price=price * 1.001)
        second.update("bybit:m", time_s=start + 60 * i, open_interest=100.0, price=price)
        assert first.step == second.step == below, price
    hour = start + 3600.0
    first.update("binance:m", time_s=hour, open_interest=100.0, price=65_700.0 * 1.001)
    assert first.step == above
    second.update("bybit:m", time_s=hour + 5, open_interest=100.0, price=65_700.0)
    assert second.step == above
    # A crash beyond the zone's margin (10 %) takes the new zone at once.
    first.update("binance:m", time_s=hour + 60, open_interest=100.0, price=58_000.0)
    assert first.step == below


def test_bins_wider_than_the_nearest_liquidation_distance_keep_the_sides_apart() -> None:
    # 2 % bins: the octave 131,072..262,144 has the step nice(2 % x 185,364 = 3,707) = 5,000
    # (fine bins of 1,250), kept down to 131,072 x 0.99 = 129,761 within the hour of the first
    # reading (131,100, in the octave). At 130,600 a fine bin is
    # 0.96 % of the price, wider than BTC's nearest liquidation distances (0.4 % at 125x):
    # LPs 130,075 and 131,120 share [130,000, 131,250).
    heatmap = CoinHeatmap("BTC", HeatmapParams(bin_fraction=0.02), 200_000.0)
    heatmap.update(MARKET, time_s=T, open_interest=1000.0, price=131_100.0)
    heatmap.update(MARKET, time_s=T, open_interest=1010.0, price=130_600.0)
    assert heatmap.fine == 1250.0
    assert heatmap.side_totals()[0] == pytest.approx([10.0, 10.0], rel=1e-12)
    at_price = 130_000 // 1250 - heatmap.base
    coins = heatmap.actual_coins()
    assert coins[LONG, at_price + 1 :].sum() == 0.0  # no long liquidates above the price
    assert coins[SHORT, :at_price].sum() == 0.0  # no short below it
    assert coins[LONG, at_price] > 0
    assert coins[SHORT, at_price] > 0
    # The shorts nearest the price are the most leveraged: the straddling part is "high".
    short_bands = heatmap.coins[0, SHORT, :, at_price] * heatmap.markets[MARKET].scale[SHORT]
    assert short_bands.tolist() == pytest.approx([0.0, 0.0, coins[SHORT, at_price]])


def test_a_one_sided_opening_in_a_shared_bin_adds_nothing_to_the_other_side() -> None:
    # As above, with trend attribution: the price fell, so only shorts open.
    params = HeatmapParams(bin_fraction=0.02, side_attribution="trend")
    heatmap = CoinHeatmap("BTC", params, 200_000.0)
    heatmap.update(MARKET, time_s=T, open_interest=1000.0, price=131_100.0)
    heatmap.update(MARKET, time_s=T, open_interest=1010.0, price=130_600.0)
    assert heatmap.side_totals()[0].tolist() == pytest.approx([0.0, 10.0], abs=1e-12)
    assert heatmap.markets[MARKET].total == pytest.approx([0.0, 10.0], abs=1e-12)


@pytest.mark.parametrize("coin", ["BTC", "SOL", "DOGE"])
@pytest.mark.parametrize("bin_fraction", [0.001, 0.0025, 0.005])
def test_every_opened_coin_lies_within_the_sweep_frontiers(coin: str, bin_fraction: float) -> None:
    """A sweep starts at ``long_top``/``short_bottom``: coins beyond them would never go."""
    heatmap = CoinHeatmap(coin, HeatmapParams(bin_fraction=bin_fraction), P)
    rng = np.random.default_rng(3)
    price, oi = P, 1000.0
    for i in range(300):
        price *= float(np.exp(rng.normal(0, 0.002)))
        oi += float(rng.normal(1, 3))
        heatmap.update(MARKET, time_s=T + 300 * i, open_interest=oi, price=price)
        book = heatmap.markets[MARKET]
        longs = np.flatnonzero(heatmap.coins[0, LONG].any(axis=0))
        shorts = np.flatnonzero(heatmap.coins[0, SHORT].any(axis=0))
        assert longs.size == 0 or longs[-1] <= book.long_top, i
        assert shorts.size == 0 or shorts[0] >= book.short_bottom, i


def test_a_market_without_open_interest_is_not_stale() -> None:
    heatmap = CoinHeatmap("BTC", HeatmapParams(), P)
    readings = [
        heatmap.update(MARKET, time_s=T + 60 * i, open_interest=0.0, price=P) for i in range(30)
    ]
    assert set(readings) == {"applied"}
    assert heatmap.update(MARKET, time_s=T + 1800, open_interest=500.0, price=P) == "applied"
    assert heatmap.side_totals()[0].tolist() == pytest.approx([500.0, 500.0])


def test_history_replays_only_what_is_newer_than_the_market_and_counts_stale_rows_apart() -> None:
    now = 1_780_000_000.0  # events need a real date
    book = HeatmapBook(HeatmapParams(), lambda: now + 3600)
    at_ms = int(now * 1000)
    book.observe_open_interest(
        OpenInterest("binance", "BTC/USDT:USDT", "BTC", 1000.0, 1000.0 * P, P, at_ms, at_ms)
    )
    # 10 rows before the live reading, 5 after; 4 of those repeat the same open interest
    # for 20 minutes (past the 15-minute threshold: the last of them is stale).
    times = (now + 300 * np.arange(-10, 5)) * 1000
    interest = np.r_[np.linspace(900, 990, 10), 1000.0, 1000.0, 1000.0, 1000.0, 1000.0]
    prices = np.full(15, P)
    history = MarketHistory(
        "binance", "BTC/USDT:USDT", "BTC", times.astype(np.int64), interest, prices, prices, prices
    )
    assert book.replay(history) == 4
    assert book.snapshot().stale_readings == {("binance", "history"): 1}
