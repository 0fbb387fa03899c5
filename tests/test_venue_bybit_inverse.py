"""Bybit inverse: the recorded frames (the older ``liquidation.<ID>`` topic, v2 and v5 shapes)
become exactly the expected events by the rule "side / S is the POSITION's side: Buy => a long
was liquidated", sizes are USD contracts turned into coins at the bankruptcy price, and the
fake's ``allLiquidation`` frame (built from the documented linear shape: no real inverse one
was ever recorded) reads the same way. ccxt loads inverse markets only and one tickers call
gives every market's open interest (USD), funding and index price; the accounts' long/short
ratio is asked with ``category=inverse``."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from exporter.collectors.bybit import ticker_context
from exporter.collectors.bybit_inverse import BybitInverseVenue
from exporter.collectors.venue import ContextFields, RawLongShort, RawOpenInterest
from exporter.events import InvalidEventError, Reason
from exporter.fakeexchange.bybit_inverse import BybitInverseProtocol
from exporter.fakeexchange.markets import DEFAULT_MARKETS
from exporter.fakeexchange.protocol import Liquidation as FakeLiquidation
from tests.collector_harness import RecordingCore, make_collector
from tests.venues import offline
from tests.venues.bybit_inverse import CASE, RULE
from tests.venues.case import FIXTURES

if TYPE_CHECKING:
    from exporter.collectors.ccxt_types import Market
    from exporter.health import Health
    from tests.conftest import FakeExchangeFactory
    from tests.venues.case import Recorded

ADAPTER = BybitInverseVenue()
BTC = "BTC/USD:BTC"


def _market(base: str) -> Market:
    """A market as ccxt's bybit parses an InversePerpetual (contractSize: minOrderQty, 1)."""
    return offline.ccxt_market(f"{base}/USD:{base}", f"{base}USD")


MARKETS = offline.by_id(_market(b) for b in ("BTC", "ETH", "XRP"))
NOW_S = 1_791_565_700.0
T0 = 1_791_565_600_000


def intake() -> offline.Intake:
    return offline.make_intake(ADAPTER, MARKETS, NOW_S)


def invalid(health: Health) -> dict[Reason, int]:
    """Rejections of the liquidation stream (reported under the ``bybit`` label)."""
    return offline.invalid_by_reason(health, "bybit")


def all_liquidation(*entries: object, market_id: str = "BTCUSD") -> dict[str, Any]:
    """An allLiquidation push in the documented shape (see the module docstring)."""
    return {
        "topic": f"allLiquidation.{market_id}",
        "type": "snapshot",
        "ts": T0 + 400,
        "data": list(entries),
    }


def entry(**fields: object) -> dict[str, object]:
    return {"T": T0, "s": "BTCUSD", "S": "Buy", "v": "41000", "p": "82000.00"} | fields


# --- the recorded frames ------------------------------------------------------------------


@offline.each_recorded(CASE)
def test_recorded_frames_become_exact_events(recorded: Recorded) -> None:
    """Rule: side=Sell => short (all three recorded liquidations closed shorts). Lines 1-2
    are v2 (qty, time), line 3 the retired v5 topic (size, updatedTime); sizes are USD."""
    assert recorded.origin == "capture"
    assert recorded.rule == RULE
    topic = json.loads(recorded.text())["topic"]
    assert topic.startswith("liquidation.")  # not allLiquidation: none recorded
    events = offline.assert_recorded_frame(ADAPTER, intake(), recorded, exchange="bybit")
    # whole USD contracts: exact
    assert [e.notional_usd for e in events] == [want.usd for want in recorded.events]


@pytest.mark.parametrize(
    "fields",
    [
        {"S": "{side}", "v": "100", "p": "50000", "T": T0, "s": "BTCUSD"},  # allLiquidation
        {"side": "{side}", "size": "100", "price": "50000", "updatedTime": T0},  # v5, retired
        {"side": "{side}", "qty": "100", "price": "50000", "time": T0},  # v2
    ],
    ids=["allLiquidation", "liquidation-v5", "liquidation-v2"],
)
@pytest.mark.parametrize(("side", "position"), [("Buy", "long"), ("Sell", "short")])
def test_every_topic_states_the_positions_side(
    fields: dict[str, object], side: str, position: str
) -> None:
    """Buy => a LONG was liquidated, the opposite of Binance's and OKX's order sides
    (https://bybit-exchange.github.io/docs/v5/websocket/public/all-liquidation)."""
    raw = ADAPTER.parse_entry({k: side if v == "{side}" else v for k, v in fields.items()})
    assert (raw.side, raw.price, raw.amount, raw.timestamp_ms) == (position, 50_000.0, 100.0, T0)


@pytest.mark.parametrize("side", ["buy", "BUY", "Long", 1])
def test_any_other_side_is_rejected(side: object) -> None:
    with pytest.raises(InvalidEventError) as caught:
        ADAPTER.parse_entry(entry(S=side))
    assert caught.value.reason is Reason.INVALID_SIDE


