"""Tests of the seeded market simulation that is ground truth for the liquidation-heatmap model.

The candle CSV is re-read here with the csv module (independently of the simulation's own loader)
from the installed package; realistic liquidation volumes come from
``tests/data/btc_liquidations_1h_usd_2025-11_2026-05.csv`` (copy of
/work/shared/data/btc_liquidations_1h_usd_2025-11_2026-05.csv: hourly BTC liquidations across
exchanges, long_usd and short_usd per hour).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from exporter.fakeexchange.simulation import (
    LEVERAGES,
    LIQUIDATABLE_SHARE,
    MMR_BY_LEVERAGE,
    VENUE_SHARES,
    MarketSimulation,
    SimLiquidation,
)

REAL_HOURLY_CSV = Path(__file__).parent / "data" / "btc_liquidations_1h_usd_2025-11_2026-05.csv"
# The stated tolerance: the simulation's median hourly BTC total is within this factor of the
# real median at default settings.
VOLUME_FACTOR = 3.0
SIDES = ("long", "short")


@dataclass(frozen=True)
class Rows:
    """The packaged 5-minute CSV as parsed here: one element per row."""

    ts_ms: list[int]
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    oi_usd: list[float]


@pytest.fixture(scope="module")
def rows() -> Rows:
    text = (
        resources.files("exporter.fakeexchange")
        .joinpath("data/binance_btcusdt_5m_price_oi_2026-06.csv")
        .read_text(encoding="utf-8")
    )
    recs = list(csv.DictReader(io.StringIO(text)))
    return Rows(
        [int(r["timestamp_ms"]) for r in recs],
        [float(r["open"]) for r in recs],
        [float(r["high"]) for r in recs],
        [float(r["low"]) for r in recs],
        [float(r["close"]) for r in recs],
        [float(r["open_interest_usd"]) for r in recs],
    )


def marks(sim: MarketSimulation) -> dict[str, float]:
    return {s.coin: s.mark_price for s in sim.market_states() if s.venue == sim.venues[0]}


def total_oi_usd(sim: MarketSimulation) -> dict[str, float]:
    out = dict.fromkeys(sim.coins, 0.0)
    for s in sim.market_states():
        out[s.coin] += s.open_interest_usd
    return out


def hourly_usd(liqs: list[SimLiquidation], start_ms: int, hours: int) -> npt.NDArray[np.float64]:
    idx = np.array([(q.ts_ms - start_ms) // 3_600_000 for q in liqs], dtype=np.int64)
    usd = np.array([q.usd for q in liqs], dtype=np.float64)
    return np.bincount(idx, weights=usd, minlength=hours)[:hours].astype(np.float64)


def test_same_seed_same_everything_other_seed_differs() -> None:
    pattern = (1.0, 0.25, 60.0, 13.7, 1.0, 300.0)

    def run(seed: int) -> tuple[list[SimLiquidation], MarketSimulation]:
        sim = MarketSimulation(seed=seed)
        liqs: list[SimLiquidation] = []
        for k in range(600):
            liqs += sim.step(pattern[k % len(pattern)])
        return liqs, sim

    liqs_a, a = run(7)
    liqs_b, b = run(7)
    liqs_c, c = run(8)
    assert len(liqs_a) > 50
    assert liqs_a == liqs_b
    assert a.market_states() == b.market_states()
    assert a.now_ms == b.now_ms == c.now_ms
    assert a.leverage_mix() == b.leverage_mix()
    for coin in a.coins:
        for side in SIDES:
            lp_a, usd_a = a.true_positions(coin, side)
            lp_b, usd_b = b.true_positions(coin, side)
            np.testing.assert_array_equal(lp_a, lp_b)
            np.testing.assert_array_equal(usd_a, usd_b)
    assert liqs_a != liqs_c
    assert a.leverage_mix() != c.leverage_mix()


def test_btc_follows_the_candles_and_reaches_each_high_and_low(rows: Rows) -> None:
    start, n_candles = 1000, 24
    sim = MarketSimulation(seed=3, start_row=start)
    assert sim.now_ms == rows.ts_ms[start]
    for k in range(n_candles):
        row = start + k
        seen = {c: [marks(sim)[c]] for c in sim.coins}
        assert seen["BTC"][0] == rows.open[row]
        for _ in range(299):
            sim.step(1.0)
            for c, p in marks(sim).items():
                seen[c].append(p)
        assert sim.candle("BTC") == (rows.open[row], rows.high[row], rows.low[row], rows.close[row])
        assert max(seen["BTC"]) == rows.high[row]
        assert min(seen["BTC"]) == rows.low[row]
        for c in ("ETH", "SOL"):
            o, h, lo, cl = sim.candle(c)
            assert (o, h, lo, cl) == (seen[c][0], max(seen[c]), min(seen[c]), seen[c][-1])
        sim.step(1.0)  # onto the next candle's open
        assert sim.now_ms == rows.ts_ms[row + 1]
        o, h, lo, cl = sim.candle("BTC")
        assert o == h == lo == cl == rows.open[row + 1]
        assert total_oi_usd(sim)["BTC"] == pytest.approx(rows.oi_usd[row + 1], rel=1e-12)


def test_derived_coins_start_near_base_and_move_with_btc() -> None:
    sim = MarketSimulation(seed=1)
    p0 = marks(sim)
    assert p0["ETH"] == pytest.approx(2900.0, rel=0.01)
    assert p0["SOL"] == pytest.approx(180.0, rel=0.01)
    series: dict[str, list[float]] = {c: [] for c in sim.coins}
    for _ in range(2 * 288):
        sim.step(300.0)
        for c, p in marks(sim).items():
            series[c].append(p)
    r = {c: np.diff(np.log(np.asarray(v))) for c, v in series.items()}
    assert np.corrcoef(r["BTC"], r["ETH"])[0, 1] > 0.5
    assert np.corrcoef(r["BTC"], r["SOL"])[0, 1] > 0.4
    assert np.std(r["SOL"]) > np.std(r["BTC"])


def test_liquidations_are_crossed_directional_and_remove_their_position() -> None:
    sim = MarketSimulation(seed=11, start_row=2000)
    venues = set(sim.venues)
    counts = dict.fromkeys(SIDES, 0)
    before_p = marks(sim)
    before = {(c, s): sim.true_positions(c, s)[0] for c in sim.coins for s in SIDES}
    for _ in range(2 * 3600):
        liqs = sim.step(1.0)
        now_p = marks(sim)
        after = {(c, s): sim.true_positions(c, s)[0] for c in sim.coins for s in SIDES}
        for q in liqs:
            prev, now = before_p[q.coin], now_p[q.coin]
            # Crossed: with whole-second steps the path between the two marks is a straight line.
            assert min(prev, now) <= q.price <= max(prev, now)
            if q.side == "long":
                assert now < prev, "a long is liquidated only while the price falls"
            else:
                assert q.side == "short"
                assert now > prev, "a short is liquidated only while the price rises"
            assert q.ts_ms == sim.now_ms
            assert q.venue in venues
            assert q.coins > 0
            assert q.usd == pytest.approx(q.coins * q.price, rel=1e-12)
            assert np.isin(q.price, before[q.coin, q.side]), "came from an open position"
            assert not np.isin(q.price, after[q.coin, q.side]), "position still open"
            counts[q.side] += 1
        for c in sim.coins:
            # No position that the path touched survives the step, liquidated or not.
            lp_long, lp_short = after[c, "long"], after[c, "short"]
            old_long = np.isin(lp_long, before[c, "long"])
            old_short = np.isin(lp_short, before[c, "short"])
            assert not np.any(lp_long[old_long] >= min(before_p[c], now_p[c]))
            assert not np.any(lp_short[old_short] <= max(before_p[c], now_p[c]))
            # And nothing open sits on the wrong side of the current price.
            assert np.all(lp_long < now_p[c])
            assert np.all(lp_short > now_p[c])
        before_p, before = now_p, after
    assert counts["long"] > 20
    assert counts["short"] > 20


def test_new_positions_use_the_tier_liquidation_price_formula() -> None:
    # Positions are opened at the end of a step, at the mark price then.
    sim = MarketSimulation(seed=5)
    checked = dict.fromkeys(SIDES, 0)
    for _ in range(60):
        before = {s: sim.true_positions("BTC", s)[0] for s in SIDES}
        sim.step(60.0)
        price = marks(sim)["BTC"]
        for side in SIDES:
            lp, _usd = sim.true_positions("BTC", side)
            lev = sim.true_position_leverages("BTC", side)
            new = ~np.isin(lp, before[side])
            for p, lv in zip(lp[new].tolist(), lev[new].tolist(), strict=True):
                mmr = MMR_BY_LEVERAGE[lv]
                want = (
                    price * (1 - 1 / lv) / (1 - mmr)
                    if side == "long"
                    else price * (1 + 1 / lv) / (1 + mmr)
                )
                assert p == pytest.approx(want, rel=1e-12)
                checked[side] += 1
    assert min(checked.values()) > 50


@pytest.mark.parametrize(("seed", "volume_scale", "days"), [(0, 1.0, 2), (4, 10.0, 0.5)])
def test_open_notional_tracks_and_never_exceeds_the_oi_bound(
    rows: Rows, seed: int, volume_scale: float, days: float
) -> None:
    # Documented bound: per coin and side, the true positions' notional at the mark price is at
    # most LIQUIDATABLE_SHARE * volume_scale of the coin's OI summed over venues; after each
    # step it is refilled to within MAX_POSITION_FRACTION (5 %) of it, so 90 % is a safe floor.
    sim = MarketSimulation(seed=seed, volume_scale=volume_scale)
    start_ms = rows.ts_ms[0]
    n_liqs = 0
    for _ in range(round(days * 1440)):
        n_liqs += len(sim.step(60.0))
        oi = total_oi_usd(sim)
        for coin in sim.coins:
            bound = LIQUIDATABLE_SHARE * volume_scale * oi[coin]
            for side in SIDES:
                total = float(sim.true_positions(coin, side)[1].sum())
                assert total <= bound * (1 + 1e-9)
                assert total >= 0.9 * bound
        by_venue = {(s.venue, s.coin): s.open_interest_usd for s in sim.market_states()}
        for (venue, coin), usd in by_venue.items():
            assert usd == pytest.approx(VENUE_SHARES[venue] * oi[coin], rel=1e-12)
        elapsed = sim.now_ms - start_ms
        if elapsed % 300_000 == 0:
            assert oi["BTC"] == pytest.approx(rows.oi_usd[elapsed // 300_000], rel=1e-12)
    assert n_liqs > 100


def test_hourly_volume_and_order_sizes_match_real_data() -> None:
    real = np.loadtxt(REAL_HOURLY_CSV, delimiter=",", skiprows=1, usecols=(2, 3)).sum(axis=1)
    real_median = float(np.median(real))
    hours = 72
    medians = []
    for seed in (0, 1):
        sim = MarketSimulation(seed=seed)  # default coins, venues, scale
        start = sim.now_ms
        liqs: list[SimLiquidation] = []
        for _ in range(hours * 60):
            liqs += sim.step(60.0)
        btc = [q for q in liqs if q.coin == "BTC"]
        hourly = hourly_usd(btc, start, hours)
        median = float(np.median(hourly))
        medians.append(median)
        assert real_median / VOLUME_FACTOR <= median <= real_median * VOLUME_FACTOR, (
            f"seed {seed}: simulated median {median:,.0f} vs real {real_median:,.0f}"
        )
        usd = np.array([q.usd for q in btc])
        assert np.mean((usd >= 100) & (usd <= 1e6)) >= 0.9
        assert usd.max() > 1e5, "heavy tail: some big orders"
        venue_share = {v: sum(q.usd for q in liqs if q.venue == v) for v in sim.venues}
        assert max(venue_share, key=lambda v: venue_share[v]) == "binance"
    assert medians[0] != medians[1]


def test_leverage_mix_is_a_distribution_that_differs_between_seeds() -> None:
    mixes = [MarketSimulation(seed=s, coins=("BTC",)).leverage_mix() for s in range(5)]
    for mix in mixes:
        assert tuple(mix) == LEVERAGES
        assert all(w >= 0 for w in mix.values())
        assert math.fsum(mix.values()) == pytest.approx(1.0, abs=1e-12)
    vectors = np.array([list(m.values()) for m in mixes])
    for i in range(len(mixes)):
        for j in range(i + 1, len(mixes)):
            assert np.abs(vectors[i] - vectors[j]).max() > 0.01


def test_opened_leverages_follow_the_drawn_mix() -> None:
    # Positions opened at one instant (before any liquidation or close) are a sample of the mix.
    sim = MarketSimulation(seed=2, coins=("BTC",), volume_scale=50.0)
    counts = np.zeros(len(LEVERAGES))
    for _ in range(40):
        before = {s: sim.true_positions("BTC", s)[0] for s in SIDES}
        sim.step(60.0)
        for side in SIDES:
            lp = sim.true_positions("BTC", side)[0]
            lev = sim.true_position_leverages("BTC", side)
            new = lev[~np.isin(lp, before[side])]
            counts += [np.sum(new == lv) for lv in LEVERAGES]
    assert counts.sum() > 3000
    freq = counts / counts.sum()
    mix = np.array(list(sim.leverage_mix().values()))
    assert np.abs(freq - mix).max() < 0.04


def test_runs_past_the_end_of_the_data_continuously(rows: Rows) -> None:
    last = len(rows.open) - 1
    sim = MarketSimulation(seed=9, start_row=last - 1)
    prev = marks(sim)
    prev_oi = total_oi_usd(sim)
    prev_ms = sim.now_ms
    checked = 0
    for _ in range(3600):
        sim.step(1.0)
        now = marks(sim)
        oi = total_oi_usd(sim)
        assert sim.now_ms == prev_ms + 1000
        for c in sim.coins:
            assert abs(math.log(now[c] / prev[c])) < 0.005, "no jump at the seam"
            assert abs(oi[c] / prev_oi[c] - 1) < 0.001
        if sim.now_ms == rows.ts_ms[last] + 300_000:
            # First second of the second loop: row 0 re-based onto the last close.
            assert now["BTC"] == pytest.approx(rows.close[last], rel=1e-12)
            checked += 1
        if sim.now_ms == rows.ts_ms[last] + 600_000 - 1000:
            factor = rows.close[last] / rows.open[0]
            want = (rows.open[0], rows.high[0], rows.low[0], rows.close[0])
            assert sim.candle("BTC") == pytest.approx([x * factor for x in want], rel=1e-12)
            checked += 1
        prev, prev_oi, prev_ms = now, oi, sim.now_ms
    assert checked == 2
    # A long step keeps working and returns time-ordered orders from inside the step.
    before_ms = sim.now_ms
    liqs = sim.step(2 * 86400.0)
    assert sim.now_ms == before_ms + 2 * 86400 * 1000
    assert liqs
    ts = [q.ts_ms for q in liqs]
    assert ts == sorted(ts)
    assert before_ms < ts[0]
    assert ts[-1] <= sim.now_ms
    assert all(math.isfinite(s.mark_price) and s.mark_price > 0 for s in sim.market_states())


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="seconds"):
        MarketSimulation(coins=("BTC",)).step(0.0)
    with pytest.raises(ValueError, match="unknown coins"):
        MarketSimulation(coins=("DOGE",))
    with pytest.raises(ValueError, match="unknown venues"):
        MarketSimulation(venues=("ftx",))
    with pytest.raises(ValueError, match="start_row"):
        MarketSimulation(start_row=10**6)
    with pytest.raises(ValueError, match="volume_scale"):
        MarketSimulation(volume_scale=0.0)
    with pytest.raises(ValueError, match="side"):
        MarketSimulation(coins=("BTC",)).true_positions("BTC", "buy")
