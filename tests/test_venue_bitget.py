"""Bitget USDT-M: the recorded frame and the documentation example become exactly the expected
events by the side rule "side is the POSITION's side" and the unit "amount is quote coin (USDT)",
every bad entry is rejected in its place, the funding rate and the index come from the tickers
and the funding schedule from current-fund-rate, and the fake speaks what the adapter expects
(and ccxt loads from it)."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from exporter.collectors.bitget import BitgetVenue
from exporter.collectors.venue import ContextFields, FrameKind, RawOpenInterest
from exporter.events import InvalidEventError, Reason
from exporter.fakeexchange.bitget import BitgetProtocol
from exporter.fakeexchange.markets import DEFAULT_MARKETS
from exporter.fakeexchange.protocol import ALL_MARKETS, PingRequest, SubscribeRequest
from exporter.fakeexchange.protocol import Liquidation as FakeLiquidation
from exporter.venues import completeness_of
from tests.collector_harness import RecordingCore, make_collector
from tests.venues import offline
from tests.venues.bitget import CASE, RULE

if TYPE_CHECKING:
    from exporter.health import Health
    from tests.conftest import FakeExchangeFactory
    from tests.venues.case import Recorded

ADAPTER = BitgetVenue()
MARKETS = offline.by_id(
    offline.ccxt_market(f"{base}/USDT:USDT", f"{base}USDT") for base in ("BTC", "APE", "IP")
)
NOW_S = 1_791_565_600.0
T0 = 1_791_565_600_000


def intake() -> offline.Intake:
    return offline.make_intake(ADAPTER, MARKETS, NOW_S)


def invalid(health: Health) -> dict[Reason, int]:
    return offline.invalid_by_reason(health, "bitget")


def push(*entries: object) -> dict[str, Any]:
    arg = {"instType": "usdt-futures", "topic": "liquidation"}
    return {"action": "update", "arg": arg, "data": list(entries), "ts": T0}


def entry(**changes: object) -> dict[str, object]:
    good = {"symbol": "BTCUSDT", "side": "buy", "price": "80000", "amount": "8000", "ts": str(T0)}
    return {**good, **changes}


@offline.each_recorded(CASE)
def test_recorded_frames_become_exact_events(recorded: Recorded) -> None:
    """Rule: side buy => long; coins = amount (USDT) / price. bitget.jsonl is a capture (via
    tardis-node), bitget.docs.jsonl the documentation's example."""
    assert recorded.rule == RULE
    offline.assert_recorded_frame(ADAPTER, intake(), recorded, exchange="bitget")


def test_the_captured_amounts_are_quote_coin() -> None:
    """Read as USDT, the capture's amounts are whole lots (83.1 APE, 286.5 IP); read as coins
    they would be 13.70319 APE (2.26 USD) and 143.33 IP: quote coin, as the doc says."""
    message = json.loads(CASE.recorded[0].text())
    lots = [float(e["amount"]) / float(e["price"]) for e in message["data"]]
    assert lots == [pytest.approx(83.1, abs=1e-9), pytest.approx(286.5, abs=1e-9)]


@pytest.mark.parametrize(("side", "position"), [("buy", "long"), ("sell", "short")])
def test_side_is_the_positions_side(side: str, position: str) -> None:
    raw = ADAPTER.parse_entry(entry(side=side))
    assert (raw.side, raw.price, raw.amount, raw.timestamp_ms) == (position, 80000.0, 0.1, T0)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"side": "long"}, Reason.INVALID_SIDE),
        ({"side": None}, Reason.MISSING_FIELD),
        ({"price": "0"}, Reason.NOT_POSITIVE),
        ({"price": "NaN"}, Reason.NOT_POSITIVE),
        ({"price": "x"}, Reason.WRONG_TYPE),
        ({"amount": ""}, Reason.MISSING_FIELD),
        ({"ts": "inf"}, Reason.BAD_TIMESTAMP),
    ],
)
def test_a_bad_field_is_rejected(changes: dict[str, object], reason: Reason) -> None:
    with pytest.raises(InvalidEventError) as caught:
        ADAPTER.parse_entry(entry(**changes))
    assert caught.value.reason is reason