# --- allLiquidation, as the fake sends it ---------------------------------------------------


def test_the_fakes_all_liquidation_frame_is_the_documented_shape_with_usd_sizes() -> None:
    """Built from the linear topic (tests/fixtures/ws/bybit_linear.jsonl line 3, also Bybit's
    doc example): same keys in the same order, `v` whole USD contracts."""
    fake = BybitInverseProtocol(DEFAULT_MARKETS)
    liq = fake.quantize(FakeLiquidation(BTC, "long", 82_000.0, 0.5000021, T0))
    assert liq.coins * 82_000.0 == pytest.approx(41_000.0)  # rounded to whole USD
    (frame,) = fake.encode([liq])
    message = json.loads(frame.text)
    linear = json.loads((FIXTURES / "bybit_linear.jsonl").read_text().splitlines()[2])
    assert linear["topic"].startswith("allLiquidation.")
    assert list(message) == list(linear)
    assert list(message["data"][0]) == list(linear["data"][0])
    assert message["data"][0] == entry()
    assert fake.decode(frame.text) == [liq]
    taker, sink, _ = intake()
    taker.take(message)
    (event,) = sink.events
    assert (event.symbol, event.side, event.notional_usd) == (BTC, "long", 41_000.0)
    assert event.quantity == pytest.approx(liq.coins, rel=1e-12)


def test_the_fake_decodes_the_recorded_frames_in_coins() -> None:
    fake = BybitInverseProtocol(DEFAULT_MARKETS)
    for recorded in CASE.recorded:
        (liq,) = fake.decode(recorded.text())
        (want,) = recorded.events
        assert (liq.symbol, liq.side, liq.price, liq.ts_ms) == (
            want.symbol,
            want.side,
            want.price,
            want.timestamp_ms,
        )
        assert liq.coins == pytest.approx(want.coins, rel=1e-12)


def test_each_entry_stands_alone() -> None:
    """One push: the bad entries are counted in their place, the good ones kept."""
    message = all_liquidation(
        entry(),
        "not an object",
        {k: v for k, v in entry().items() if k != "s"},
        entry(s="FOOUSD"),
        entry(p="-1"),
        entry(v="0"),
        entry(S="Sell", v="8200", T=T0 + 1),
    )
    taker, sink, health = intake()
    taker.take(message)
    assert [(e.side, e.notional_usd) for e in sink.events] == [
        ("long", 41_000.0),
        ("short", 8_200.0),
    ]
    assert [e.quantity for e in sink.events] == [0.5, 0.1]
    assert invalid(health) == {
        Reason.WRONG_TYPE: 1,
        Reason.MISSING_FIELD: 1,
        Reason.UNKNOWN_SYMBOL: 1,
        Reason.NOT_POSITIVE: 2,
    }
    assert health.snapshot().lost == {}


def test_data_that_is_no_list_is_one_rejection() -> None:
    taker, sink, health = intake()
    message = all_liquidation()
    message["data"] = entry()
    taker.take(message)
    assert sink.events == []
    assert invalid(health) == {Reason.WRONG_TYPE: 1}


# --- symbols and subscriptions ------------------------------------------------------------


def test_a_bare_coin_is_its_inverse_perpetual_and_all_means_every_active_one() -> None:
    listed = (
        *MARKETS.values(),
        {**_market("SOL"), "active": False},
        {**_market("BTC"), "symbol": "BTC/USD:BTC-251226", "swap": False, "future": True},
        {"symbol": "BTC/USDT:USDT", "swap": True, "linear": True, "inverse": False},
    )
    exchange: Any = SimpleNamespace(markets={m["symbol"]: m for m in listed})
    assert BybitInverseVenue.coin_symbol("BTC") == BTC
    assert ADAPTER.every_market(exchange) == [BTC, "ETH/USD:ETH", "XRP/USD:XRP"]


async def test_one_watch_and_one_topic_per_symbol_on_the_inverse_stream() -> None:
    calls: list[str] = []

    class Exchange:
        async def watch_liquidations(self, symbol: str) -> None:
            calls.append(symbol)

    exchange: Any = Exchange()
    watches = ADAPTER.watch_calls(exchange, [BTC, "ETH/USD:ETH"])
    for watch in watches:
        await watch()
    assert calls == [BTC, "ETH/USD:ETH"]
    assert ADAPTER.expected_acks([BTC, "ETH/USD:ETH"]) == 2
    ids = [f"C{i}USD" for i in range(12)]
    requests = ADAPTER.native_subscriptions(ids)
    assert [len(r["args"]) for r in requests] == [10, 2]
    assert requests[0]["args"][0] == "allLiquidation.C0USD"
    assert ADAPTER.NATIVE.url("ws://fake") == "ws://fake/v5/public/inverse"
    overrides = BybitInverseVenue.url_overrides("http://rest", "ws://fake")
    assert overrides["api"]["ws"] == {"public": {"inverse": "ws://fake/v5/public/inverse"}}


