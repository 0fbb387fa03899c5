"""Heatmap coins (``heatmap_coins``): which coins get a heatmap, the top-N ranking with its
hysteresis, the book and the backfill leaving the other coins out, and those coins keeping
their totals, windows and open interest."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from exporter import persistence
from exporter.cli import EXIT_CONFIG_ERROR, load_config, main
from exporter.config import DEFAULT_HEATMAP_COINS, ConfigError
from exporter.core import Core
from exporter.heatmap import HeatmapBook, HeatmapParams
from exporter.heatmap.selection import CoinSelection, HeatmapCoins
from exporter.venues import DEFAULT_VENUES
from tests.collector_harness import eventually, make_collector, running
from tests.conftest import FakeClock, make_liquidation, make_open_interest
from tests.test_backfill import BTC, ETH, MARKETS, OI_HISTORY_PATH, wire_history
from tests.test_metrics import families, scrape

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_aiohttp import AiohttpClient

    from exporter.events import Liquidation, MarketHistory, OpenInterest
    from exporter.fakeexchange import FakeExchange
    from tests.conftest import FakeExchangeFactory

EXCHANGES = DEFAULT_VENUES


def reading(
    clock: FakeClock, coin: str, usd: float, exchange: str = "okx", price: float = 1.0
) -> OpenInterest:
    """An open-interest reading of ``coin``'s USDT perpetual worth ``usd``, a second later."""
    clock.now += 1
    return make_open_interest(
        clock,
        exchange=exchange,
        symbol=f"{coin}/USDT:USDT",
        coin=coin,
        coins=usd / price,
        usd=usd,
        mark_price=price,
    )


# --- the setting ------------------------------------------------------------------------


def test_the_default_is_the_top_ten_by_open_interest() -> None:
    assert load_config([], {}).heatmap_coins == DEFAULT_HEATMAP_COINS == HeatmapCoins(top=10)
    assert str(DEFAULT_HEATMAP_COINS) == "top:10"
    assert DEFAULT_HEATMAP_COINS.most == 15  # ceil(1.5 * 10): a chosen coin stays to rank 15


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["--heatmap-coins", "top:3"], {}, HeatmapCoins(top=3)),
        (["--heatmap-coins", "TOP: 25"], {}, HeatmapCoins(top=25)),
        ([], {"CRYPTOLIQ_HEATMAP_COINS": "btc, eth,btc"}, HeatmapCoins(coins=("BTC", "ETH"))),
        ([], {"CRYPTOLIQ_HEATMAP_COINS": "All"}, HeatmapCoins()),
        (["--heatmap-coins", "1000PEPE"], {}, HeatmapCoins(coins=("1000PEPE",))),
    ],
)
def test_heatmap_coins_in_every_form(
    argv: list[str], env: dict[str, str], expected: HeatmapCoins
) -> None:
    assert load_config(argv, env).heatmap_coins == expected


