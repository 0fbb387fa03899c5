"""Gate USDT futures: the recorded (documentation) frames become exactly the expected events by
the side rule "negative size = a forced sell = a long liquidated", both entry shapes of
``futures.public_liquidates`` (before and since 2026-08-20) are read, every bad entry is
rejected in its place, funding rates and the index come from the tickers and the funding
schedule (seconds) from the contract list, and the fake speaks what the adapter expects (and
ccxt loads from it)."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any

import pytest

from exporter.collectors.gate import SECONDS_BELOW, GateVenue, entry_time_ms
from exporter.collectors.intake import RawEntry
from exporter.collectors.venue import ContextFields, FrameKind, RawOpenInterest
from exporter.events import InvalidEventError, Reason
from exporter.fakeexchange.gate import GateProtocol
from exporter.fakeexchange.markets import DEFAULT_MARKETS
from exporter.fakeexchange.protocol import ALL_MARKETS, PingRequest, SubscribeRequest
from exporter.fakeexchange.protocol import Liquidation as FakeLiquidation
from tests.collector_harness import RecordingCore, make_collector
from tests.venues import offline
from tests.venues.gate import CASE, RULE

if TYPE_CHECKING:
    from exporter.health import Health
    from tests.conftest import FakeExchangeFactory
    from tests.venues.case import Recorded

ADAPTER = GateVenue()
# As ccxt's gate parses /futures/usdt/contracts: contractSize is quanto_multiplier (BTC 0.0001,
# as the fake lists it; test_ccxt_loads_only_usdt_swaps_... below checks that).
MARKETS = offline.by_id(
    (
        offline.ccxt_market("BTC/USDT:USDT", "BTC_USDT", 0.0001),
        offline.ccxt_market("ETH/USDT:USDT", "ETH_USDT", 0.01),
    )
)
NOW_S = 1_791_565_600.0
T0 = 1_791_565_600_000


def intake() -> offline.Intake:
    return offline.make_intake(ADAPTER, MARKETS, NOW_S)


def invalid(health: Health) -> dict[Reason, int]:
    return offline.invalid_by_reason(health, "gate")


def update(*entries: object) -> dict[str, Any]:
    return {"channel": "futures.public_liquidates", "event": "update", "result": list(entries)}


@offline.each_recorded(CASE)
def test_documented_frames_become_exact_events(recorded: Recorded) -> None:
    """Rule: negative size => long. Both lines are documentation examples (no capture)."""
    assert recorded.origin == "documentation"
    assert recorded.rule == RULE
    offline.assert_recorded_frame(ADAPTER, intake(), recorded, exchange="gate", coin="BTC")


@pytest.mark.parametrize(
    ("size", "side", "contracts"),
    [("-124.5", "long", 124.5), ("3", "short", 3.0), (-124, "long", 124.0), (7, "short", 7.0)],
)
def test_the_sign_of_size_is_the_forced_orders_side(
    size: object, side: str, contracts: float
) -> None:
    """A forced sell (negative) closes a long; string decimals (with the X-Gate-Size-Decimal
    header) and integers (without it) read alike."""
    entry = {"price": "100", "size": size, "time": 1791565600123, "contract": "BTC_USDT"}
    raw = ADAPTER.parse_entry(entry)
    assert (raw.side, raw.amount) == (side, contracts)


@pytest.mark.parametrize(
    ("size", "reason"),
    [("0", Reason.NOT_POSITIVE), ("NaN", Reason.NOT_FINITE), ("x", Reason.WRONG_TYPE)],
)
def test_a_size_without_a_sign_is_rejected(size: str, reason: Reason) -> None:
    entry = {"price": "100", "size": size, "time": 1791565600123, "contract": "BTC_USDT"}
    with pytest.raises(InvalidEventError) as caught:
        ADAPTER.parse_entry(entry)
    assert caught.value.reason is reason


@pytest.mark.parametrize(
    ("fields", "ms"),
    [
        ({"time": 1541486601}, 1541486601000),  # before 2026-08-20: seconds
        ({"time": 1541486601123}, 1541486601123),  # since: milliseconds
        ({"time": "1541486601.5"}, 1541486601500),
        ({"time_ms": 1541486601123}, 1541486601123),  # an older doc revision's name
        ({"time": 1541486601, "time_ms": 1541486601123}, 1541486601123),
        ({"time": SECONDS_BELOW - 1}, int((SECONDS_BELOW - 1) * 1000)),
        ({"time": SECONDS_BELOW}, int(SECONDS_BELOW)),
    ],
)
def test_entry_time_in_seconds_or_milliseconds(fields: dict[str, object], ms: int) -> None:
    assert entry_time_ms(fields) == ms


def test_a_time_that_is_no_number_is_rejected() -> None:
    for fields, reason in (
        ({}, Reason.MISSING_FIELD),
        ({"time": "inf"}, Reason.BAD_TIMESTAMP),
        ({"time": True}, Reason.WRONG_TYPE),
    ):
        with pytest.raises(InvalidEventError) as caught:
            entry_time_ms(fields)
        assert caught.value.reason is reason


def test_each_entry_stands_alone() -> None:
    """One aggregated push: the bad entries are counted in their place, the good ones kept."""
    good = {"price": "80000", "size": "-10", "time": 1791565600100, "contract": "BTC_USDT"}
    message = update(
        good,
        "not an object",
        {"price": "80000", "size": "-1", "time": 1791565600100},  # no contract
        {**good, "contract": "NOPE_USDT"},
        {**good, "price": "-1"},
        {**good, "size": "1", "time": 1791565600200},
    )
    taker, sink, health = intake()
    taker.take(message)
    assert [(e.side, e.quantity) for e in sink.events] == [("long", 0.001), ("short", 0.0001)]
    assert invalid(health) == {
        Reason.WRONG_TYPE: 1,
        Reason.MISSING_FIELD: 1,
        Reason.UNKNOWN_SYMBOL: 1,
        Reason.NOT_POSITIVE: 1,
    }


def test_a_result_that_is_no_list_is_one_rejection() -> None:
    taker, sink, health = intake()
    taker.take({"channel": "futures.public_liquidates", "event": "update", "result": {}})
    assert sink.events == []
    assert invalid(health) == {Reason.WRONG_TYPE: 1}


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        (
            {
                "time": 1545459681,
                "time_ms": 1545459681123,
                "channel": "futures.public_liquidates",
                "event": "subscribe",
                "result": {"status": "success"},
            },
            FrameKind.ACK,
        ),
        (
            {
                "time": 1789147120,
                "channel": "futures.public_liquidates",
                "event": "subscribe",
                "error": {"code": 2, "message": "unknown contract"},
                "result": None,
            },
            FrameKind.REJECT,
        ),
        (
            {"channel": "", "event": "", "error": {"code": 1, "message": "x"}, "result": None},
            FrameKind.REJECT,
        ),
        (
            {
                "time": 1545404023,
                "time_ms": 1545404023123,
                "channel": "futures.pong",
                "event": "",
                "result": None,
            },
            FrameKind.CONTROL,
        ),
        (
            {
                "channel": "futures.public_liquidates",
                "event": "unsubscribe",
                "result": {"status": "success"},
            },
            FrameKind.CONTROL,
        ),
        ({"channel": "futures.tickers", "event": "update", "result": []}, FrameKind.UNKNOWN),
        ([1, 2], FrameKind.UNKNOWN),
        ("pong", FrameKind.UNKNOWN),
    ],
)
def test_frames_are_classified(frame: object, kind: FrameKind) -> None:
    assert ADAPTER.classify_frame(frame) is kind


def test_one_subscription_covers_every_contract() -> None:
    (everything,) = ADAPTER.native_subscriptions(None)
    assert everything["channel"] == "futures.public_liquidates"
    assert everything["event"] == "subscribe"
    assert everything["payload"] == ["!all"]
    (some,) = ADAPTER.native_subscriptions(["BTC_USDT", "ETH_USDT"])
    assert some["payload"] == ["BTC_USDT", "ETH_USDT"]
    assert GateVenue.CCXT_STREAMS is False
    assert json.loads(GateVenue.NATIVE.keepalive or "")["channel"] == "futures.ping"


def test_the_fake_answers_as_the_adapter_expects() -> None:
    """Requests the adapter sends parse on the fake, and every answer classifies right."""
    fake = GateProtocol(DEFAULT_MARKETS)
    sent = ADAPTER.encode(ADAPTER.native_subscriptions(None)[0])
    request = fake.parse(sent)
    assert isinstance(request, SubscribeRequest)
    assert (request.keys, request.invalid) == (frozenset({ALL_MARKETS}), ())
    (ack,) = fake.ack(request, "c0ffee")
    assert ADAPTER.classify_frame(json.loads(ack)) is FrameKind.ACK
    some = fake.parse(ADAPTER.encode(ADAPTER.native_subscriptions(["BTC_USDT", "NOPE_USDT"])[0]))
    assert isinstance(some, SubscribeRequest)
    assert (some.keys, some.invalid) == (frozenset({"BTC/USDT:USDT"}), ("NOPE_USDT",))
    (refusal,) = fake.reject(some, "c0ffee")
    assert ADAPTER.classify_frame(json.loads(refusal)) is FrameKind.REJECT
    ping = fake.parse(GateVenue.NATIVE.keepalive or "")
    assert isinstance(ping, PingRequest)
    assert ADAPTER.classify_frame(json.loads(fake.pong(ping, "c0ffee"))) is FrameKind.CONTROL
    offline.assert_junk_is_rejected(fake, ADAPTER)


def test_the_fake_pushes_at_most_20_orders_per_frame_in_the_documented_shape() -> None:
    fake = GateProtocol(DEFAULT_MARKETS)
    sent = [
        FakeLiquidation("BTC/USDT:USDT", "long" if i % 2 else "short", 80_000.0 + i, 0.05, T0 + i)
        for i in range(25)
    ]
    frames = fake.encode(sent)
    assert [len(f.liquidations) for f in frames] == [20, 5]
    documented = json.loads(CASE.recorded[0].text())
    for frame in frames:
        message = json.loads(frame.text)
        assert list(message) == list(documented)  # channel, event, time, time_ms, result
        assert list(message["result"][0]) == list(documented["result"][0])
        assert fake.decode(frame.text) == list(frame.liquidations)
        assert all(isinstance(item, RawEntry) for item in ADAPTER.split_frame(message))
        read = offline.read_entries(ADAPTER, message)
        want = [(liq.side, liq.price, 500.0, liq.ts_ms) for liq in frame.liquidations]  # 0.05 BTC
        assert [(r.side, r.price, r.amount, r.timestamp_ms) for r in read] == want


async def test_ccxt_loads_only_usdt_swaps_and_one_call_reads_every_open_interest(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """load_markets asks /spot/currencies and /futures/usdt/contracts and nothing else; one
    /futures/usdt/tickers call gives every contract's open interest (contracts x quanto)."""
    fake = await fake_exchange("gate")
    fake.set_market_state("BTC/USDT:USDT", mark_price=81_000.0, open_interest_coins=12_345.6)
    collector = make_collector(fake, RecordingCore(), ("BTC", "ETH"))
    exchange = collector.make_exchange()
    try:
        markets = await exchange.load_markets()
        assert set(fake.rest_requests) == {
            "/api/v4/spot/currencies",
            "/api/v4/futures/usdt/contracts",
        }
        assert set(markets) == set(fake.symbols)
        assert markets["BTC/USDT:USDT"]["contractSize"] == 0.0001
        assert markets["BTC/USDT:USDT"]["id"] == "BTC_USDT"
        items = await ADAPTER.read_open_interest(exchange, ["BTC/USDT:USDT", "ETH/USDT:USDT"])
        assert fake.rest_requests["/api/v4/futures/usdt/tickers"] == 1
        read = offline.readings(items)
        assert set(read) == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
        coins, usd, mark, ts = read["BTC/USDT:USDT"]
        assert coins == pytest.approx(12_345.6)
        assert (usd, mark, ts) == (None, 81_000.0, None)
    finally:
        await exchange.close()