# --- ccxt against the fake ------------------------------------------------------------------


async def test_ccxt_loads_inverse_markets_and_one_tickers_call_reads_open_interest(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """load_markets asks instruments-info for inverse only (Trading and PreLaunch); one
    /v5/market/tickers?category=inverse call gives every market's open interest: USD in
    `openInterest`, coins at the mark price."""
    fake = await fake_exchange("bybit_inverse")
    fake.set_market_state(BTC, mark_price=81_234.5, open_interest_coins=12_345.6)
    exchange = make_collector(fake, RecordingCore(), ("BTC", "ETH")).make_exchange()
    try:
        markets = await exchange.load_markets()
        assert dict(fake.rest_requests) == {"/v5/market/instruments-info": 2}
        assert set(markets) == set(fake.symbols)
        btc = markets[BTC]
        assert (btc["id"], btc["contractSize"], btc["inverse"], btc["settle"]) == (
            "BTCUSD",
            1.0,
            True,
            "BTC",
        )
        items = await ADAPTER.read_open_interest(exchange, [BTC, "ETH/USD:ETH"])
        assert fake.rest_requests["/v5/market/tickers"] == 1
        read = offline.readings(items)
        assert set(read) == {BTC, "ETH/USD:ETH"}
        coins, usd, mark, ts = read[BTC]
        assert (usd, mark, ts) == (round(12_345.6 * 81_234.5), 81_234.5, None)
        assert coins == pytest.approx(float(usd or 0) / mark, rel=1e-12)
        assert coins == pytest.approx(12_345.6, rel=1e-9)
    finally:
        await exchange.close()


async def test_a_ticker_without_a_positive_mark_is_rejected() -> None:
    """USD / mark: a zero mark price is a rejection of that market, not a crash."""

    async def fetch_tickers(symbols: None, params: dict[str, str]) -> dict[str, Any]:
        assert (symbols, params) == (None, {"subType": "inverse"})
        return {BTC: {"info": {"openInterest": "100", "markPrice": "0"}}}

    exchange: Any = SimpleNamespace(markets={BTC: MARKETS["BTCUSD"]}, fetch_tickers=fetch_tickers)
    (item,) = await ADAPTER.read_open_interest(exchange, None)
    assert isinstance(item, RawOpenInterest)
    with pytest.raises(InvalidEventError) as caught:
        item.read()
    assert caught.value.reason is Reason.NOT_POSITIVE


# --- funding, index price and the accounts' long/short ratio ---------------------------------


def test_the_docs_inverse_ticker_gives_its_context() -> None:
    """The tickers page's example row (BTCUSD, https://bybit-exchange.github.io/docs/v5/market/
    tickers): what linear reads, from an inverse row."""
    row = {
        "symbol": "BTCUSD",
        "indexPrice": "114890.92",
        "markPrice": "114898.43",
        "openInterest": "240113967",
        "openInterestValue": "2089.79",
        "fundingRate": "0.0001",
        "nextFundingTime": "1760371200000",
        "fundingIntervalHour": "8",
        "fundingCap": "0.005",
    }
    assert ticker_context(row, MARKETS["BTCUSD"]) == ContextFields(
        index_price=114_890.92,
        funding_rate=0.0001,
        next_funding_ms=1_760_371_200_000,
        funding_interval_s=8 * 3600.0,
    )


async def test_ccxt_reads_inverse_context_and_ratio_from_the_fake(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """The context rides on the inverse tickers call; account-ratio is asked with
    ``category=inverse`` and the inverse id (the fake refuses linear's for an inverse market)."""
    fake = await fake_exchange("bybit_inverse")
    fake.set_market_state(
        BTC,
        mark_price=81_234.5,
        open_interest_coins=12_345.6,
        index_price=81_230.0,
        funding_rate=0.00375,
        funding_interval_hours=2,
        long_short={"accounts": 3.0},
    )
    exchange = make_collector(fake, RecordingCore(), ("BTC",)).make_exchange()
    try:
        markets = await exchange.load_markets()
        assert markets[BTC]["info"]["fundingInterval"] == 120
        (item,) = await ADAPTER.read_open_interest(exchange, [BTC])
        assert isinstance(item, RawOpenInterest)
        assert item.context is not None
        context = item.context()
        assert (context.index_price, context.funding_rate, context.funding_interval_s) == (
            81_230.0,
            0.00375,
            7200.0,
        )
        (ratio,) = await ADAPTER.read_positioning(exchange, [BTC])
        assert isinstance(ratio, RawLongShort)
        assert ratio.read()[0] == pytest.approx(3.0, rel=1e-9)
        assert fake.rest_requests["/v5/market/tickers"] == 1
        assert fake.rest_requests["/v5/market/account-ratio"] == 1
    finally:
        await exchange.close()