def test_each_entry_stands_alone() -> None:
    """One push of several pairs: the bad entries are counted in their place."""
    message = push(
        entry(),
        "not an object",
        entry(symbol=""),
        entry(symbol="FOOBARUSDT"),
        entry(amount="-5"),
        entry(symbol="APEUSDT", side="sell", price="0.2", amount="20", ts=str(T0 + 1)),
    )
    taker, sink, health = intake()
    taker.take(message)
    got = [(e.symbol, e.side, e.quantity) for e in sink.events]
    assert got == [("BTC/USDT:USDT", "long", 0.1), ("APE/USDT:USDT", "short", 100.0)]
    assert invalid(health) == {
        Reason.WRONG_TYPE: 1,
        Reason.MISSING_FIELD: 1,
        Reason.UNKNOWN_SYMBOL: 1,
        Reason.NOT_POSITIVE: 1,
    }


def test_data_that_is_no_list_is_one_rejection() -> None:
    taker, sink, health = intake()
    taker.take({**push(), "data": {}})
    assert sink.events == []
    assert invalid(health) == {Reason.WRONG_TYPE: 1}


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        (
            {
                "event": "subscribe",
                "arg": {"instType": "usdt-futures", "topic": "liquidation"},
                "connId": "x",
            },
            FrameKind.ACK,
        ),
        (
            {"event": "error", "code": 30001, "msg": "doesn't exist", "connId": "x"},
            FrameKind.REJECT,
        ),
        ({"event": "error", "code": 30002, "msg": "Unrecognized request:{}"}, FrameKind.REJECT),
        ("pong", FrameKind.CONTROL),
        ({"event": "unsubscribe", "arg": {}}, FrameKind.CONTROL),
        ({"action": "snapshot", "arg": {"topic": "ticker"}, "data": []}, FrameKind.UNKNOWN),
        ("ping", FrameKind.UNKNOWN),
        ([], FrameKind.UNKNOWN),
    ],
)
def test_frames_are_classified(frame: object, kind: FrameKind) -> None:
    assert ADAPTER.classify_frame(frame) is kind


def test_one_subscription_covers_every_usdt_pair() -> None:
    want = [{"op": "subscribe", "args": [{"instType": "usdt-futures", "topic": "liquidation"}]}]
    assert ADAPTER.native_subscriptions(None) == want
    assert ADAPTER.native_subscriptions(["BTCUSDT"]) == want
    assert BitgetVenue.CCXT_STREAMS is False
    assert BitgetVenue.NATIVE.keepalive == "ping"
    assert completeness_of("bitget") == "sampled"
    assert BitgetVenue.HISTORY is None


def test_symbols_all_is_every_usdt_perpetual() -> None:
    class Markets:
        markets: ClassVar[dict[str, dict[str, object]]] = {
            "BTC/USDT:USDT": {"swap": True, "linear": True, "settle": "USDT"},
            "BTC/USDC:USDC": {"swap": True, "linear": True, "settle": "USDC"},
            "SBTC/SUSDT:SUSDT": {"swap": True, "linear": True, "settle": "SUSDT"},
            "BTC/USD:BTC": {"swap": True, "linear": False, "settle": "BTC"},
        }

    assert ADAPTER.every_market(Markets()) == ["BTC/USDT:USDT"]  # type: ignore[arg-type]  # markets only


def test_the_fake_answers_as_the_adapter_expects() -> None:
    fake = BitgetProtocol(DEFAULT_MARKETS)
    request = fake.parse(ADAPTER.encode(ADAPTER.native_subscriptions(None)[0]))
    assert isinstance(request, SubscribeRequest)
    assert (request.keys, request.invalid) == (frozenset({ALL_MARKETS}), ())
    (ack,) = fake.ack(request, "c0ffee")
    assert ADAPTER.classify_frame(json.loads(ack)) is FrameKind.ACK
    wrong = fake.parse('{"op":"subscribe","args":[{"instType":"usdt-futures","topic":"liq"}]}')
    assert isinstance(wrong, SubscribeRequest)
    (refusal,) = fake.reject(wrong, "c0ffee")
    assert json.loads(refusal)["msg"] == '{"instType":"usdt-futures","topic":"liq"} doesn\'t exist'
    assert ADAPTER.classify_frame(json.loads(refusal)) is FrameKind.REJECT
    ping = fake.parse(BitgetVenue.NATIVE.keepalive or "")
    assert isinstance(ping, PingRequest)
    assert ADAPTER.classify_frame(fake.pong(ping, "c0ffee")) is FrameKind.CONTROL
    offline.assert_junk_is_rejected(fake, ADAPTER, '{"op":"login"}')