def test_heatmap_coins_as_a_yaml_list(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("heatmap_coins: [sol, BTC]\n", encoding="utf-8")
    assert load_config(["--config", str(path)], {}).heatmap_coins == HeatmapCoins(
        coins=("SOL", "BTC")
    )
    path.write_text("heatmap_coins: top:4\n", encoding="utf-8")
    assert load_config(["--config", str(path)], {}).heatmap_coins == HeatmapCoins(top=4)


@pytest.mark.parametrize(
    ("argv", "env", "yaml_text", "expected"),
    [
        (
            ["--heatmap-coins", "top:0"],
            {},
            None,
            (
                "--heatmap-coins = 'top:0': expected 'all', top:N with N >= 1 (the N coins of "
                "the largest open interest) or a list of coins (BTC,ETH)"
            ),
        ),
        ([], {"CRYPTOLIQ_HEATMAP_COINS": "top:ten"}, None, "CRYPTOLIQ_HEATMAP_COINS = 'top:ten'"),
        (["--heatmap-coins", "top:-2"], {}, None, "--heatmap-coins = 'top:-2': expected"),
        (["--heatmap-coins", ","], {}, None, "--heatmap-coins = ',': expected 'all', top:N"),
        (
            [],
            {},
            "heatmap_coins: [BTC, BTC/USDT:USDT]\n",
            "heatmap_coins = 'BTC/USDT:USDT': expected 'all', top:N",
        ),
        ([], {}, "heatmap_coins: []\n", "heatmap_coins = []: expected"),
        ([], {}, "heatmap_coins: 10\n", "heatmap_coins = 10: expected"),
        ([], {}, "heatmap_coins: [BTC, 5]\n", "heatmap_coins = 5: expected"),
    ],
)
def test_a_bad_heatmap_coins_exits_2_with_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    env: dict[str, str],
    yaml_text: str | None,
    expected: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if yaml_text is not None:
        path = tmp_path / "config.yaml"
        path.write_text(yaml_text, encoding="utf-8")
        argv = [*argv, "--config", str(path)]
    assert main(argv) == EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert expected in err
    with pytest.raises(ConfigError):
        load_config(argv, env)


def test_the_setting_is_one_form_at_a_time() -> None:
    with pytest.raises(ValueError, match="not both"):
        HeatmapCoins(coins=("BTC",), top=3)
    with pytest.raises(ValueError, match="at least one coin"):
        HeatmapCoins(coins=())
    with pytest.raises(ValueError, match="at least 1"):
        HeatmapCoins(top=0)
    assert (str(HeatmapCoins()), str(HeatmapCoins(coins=("BTC", "ETH")))) == ("all", "BTC,ETH")
    assert (HeatmapCoins().most, HeatmapCoins(coins=("BTC", "ETH")).most) == (None, 2)


# --- the selection ----------------------------------------------------------------------


def test_a_list_selects_its_coins_whatever_the_open_interest(clock: FakeClock) -> None:
    selection = CoinSelection(HeatmapCoins(coins=("BTC", "ETH")))
    assert selection.observe(reading(clock, "SOL", 1e12)) == ()
    assert selection.observe(reading(clock, "ETH", 1.0)) == ()
    assert [selection.selects(c) for c in ("BTC", "ETH", "SOL")] == [True, True, False]
    assert [selection.wants(c) for c in ("BTC", "SOL")] == [True, False]  # no ranking to wait for
    every = CoinSelection(HeatmapCoins())
    assert every.selects("ANY")
    assert every.wants("ANY")


def test_top_n_ranks_by_summed_open_interest_with_hysteresis(clock: FakeClock) -> None:
    """top:2: a coin enters in the top 2 and leaves below rank ceil(1.5 * 2) = 3."""
    selection = CoinSelection(HeatmapCoins(top=2))
    assert selection.wants("A") is None  # nothing to rank by yet
    assert selection.observe(reading(clock, "A", 100)) == ()  # A
    assert selection.wants("A") is True
    assert selection.wants("B") is False
    assert selection.observe(reading(clock, "B", 50)) == ()  # A B
    assert selection.selected() == ("A", "B")
    # C ranks 2nd and enters; B is 3rd, within the keep rank: it stays.
    assert selection.observe(reading(clock, "C", 80)) == ()  # A C B
    assert selection.selected() == ("A", "C", "B")
    # D ranks 2nd and enters; B falls to 4th, below rank 3: it goes.
    assert selection.observe(reading(clock, "D", 90)) == ("B",)  # A D C B
    assert selection.selected() == ("A", "D", "C")
    # B's second market (another exchange) adds up: 50 + 60 = 110 ranks 1st; C falls to 4th.
    assert selection.observe(reading(clock, "B", 60, exchange="bybit")) == ("C",)  # B A D C
    assert selection.selected() == ("B", "A", "D")
    # A's reading is replaced, not added to: 10 ranks 4th and A goes; C (3rd) does not return,
    # only a coin in the top 2 enters.
    assert selection.observe(reading(clock, "A", 10)) == ("A",)  # B D C A
    assert selection.selected() == ("B", "D")
    # D falls to 4th and goes; C moves up to 2nd and enters.
    assert selection.observe(reading(clock, "D", 5)) == ("D",)  # B C A D
    assert selection.selected() == ("B", "C")
    assert [selection.wants(c) for c in "ABCD"] == [False, True, True, False]


def test_ties_rank_by_name(clock: FakeClock) -> None:
    selection = CoinSelection(HeatmapCoins(top=1))  # keeps to rank 2
    selection.observe(reading(clock, "ETH", 100))
    selection.observe(reading(clock, "BTC", 100))  # BTC ETH: BTC enters, ETH stays 2nd
    assert selection.observe(reading(clock, "AAVE", 100)) == ("ETH",)  # AAVE BTC ETH
    assert selection.selected() == ("AAVE", "BTC")


def test_coins_restored_from_a_snapshot(clock: FakeClock) -> None:
    listed = CoinSelection(HeatmapCoins(coins=("BTC",)))
    assert listed.restore(["BTC", "ETH"]) == ("ETH",)
    # Under top:N a restored coin keeps its map until its own first reading ranks it.
    top = CoinSelection(HeatmapCoins(top=1))
    assert top.restore(["SOL", "ETH"]) == ()
    assert top.wants("SOL") is True  # restored: no need to wait for a ranking
    for coin, usd in (("A", 100), ("B", 90), ("C", 80)):
        assert top.observe(reading(clock, coin, usd)) == ()
    assert top.selected() == ("A", "ETH", "SOL")
    assert top.observe(reading(clock, "SOL", 85)) == ("SOL",)  # A B SOL C: 3rd, below 2
    assert top.observe(reading(clock, "ETH", 95)) == ()  # A ETH B C: 2nd, it stays
    assert top.selected() == ("A", "ETH")


# --- the book: no model, no memory for the other coins -----------------------------------


def test_readings_of_other_coins_reach_no_model(clock: FakeClock) -> None:
    book = HeatmapBook(HeatmapParams(), clock, CoinSelection(HeatmapCoins(coins=("BTC",))))
    book.expect_history("okx", "ETH/USDT:USDT", "ETH")
    book.observe_open_interest(reading(clock, "ETH", 1e9))
    book.observe_open_interest(reading(clock, "BTC", 1e9))
    assert set(book.coins) == {"BTC"}
    assert book._held == {}  # ETH's reading was not kept for later either
    book.end_history("okx", "ETH/USDT:USDT")
    assert set(book.coins) == {"BTC"}
    assert book.snapshot().ready == {"BTC": True}


def test_a_coin_that_loses_its_place_loses_its_model(clock: FakeClock) -> None:
    """top:1, so a chosen coin stays while it ranks 1st or 2nd."""
    book = HeatmapBook(HeatmapParams(), clock, CoinSelection(HeatmapCoins(top=1)))
    for market in ("ETH/USDT:USDT", "BTC/USDT:USDT"):
        book.expect_history("okx", market, market[:3])  # before any reading: nobody chosen
    book.observe_open_interest(reading(clock, "ETH", 100))  # ETH enters: held for its history
    book.observe_open_interest(reading(clock, "BTC", 1000))  # BTC enters; ETH 2nd, stays
    assert book.coins == {}
    assert book.snapshot().ready == {"BTC": False, "ETH": False}
    book.observe_open_interest(reading(clock, "SOL", 5000))  # no history coming: applied
    # ETH fell to 3rd: it goes, and the reading held for it with it.
    assert set(book.coins) == {"SOL"}
    assert book.snapshot().ready == {"BTC": False, "SOL": True}
    book.end_history("okx", "ETH/USDT:USDT")
    book.end_history("okx", "BTC/USDT:USDT")
    assert set(book.coins) == {"BTC", "SOL"}
    # ETH returns on top, its map from its live reading; BTC, pushed to 3rd, goes.
    book.observe_open_interest(reading(clock, "ETH", 9000))
    assert set(book.coins) == {"ETH", "SOL"}
    assert list(book.coins["ETH"].markets) == ["okx:ETH/USDT:USDT"]
    assert [v.coin for v in book.snapshot().views] == ["ETH", "SOL"]


def eth_liquidation(clock: FakeClock) -> Liquidation:
    return make_liquidation(
        clock, symbol="ETH/USDT:USDT", coin="ETH", price=2900.0, quantity=1.0, notional_usd=2900.0
    )


def test_liquidations_of_other_coins_count_everywhere_but_the_heatmap(clock: FakeClock) -> None:
    core = Core(EXCHANGES, clock, heatmap_coins=HeatmapCoins(coins=("BTC",)))
    core.record_open_interest(make_open_interest(clock))  # ETH
    core.record_liquidation(eth_liquidation(clock))
    snapshot = core.snapshot()
    assert snapshot.usd == {("binance", "ETH/USDT:USDT", "ETH", "long"): 2900.0}
    assert [oi.coin for oi in snapshot.open_interest] == ["ETH"]
    assert snapshot.heatmap.views == ()
    assert snapshot.heatmap.accuracy == {}


@pytest.mark.integration
async def test_other_coins_keep_totals_windows_and_open_interest_in_metrics(
    aiohttp_client: AiohttpClient, clock: FakeClock
) -> None:
    core = Core(EXCHANGES, clock, heatmap_coins=HeatmapCoins(coins=("BTC",)))
    core.record_open_interest(make_open_interest(clock))  # ETH on okx
    core.record_open_interest(reading(clock, "BTC", 800_000.0, price=80_000.0))
    core.record_liquidation(make_liquidation(clock))  # BTC
    core.record_liquidation(eth_liquidation(clock))
    parsed = families(await scrape(aiohttp_client, core))

    def coins(family: str) -> set[str]:
        return {s.labels["coin"] for s in parsed[family].samples}

    for family in (
        "cryptoliq_liquidations",
        "cryptoliq_liquidations_usd",
        "cryptoliq_liquidations_window_usd",
        "cryptoliq_liquidation_size_usd",
        "cryptoliq_open_interest_usd",
        "cryptoliq_open_interest_coins",
        "cryptoliq_mark_price_usd",
    ):
        assert coins(family) == {"BTC", "ETH"}, family
    for family in ("cryptoliq_heatmap_usd", "cryptoliq_heatmap_bin_width_usd"):
        assert coins(family) == {"BTC"}, family
    assert {s.labels["coin"]: s.value for s in parsed["cryptoliq_heatmap_ready"].samples} == {
        "BTC": 1.0
    }


def test_a_snapshot_keeps_only_the_heatmap_coins(tmp_path: Path, clock: FakeClock) -> None:
    core = Core(EXCHANGES, clock)
    core.record_open_interest(make_open_interest(clock))  # ETH
    core.record_open_interest(reading(clock, "BTC", 1e6))
    persistence.save(core, tmp_path)
    restored = Core(EXCHANGES, clock, heatmap_coins=HeatmapCoins(coins=("BTC",)))
    assert persistence.restore(restored, tmp_path)
    assert set(restored.heatmap.coins) == {"BTC"}
    assert [v.coin for v in restored.snapshot().heatmap.views] == ["BTC"]


# --- the backfill -----------------------------------------------------------------------


class SelectingCore(Core):
    """The real core with heatmaps for ``heatmap_coins``, keeping what the backfill asked for
    and what it recorded."""

    def __init__(self, heatmap_coins: HeatmapCoins) -> None:
        super().__init__(EXCHANGES, time.time, heatmap_coins=heatmap_coins)
        self.asked: list[tuple[str, bool | None]] = []
        self.histories: list[MarketHistory] = []

    def wants_history(self, coin: str) -> bool | None:
        answer = super().wants_history(coin)
        self.asked.append((coin, answer))
        return answer

    def record_history(self, history: MarketHistory) -> None:
        self.histories.append(history)
        super().record_history(history)


def serve_history(fake: FakeExchange) -> None:
    now_ms = int(time.time() * 1000)
    for seed, symbol in enumerate((BTC, ETH)):
        fake.set_history(symbol, **wire_history(symbol, 300, now_ms, seed=seed))


async def backfill(fake: FakeExchange, core: SelectingCore) -> None:
    """Run the collector on BTC and ETH until its backfill is through and both markets read."""
    async with running(make_collector(fake, core, (BTC, ETH), backfill_hours=30.0)):
        await eventually(
            lambda: core.health.snapshot().backfill_progress[fake.venue] == 1.0, "the backfill"
        )
        await eventually(lambda: len(core.snapshot().open_interest) == 2, "both readings")


@pytest.mark.parametrize("venue", EXCHANGES)
async def test_the_backfill_skips_markets_of_coins_without_a_heatmap(
    venue: str, fake_exchange: FakeExchangeFactory
) -> None:
    only_btc, both = await fake_exchange(venue), await fake_exchange(venue)
    for fake in (only_btc, both):
        serve_history(fake)
    core = SelectingCore(HeatmapCoins(coins=("BTC",)))
    await backfill(only_btc, core)
    reference = SelectingCore(HeatmapCoins())
    await backfill(both, reference)
    assert [h.symbol for h in core.histories] == [BTC]
    assert ("ETH", False) in core.asked
    # Skipped without a request (the same pages for each market), and not a failure.
    path = OI_HISTORY_PATH[venue]
    assert both.rest_requests[path] == 2 * only_btc.rest_requests[path] > 0
    assert core.health.snapshot().backfill_failures.get(venue, 0) == 0
    assert set(core.heatmap.coins) == {"BTC"}
    assert core.heatmap.snapshot().ready == {"BTC": True}
    assert {oi.coin for oi in core.snapshot().open_interest} == {"BTC", "ETH"}


async def test_a_top_n_backfill_waits_for_open_interest_to_rank_by(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """The first poll's readings come in beside the backfill, not before it: with nothing to
    rank by, the backfill asks again until there is."""
    fake = await fake_exchange("bybit")
    serve_history(fake)
    poll = fake.hold_rest("/v5/market/tickers")  # bybit's open interest, every market at once
    core = SelectingCore(HeatmapCoins(top=1))
    async with running(make_collector(fake, core, (BTC, ETH), backfill_hours=30.0)):
        await eventually(lambda: core.asked.count(("BTC", None)) >= 2, "the backfill waiting")
        assert fake.rest_requests[OI_HISTORY_PATH["bybit"]] == 0
        # Another exchange's readings come first: BTC leads by far, ETH is 2nd and stays out.
        clock = FakeClock(time.time())
        core.record_open_interest(reading(clock, "BTC", 1e11, price=MARKETS[BTC].mark_price))
        core.record_open_interest(reading(clock, "ETH", 1.0, price=MARKETS[ETH].mark_price))
        poll.set()
        await eventually(
            lambda: core.health.snapshot().backfill_progress["bybit"] == 1.0, "the backfill"
        )
    assert [h.symbol for h in core.histories] == [BTC]
    assert core.asked[-2:] == [("BTC", True), ("ETH", False)]
    assert set(core.heatmap.coins) == {"BTC"}