async def test_the_fake_serves_5_minute_open_interest_history_and_candles_through_ccxt(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """contract_stats rows are in CONTRACTS (ccxt's openInterestAmount): the backfill needs a
    contracts-to-coins step before GateVenue.HISTORY can be set (see its comment)."""
    fake = await fake_exchange("gate")
    collector = make_collector(fake, RecordingCore(), ("BTC",))
    exchange = collector.make_exchange()
    now_ms = int(time.time() * 1000)
    since = (now_ms // 300_000 - 50) * 300_000
    try:
        await exchange.load_markets()
        rows = await exchange.fetch_open_interest_history("BTC/USDT:USDT", "5m", since, 100, {})
        assert [r["timestamp"] for r in rows[:2]] == [since, since + 300_000]
        history = fake.history("BTC/USDT:USDT")
        first = int(list(history.ts_ms).index(since))
        contracts = float(history.open_interest_coins[first]) / 0.0001
        assert rows[0]["openInterestAmount"] == pytest.approx(contracts, abs=0.5)
        candles = await exchange.fetch_ohlcv(
            "BTC/USDT:USDT", "5m", since, 20, {"until": since + 20 * 300_000 - 1}
        )
        assert [c[0] for c in candles] == [since + i * 300_000 for i in range(20)]
        assert candles[0][4] == pytest.approx(float(history.close[first]), rel=1e-6)
    finally:
        await exchange.close()


# --- funding and index price -------------------------------------------------------------------

# BTC_USDT's contract as Gate's announcement of `funding_rate_limit` (2025-08-13) shows it, trimmed
# to what is read; its ticker has the fields of APIv4's `FuturesTicker` with the same figures,
# except an indicative rate that differs from the current one (so the two cannot be swapped).
DOC_CONTRACT = {
    "name": "BTC_USDT",
    "funding_rate": "0.0001",
    "funding_rate_indicative": "0.0001",
    "funding_interval": 28800,
    "funding_next_apply": 1755100800,
    "index_price": "120384.2",
    "mark_price": "120359.8",
    "quanto_multiplier": "0.0001",
}
DOC_TICKER = {
    "contract": "BTC_USDT",
    "last": "120359.8",
    "total_size": "256491312",
    "mark_price": "120359.8",
    "funding_rate": "0.0001",
    "funding_rate_indicative": "0.000219",
    "index_price": "120384.2",
}


class ContractsExchange:
    """What read_open_interest uses of ccxt: the markets and the two implicit calls."""

    def __init__(self, tickers: object, contracts: object) -> None:
        self.markets = {m["symbol"]: m for m in MARKETS.values()}
        self.answers = {"tickers": tickers, "contracts": contracts}
        self.calls: list[tuple[str, dict[str, str]]] = []

    async def publicFuturesGetSettleTickers(self, params: dict[str, str]) -> object:  # noqa: N802 - ccxt's name
        self.calls.append(("tickers", params))
        return self.answers["tickers"]

    async def publicFuturesGetSettleContracts(self, params: dict[str, str]) -> object:  # noqa: N802 - ccxt's name
        self.calls.append(("contracts", params))
        return self.answers["contracts"]


async def btc_context(ticker: object, contracts: object) -> RawOpenInterest:
    exchange = ContractsExchange([ticker], contracts)
    (btc,) = await ADAPTER.read_open_interest(exchange, ["BTC/USDT:USDT"])  # type: ignore[arg-type]  # stub
    assert exchange.calls == [("tickers", {"settle": "usdt"}), ("contracts", {"settle": "usdt"})]
    assert isinstance(btc, RawOpenInterest)
    assert btc.context is not None
    return btc


async def test_rates_and_index_come_from_the_ticker_and_the_schedule_from_the_contract() -> None:
    """`funding_next_apply` and `funding_interval` are seconds: 8 h, next at 2025-08-13T16:00Z;
    `funding_rate_indicative` is the next period's rate."""
    btc = await btc_context(DOC_TICKER, [DOC_CONTRACT])
    assert btc.read() == (25_649.1312, None, 120_359.8, None)
    assert btc.context is not None
    assert btc.context() == ContextFields(
        index_price=120_384.2,
        funding_rate=0.0001,
        predicted_funding_rate=0.000219,
        next_funding_ms=1_755_100_800_000,
        funding_interval_s=28_800.0,
    )
    assert {f.name for f in dataclasses.fields(ContextFields)} == GateVenue.CONTEXT


async def test_a_fractional_funding_time_keeps_its_milliseconds() -> None:
    """The Contract model types `funding_next_apply` as a float (seconds)."""
    btc = await btc_context(DOC_TICKER, [{**DOC_CONTRACT, "funding_next_apply": 1755100800.25}])
    assert btc.context is not None
    assert btc.context().next_funding_ms == 1_755_100_800_250


@pytest.mark.parametrize(
    ("ticker", "contracts", "reason"),
    [
        (DOC_TICKER, [], Reason.MISSING_FIELD),  # listed since the contract list was served
        (DOC_TICKER, {"label": "SERVER_ERROR"}, Reason.MISSING_FIELD),
        ({**DOC_TICKER, "funding_rate": "x"}, [DOC_CONTRACT], Reason.WRONG_TYPE),
        ({**DOC_TICKER, "index_price": ""}, [DOC_CONTRACT], Reason.MISSING_FIELD),
        (DOC_TICKER, [{**DOC_CONTRACT, "funding_next_apply": "inf"}], Reason.BAD_TIMESTAMP),
        (DOC_TICKER, [{**DOC_CONTRACT, "funding_interval": None}], Reason.MISSING_FIELD),
    ],
)
async def test_a_bad_funding_figure_is_rejected_and_the_open_interest_stands(
    ticker: dict[str, object], contracts: object, reason: Reason
) -> None:
    btc = await btc_context(ticker, contracts)
    assert btc.read() == (25_649.1312, None, 120_359.8, None)
    assert btc.context is not None
    with pytest.raises(InvalidEventError) as caught:
        btc.context()
    assert caught.value.reason is reason


async def test_the_fake_serves_the_state_as_gate_prints_it(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """A poll is one tickers and one contracts call; rates are decimal strings, the schedule
    whole seconds, the index on the tick; what the adapter reads of them is the state."""
    fake = await fake_exchange("gate")
    fake.set_market_state(
        "ETH/USDT:USDT",
        mark_price=2_950.5,
        open_interest_coins=1_000.0,
        index_price=2_948.25,
        funding_rate=0.000125,
        predicted_funding_rate=-0.00005,
        funding_interval_hours=4,
    )
    collector = make_collector(fake, RecordingCore(), ("ETH",))
    exchange = collector.make_exchange()
    try:
        await exchange.load_markets()
        listed = fake.rest_requests["/api/v4/futures/usdt/contracts"]
        before_ms = int(time.time() * 1000)
        (eth,) = await ADAPTER.read_open_interest(exchange, ["ETH/USDT:USDT"])
        after_ms = int(time.time() * 1000)
        assert fake.rest_requests["/api/v4/futures/usdt/tickers"] == 1
        assert fake.rest_requests["/api/v4/futures/usdt/contracts"] == listed + 1
        implicit: Any = exchange  # ccxt's implicit API, untyped
        contract = next(
            c
            for c in await implicit.publicFuturesGetSettleContracts({"settle": "usdt"})
            if c["name"] == "ETH_USDT"
        )
        ticker = next(
            t
            for t in await implicit.publicFuturesGetSettleTickers({"settle": "usdt"})
            if t["contract"] == "ETH_USDT"
        )
    finally:
        await exchange.close()
    assert (ticker["funding_rate"], ticker["funding_rate_indicative"]) == ("0.000125", "-0.00005")
    assert (contract["funding_rate"], contract["funding_rate_indicative"]) == (
        "0.000125",
        "-0.00005",
    )
    assert (ticker["index_price"], contract["index_price"]) == ("2948.25", "2948.25")
    assert contract["funding_interval"] == 14_400
    assert isinstance(contract["funding_next_apply"], int)
    assert isinstance(eth, RawOpenInterest)
    assert eth.context is not None
    context = eth.context()
    assert (context.index_price, context.funding_rate, context.predicted_funding_rate) == (
        2_948.25,
        0.000125,
        -0.00005,
    )
    assert context.funding_interval_s == 14_400.0
    assert context.next_funding_ms in {
        (now // 14_400_000 + 1) * 14_400_000 for now in (before_ms, after_ms)
    }