def test_the_fake_pushes_in_the_recorded_shape() -> None:
    fake = BitgetProtocol(DEFAULT_MARKETS)
    sent = [
        FakeLiquidation("APE/USDT:USDT", "long", 0.1649, 83.1, T0),
        FakeLiquidation("APE/USDT:USDT", "short", 0.1651, 10.0, T0 + 7),
        FakeLiquidation("BTC/USDT:USDT", "long", 80_000.5, 0.25, T0 + 9),
    ]
    frames = fake.encode(sent)
    assert [f.symbol for f in frames] == ["APE/USDT:USDT", "BTC/USDT:USDT"]
    recorded = json.loads(CASE.recorded[0].text())
    first = json.loads(frames[0].text)
    assert list(first) == list(recorded)  # action, arg, data, ts
    assert first["arg"] == recorded["arg"]
    assert list(first["data"][0]) == list(recorded["data"][0])  # symbol, side, price, amount, ts
    assert first["data"][0] == {
        "symbol": "APEUSDT",
        "side": "buy",
        "price": "0.1649",
        "amount": "13.70319",
        "ts": str(T0),
    }
    for frame in frames:
        decoded = fake.decode(frame.text)
        assert [(d.symbol, d.side, d.price, d.ts_ms) for d in decoded] == [
            (s.symbol, s.side, s.price, s.ts_ms) for s in frame.liquidations
        ]
        assert [d.coins for d in decoded] == pytest.approx([s.coins for s in frame.liquidations])
        read = offline.read_entries(ADAPTER, json.loads(frame.text))
        assert [r.amount for r in read] == pytest.approx([s.coins for s in frame.liquidations])


