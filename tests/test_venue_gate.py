"""Gate USDT futures: the recorded (documentation) frames become exactly the expected events by
the side rule "negative size = a forced sell = a long liquidated", both entry shapes of
``futures.public_liquidates`` (before and since 2026-08-20) are read, every bad entry is
rejected in its place, and the fake speaks what the adapter expects (and ccxt loads from it)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest

from exporter.collectors.gate import SECONDS_BELOW, GateVenue, entry_time_ms
from exporter.collectors.intake import RawEntry
from exporter.collectors.venue import FrameKind
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