async def test_ccxt_loads_only_contracts_and_one_call_reads_every_open_interest(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """load_markets asks the coin list and the six contract lists only; one
    /api/v2/mix/market/tickers call gives every pair's open interest (base coin) and mark."""
    fake = await fake_exchange("bitget")
    fake.set_market_state("APE/USDT:USDT", mark_price=0.17, open_interest_coins=1_234_567.8)
    collector = make_collector(fake, RecordingCore(), ("APE", "BTC"))
    exchange = collector.make_exchange()
    try:
        markets = await exchange.load_markets()
        assert set(fake.rest_requests) == {
            "/api/v2/spot/public/coins",
            "/api/v2/mix/market/contracts",
        }
        assert fake.rest_requests["/api/v2/mix/market/contracts"] == 6
        assert set(markets) == set(fake.symbols)
        assert {"APE/USDT:USDT", "IP/USDT:USDT"} <= set(markets)
        assert markets["APE/USDT:USDT"]["id"] == "APEUSDT"
        items = await ADAPTER.read_open_interest(exchange, ["APE/USDT:USDT", "BTC/USDT:USDT"])
        assert fake.rest_requests["/api/v2/mix/market/tickers"] == 1
        read = offline.readings(items)
        assert set(read) == {"APE/USDT:USDT", "BTC/USDT:USDT"}
        coins, usd, mark, ts = read["APE/USDT:USDT"]
        assert coins == pytest.approx(1_234_567.8)
        assert (usd, mark) == (None, 0.17)
        assert isinstance(ts, int)
    finally:
        await exchange.close()


# --- funding and index price -------------------------------------------------------------------

# The current-fund-rate row of Bitget's documentation (Get Current Funding Rate, the all-symbols
# form), and a BTCUSDT ticker with the fields of Get All Tickers and the same rate.
DOC_RATE = {
    "symbol": "BTCUSDT",
    "fundingRate": "0.000068",
    "fundingRateInterval": "8",
    "nextUpdate": "1743062400000",
    "minFundingRate": "-0.003",
    "maxFundingRate": "0.003",
}
TICKER = {
    "symbol": "BTCUSDT",
    "lastPr": "86955.1",
    "ts": "1743054548546",
    "indexPrice": "86950.4",
    "fundingRate": "0.000068",
    "holdingAmount": "48372.55",
    "markPrice": "86955.0",
}


class TickerExchange:
    """What read_open_interest uses of ccxt: the markets and the two implicit calls."""

    def __init__(self, tickers: object, rates: object) -> None:
        self.markets = {
            m["symbol"]: {**m, "swap": True, "settle": "USDT"} for m in MARKETS.values()
        }
        self.answers = {"tickers": tickers, "rates": rates}
        self.calls: list[tuple[str, dict[str, str]]] = []

    async def publicMixGetV2MixMarketTickers(self, params: dict[str, str]) -> object:  # noqa: N802 - ccxt's name
        self.calls.append(("tickers", params))
        return {"code": "00000", "msg": "success", "data": self.answers["tickers"]}

    async def publicMixGetV2MixMarketCurrentFundRate(self, params: dict[str, str]) -> object:  # noqa: N802 - ccxt's name
        self.calls.append(("rates", params))
        return self.answers["rates"]


async def btc_reading(ticker: object, rates: object) -> RawOpenInterest:
    exchange = TickerExchange([ticker], rates)
    (btc,) = await ADAPTER.read_open_interest(exchange, ["BTC/USDT:USDT"])  # type: ignore[arg-type]  # stub
    product = {"productType": "USDT-FUTURES"}
    assert exchange.calls == [("tickers", product), ("rates", product)]  # no symbol: all pairs
    assert isinstance(btc, RawOpenInterest)
    assert btc.context is not None
    return btc


async def test_rate_and_index_come_from_the_ticker_and_the_schedule_from_the_rate_call() -> None:
    """`nextUpdate` is ms, `fundingRateInterval` hours; Bitget states no predicted rate."""
    btc = await btc_reading(TICKER, {"code": "00000", "data": [DOC_RATE]})
    assert btc.read() == (48_372.55, None, 86_955.0, 1_743_054_548_546)
    assert btc.context is not None
    assert btc.context() == ContextFields(
        index_price=86_950.4,
        funding_rate=0.000068,
        next_funding_ms=1_743_062_400_000,
        funding_interval_s=28_800.0,
    )
    every = {f.name for f in dataclasses.fields(ContextFields)}
    assert every - BitgetVenue.CONTEXT == {"predicted_funding_rate"}


@pytest.mark.parametrize(
    ("ticker", "rates", "reason"),
    [
        (TICKER, {"code": "00000", "data": []}, Reason.MISSING_FIELD),
        (TICKER, {"code": "40019", "data": None}, Reason.MISSING_FIELD),
        (TICKER, {"data": [{**DOC_RATE, "fundingRateInterval": "8h"}]}, Reason.WRONG_TYPE),
        (TICKER, {"data": [{**DOC_RATE, "nextUpdate": ""}]}, Reason.MISSING_FIELD),
        ({**TICKER, "indexPrice": None}, {"data": [DOC_RATE]}, Reason.MISSING_FIELD),
    ],
)
async def test_a_bad_funding_figure_is_rejected_and_the_open_interest_stands(
    ticker: dict[str, object], rates: object, reason: Reason
) -> None:
    btc = await btc_reading(ticker, rates)
    assert btc.read() == (48_372.55, None, 86_955.0, 1_743_054_548_546)
    assert btc.context is not None
    with pytest.raises(InvalidEventError) as caught:
        btc.context()
    assert caught.value.reason is reason


async def test_the_fake_serves_the_state_as_bitget_prints_it(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """A poll is one tickers and one current-fund-rate call, every pair in each; all figures
    are strings; the contract list's `fundInterval` is the state's interval too."""
    fake = await fake_exchange("bitget")
    fake.set_market_state(
        "ETH/USDT:USDT",
        mark_price=2_950.5,
        open_interest_coins=1_000.0,
        index_price=2_948.25,
        funding_rate=0.000125,
        funding_interval_hours=2,
    )
    collector = make_collector(fake, RecordingCore(), ("ETH",))
    exchange = collector.make_exchange()
    try:
        markets = await exchange.load_markets()
        before_ms = int(time.time() * 1000)
        (eth,) = await ADAPTER.read_open_interest(exchange, ["ETH/USDT:USDT"])
        after_ms = int(time.time() * 1000)
        assert fake.rest_requests["/api/v2/mix/market/tickers"] == 1
        assert fake.rest_requests["/api/v2/mix/market/current-fund-rate"] == 1
        implicit: Any = exchange  # ccxt's implicit API, untyped
        rates = await implicit.publicMixGetV2MixMarketCurrentFundRate(
            {"productType": "USDT-FUTURES"}
        )
    finally:
        await exchange.close()
    assert markets["ETH/USDT:USDT"]["info"]["fundInterval"] == "2"
    assert [r["symbol"] for r in rates["data"]] == [
        fake.market(s).base + "USDT" for s in fake.symbols
    ]
    row = next(r for r in rates["data"] if r["symbol"] == "ETHUSDT")
    assert (row["fundingRate"], row["fundingRateInterval"]) == ("0.000125", "2")
    assert isinstance(row["nextUpdate"], str)
    assert isinstance(eth, RawOpenInterest)
    assert eth.context is not None
    context = eth.context()
    assert (context.index_price, context.funding_rate, context.funding_interval_s) == (
        2_948.25,
        0.000125,
        7_200.0,
    )
    assert context.next_funding_ms in {
        (now // 7_200_000 + 1) * 7_200_000 for now in (before_ms, after_ms)
    }
