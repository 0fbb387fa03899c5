"""BitMEX: every recorded frame becomes exactly the expected event by the side rule "side is
the liquidation ORDER's: Buy => a short was liquidated"; an order counts once, at its insert,
with its leavesQty then; updates, deletes and the partial after (re)subscribing never count;
the receive time stands in for the time the table does not state; contracts are USD on XBTUSD
and 1/underlyingToPositionMultiplier coins on linear perpetuals; quanto contracts are not
listed; open interest, funding and the index price come from one instrument call; and the fake
speaks what the adapter expects (and the collector's own REST client loads from it)."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any, cast

import pytest

from exporter.collectors.bitmex import (
    INSTRUMENTS_PATH,
    POLL_COLUMNS,
    BitmexVenue,
    funding_interval_s,
)
from exporter.collectors.rest_exchange import RestExchange
from exporter.collectors.venue import ContextFields, FrameKind, RawOpenInterest
from exporter.events import InvalidEventError, Reason
from exporter.fakeexchange.bitmex import XBTUSD, BitmexProtocol
from exporter.fakeexchange.markets import DEFAULT_MARKETS
from exporter.fakeexchange.protocol import Liquidation as FakeLiquidation
from exporter.fakeexchange.protocol import PingRequest, SubscribeRequest
from exporter.venues import completeness_of
from tests.venues import offline
from tests.venues.bitmex import CASE, FILE, LIVE, RULE
from tests.venues.case import FIXTURES

if TYPE_CHECKING:
    from collections.abc import Mapping

    from exporter.collectors.ccxt_types import CcxtExchange, Market
    from exporter.events import Liquidation
    from exporter.health import Health
    from tests.conftest import FakeExchangeFactory
    from tests.venues.case import Recorded

NOW_S = 1_791_565_600.0
NOW_MS = 1_791_565_600_000
INVERSE, LINEAR = "BTC/USD:BTC", "BTC/USDT:USDT"


def instrument(symbol: str, **changes: object) -> dict[str, Any]:
    """The fields of /api/v1/instrument/active that markets and open interest read."""
    linear = {
        "symbol": symbol,
        "typ": "FFWCSX",
        "state": "Open",
        "underlying": "XBT",
        "quoteCurrency": "USDT",
        "settlCurrency": "USDt",
        "multiplier": 1,
        "underlyingToPositionMultiplier": 1_000_000,
        "underlyingToSettleMultiplier": None,
        "isQuanto": False,
        "isInverse": False,
        "openInterest": 2_000_000,
        "markPrice": 80_000.0,
        "timestamp": "2026-10-09T12:00:00.000Z",
    }
    linear.update(changes)
    return linear


XBTUSD_ROW = instrument(
    "XBTUSD",
    quoteCurrency="USD",
    settlCurrency="XBt",
    multiplier=-100_000_000,
    underlyingToPositionMultiplier=None,
    underlyingToSettleMultiplier=-100_000_000,
    isInverse=True,
    openInterest=400_000_000,
)
INSTRUMENTS = [
    XBTUSD_ROW,
    instrument("XBTUSDT"),
    instrument("ETHUSDT", underlying="ETH", underlyingToPositionMultiplier=100_000),
    # Quanto: a contract is 100 satoshi per USD of the ETH price, no fixed size: not listed.
    instrument("ETHUSD", underlying="ETH", quoteCurrency="USD", settlCurrency="XBt", isQuanto=True),
    instrument("XBTZ26", typ="FFCCSX"),  # a dated future
    instrument("XBT_USDT", typ="IFXXXP"),  # spot
    instrument("USDINR", typ="FFWCSF"),  # an FX perpetual
    instrument("SOLUSDT", underlying="SOL", underlyingToPositionMultiplier=None),  # size unknown
    instrument("DOGEUSDT", underlying="DOGE", state="Unlisted", underlyingToPositionMultiplier=10),
]


class Rest:
    """What rest_markets and read_open_interest use of the RestExchange."""

    def __init__(self, rows: object) -> None:
        self.rows = rows
        self.calls: list[tuple[str, Mapping[str, str] | None]] = []
        self.markets: dict[str, Market] | None = None

    async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> object:
        self.calls.append((path, params))
        return self.rows


async def markets() -> dict[str, Market]:
    return await BitmexVenue().rest_markets(Rest(INSTRUMENTS))  # type: ignore[arg-type]  # stub


async def intake() -> offline.Intake:
    return offline.make_intake(BitmexVenue(), offline.by_id((await markets()).values()), NOW_S)


def invalid(health: Health) -> dict[Reason, int]:
    return offline.invalid_by_reason(health, "bitmex")


def table(action: str, *orders: dict[str, Any]) -> dict[str, Any]:
    return {"table": "liquidation", "action": action, "data": list(orders)}


def order(**changes: object) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "orderID": "dd9cea25-207c-0dab-15b5-b88da776f500",
        "symbol": "XBTUSD",
        "side": "Buy",
        "price": 80_000.0,
        "leavesQty": 40_000,
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not None}


async def run(*frames: object) -> tuple[list[Liquidation], dict[Reason, int]]:
    """Frames through classification and, for data frames, the intake."""
    adapter = BitmexVenue()
    taker, sink, health = await intake()
    for message in frames:
        if adapter.classify_frame(message) is FrameKind.DATA:
            taker.take(message)
    return sink.events, invalid(health)


# --- the recorded frames ---------------------------------------------------------------------


@offline.each_recorded(CASE)
async def test_recorded_frames_become_exact_events(recorded: Recorded) -> None:
    """Rule: the order's side Buy => a short was liquidated; counted at insert only."""
    assert recorded.origin == ("capture" if recorded.file == FILE else "unattributed capture")
    message = json.loads(recorded.text())
    kind = BitmexVenue().classify_frame(message)
    assert (kind is FrameKind.DATA) == (message["action"] == "insert")
    events, rejected = await run(message)
    assert rejected == dict(recorded.rejected)
    if recorded.events:
        assert recorded.rule == RULE
    offline.assert_events(events, recorded.events, exchange="bitmex", rule=RULE, coin="BTC")
    assert all(want.timestamp_ms is None for want in recorded.events)
    assert all(e.timestamp_ms == e.received_ms == NOW_MS for e in events)  # the receive time


def test_every_recorded_line_is_asserted() -> None:
    offline.assert_every_line_recorded(CASE, FILE, LIVE)


async def test_the_recorded_lifecycles_count_each_order_once() -> None:
    """All 24 recorded lines in order: one event per insert, whatever follows it."""
    lines = (FIXTURES / LIVE).read_text(encoding="utf-8").splitlines()
    events, rejected = await run(*(json.loads(line) for line in lines))
    inserts = [json.loads(line) for line in lines if '"action":"insert"' in line]
    assert len(inserts) == 8
    assert len(events) == 7  # the ETHUSD (quanto) insert is rejected
    assert rejected == {Reason.UNKNOWN_SYMBOL: 1}


# --- the rules, one test each ----------------------------------------------------------------


@pytest.mark.parametrize(("order_side", "position"), [("Buy", "short"), ("Sell", "long")])
async def test_the_orders_side_is_the_opposite_of_the_positions(
    order_side: str, position: str
) -> None:
    events, rejected = await run(table("insert", order(side=order_side)))
    assert [e.side for e in events] == [position]
    assert rejected == {}
    assert await run(table("insert", order(side="buy"))) == ([], {Reason.INVALID_SIDE: 1})


async def test_an_order_counts_once_at_insert_with_its_leaves_qty_then() -> None:
    events, rejected = await run(
        table("insert", order(leavesQty=40_000)),
        table("update", order(side=None, price=None, leavesQty=30_000)),
        table("update", order(side=None, price=80_100.0, leavesQty=None)),
        table("delete", order(side=None, price=None, leavesQty=None)),
    )
    assert [(e.symbol, e.price, e.notional_usd) for e in events] == [(INVERSE, 80_000.0, 40_000)]
    assert rejected == {}


async def test_the_partial_after_subscribing_never_counts() -> None:
    """It lists the orders open at that moment, also after a reconnect: counted at their
    insert already, or inserted while we were away (missed, by design)."""
    partial = table("partial", order())
    partial.update({"keys": ["orderID"], "filter": {}})
    assert BitmexVenue().classify_frame(partial) is FrameKind.CONTROL
    assert await run(partial, partial) == ([], {})


async def test_the_receive_time_stands_in() -> None:
    entry = BitmexVenue().parse_entry(order())
    assert entry.timestamp_ms is None
    events, _ = await run(table("insert", order()))
    assert [e.timestamp_ms for e in events] == [NOW_MS]


async def test_contracts_are_usd_on_inverse_and_micro_coins_on_linear() -> None:
    events, rejected = await run(
        table("insert", order(symbol="XBTUSD", price=80_000.0, leavesQty=40_000)),
        table("insert", order(symbol="XBTUSDT", price=80_000.0, leavesQty=500_000)),
        table("insert", order(symbol="ETHUSDT", price=3_000.0, leavesQty=200_000)),
    )
    assert [(e.symbol, e.quantity, e.notional_usd) for e in events] == [
        (INVERSE, 0.5, 40_000.0),
        (LINEAR, 0.5, 40_000.0),
        ("ETH/USDT:USDT", 2.0, 6_000.0),
    ]
    assert rejected == {}


async def test_each_order_of_an_insert_stands_alone() -> None:
    events, rejected = await run(
        table(
            "insert",
            order(leavesQty=0),
            order(price="abc"),
            order(symbol="ETHUSD"),  # quanto: not listed
            order(symbol=None),
            "junk",  # type: ignore[arg-type]  # a malformed order
            order(leavesQty=1_000),
        )
    )
    assert [e.notional_usd for e in events] == [1_000.0]
    assert rejected == {
        Reason.NOT_POSITIVE: 1,
        Reason.WRONG_TYPE: 2,
        Reason.UNKNOWN_SYMBOL: 1,
        Reason.MISSING_FIELD: 1,
    }


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ({"info": "Welcome to the BitMEX Realtime API.", "version": "2.0.0"}, "control"),
        ({"success": True, "subscribe": "liquidation:XBTUSD", "request": {}}, "ack"),
        ({"status": 400, "error": "Unknown or expired symbol.", "request": {}}, "reject"),
        (table("insert"), "data"),
        (table("update"), "control"),
        (table("delete"), "control"),
        (table("partial"), "control"),
        (table("upsert"), "unknown"),
        ({"table": "trade", "action": "insert", "data": []}, "unknown"),
        ({"foo": 1}, "unknown"),
        ("pong", "control"),
        ("ping", "unknown"),
        ([1, 2], "unknown"),
    ],
)
def test_frames_are_classified(message: object, kind: str) -> None:
    assert BitmexVenue().classify_frame(message) is FrameKind(kind)


def test_each_market_is_subscribed_by_its_topic_in_one_request() -> None:
    adapter = BitmexVenue()
    assert adapter.native_subscriptions(["XBTUSD", "XBTUSDT"]) == [
        {"op": "subscribe", "args": ["liquidation:XBTUSD", "liquidation:XBTUSDT"]}
    ]
    assert BitmexVenue.NATIVE.all_markets_channel is False  # the all-symbol topic has quantos
    assert BitmexVenue.NATIVE.url(None) == "wss://ws.bitmex.com/realtime"
    assert BitmexVenue.NATIVE.keepalive == "ping"
    assert (BitmexVenue.ccxt_class, BitmexVenue.CCXT_STREAMS, BitmexVenue.HISTORY) == (
        None,
        False,
        None,
    )
    assert BitmexVenue.REST_ROOT == "https://www.bitmex.com"
    assert adapter.watch_calls(None, None) == []  # type: ignore[arg-type]  # not reached
    assert (adapter.coin_symbol("BTC"), adapter.coin_symbol("ETH")) == (INVERSE, "ETH/USDT:USDT")
    assert (adapter.exchange, completeness_of("bitmex")) == ("bitmex", "complete")


# --- markets and open interest -------------------------------------------------------------


async def test_markets_are_the_linear_and_inverse_perpetuals() -> None:
    found = await markets()
    assert sorted(found) == sorted([INVERSE, LINEAR, "ETH/USDT:USDT", "DOGE/USDT:USDT"])
    inverse, linear = found[INVERSE], found[LINEAR]
    assert (inverse["id"], inverse["inverse"], inverse["contractSize"]) == ("XBTUSD", True, 1.0)
    assert (inverse["base"], inverse["quote"], inverse["settle"]) == ("BTC", "USD", "BTC")
    assert (linear["id"], linear["linear"], linear["contractSize"]) == ("XBTUSDT", True, 1e-6)
    assert (linear["base"], linear["settle"]) == ("BTC", "USDT")
    assert found["ETH/USDT:USDT"]["contractSize"] == 1e-5
    assert found["DOGE/USDT:USDT"]["active"] is False

    class Exchange:
        markets = found

    every = BitmexVenue().every_market(Exchange())  # type: ignore[arg-type]  # markets only
    assert sorted(every) == sorted([INVERSE, LINEAR, "ETH/USDT:USDT"])


async def test_open_interest_and_mark_price_come_from_one_instrument_call() -> None:
    rest = Rest([*INSTRUMENTS, instrument("XBTUSDT", timestamp="yesterday"), 7])
    rest.markets = await markets()
    items = await BitmexVenue().read_open_interest(rest, [INVERSE, LINEAR])  # type: ignore[arg-type]  # stub
    assert rest.calls == [(INSTRUMENTS_PATH, {"columns": json.dumps(list(POLL_COLUMNS))})]
    inverse, linear, stale, junk = items
    assert isinstance(inverse, RawOpenInterest)
    # XBTUSD: 400M contracts are 400M USD, 5000 BTC at 80k.
    assert inverse.read() == (5_000.0, 400_000_000.0, 80_000.0, 1_791_547_200_000)
    assert isinstance(linear, RawOpenInterest)
    assert linear.read() == (2.0, None, 80_000.0, 1_791_547_200_000)  # 2M x 1e-6 BTC
    assert isinstance(stale, RawOpenInterest)
    with pytest.raises(InvalidEventError) as caught:
        stale.read()
    assert caught.value.reason is Reason.BAD_TIMESTAMP
    assert isinstance(junk, InvalidEventError)


def test_the_poll_keeps_within_half_the_unauthenticated_budget() -> None:
    """30 requests a minute without a key; one request per poll, every 4 s at most."""
    assert BitmexVenue().min_poll_interval(300) == 4.0


# --- the fake --------------------------------------------------------------------------------


def test_the_fake_answers_as_the_adapter_expects() -> None:
    fake = BitmexProtocol(DEFAULT_MARKETS)
    adapter = BitmexVenue()
    (welcome,) = fake.greeting("c0ffee")
    assert adapter.classify_frame(json.loads(welcome)) is FrameKind.CONTROL
    (sent,) = adapter.native_subscriptions(["XBTUSD", "XBTUSDT"])
    request = fake.parse(adapter.encode(sent))
    assert isinstance(request, SubscribeRequest)
    assert (request.keys, request.invalid) == (frozenset({INVERSE, LINEAR}), ())
    answers = [json.loads(a) for a in fake.ack(request, "c0ffee")]
    assert [adapter.classify_frame(a) for a in answers] == [FrameKind.ACK, FrameKind.CONTROL] * 2
    assert [a.get("subscribe") for a in answers[::2]] == [
        "liquidation:XBTUSD",
        "liquidation:XBTUSDT",
    ]
    ping = fake.parse("ping")
    assert isinstance(ping, PingRequest)
    assert adapter.classify_frame(fake.pong(ping, "c0ffee")) is FrameKind.CONTROL
    (bad,) = adapter.native_subscriptions(["XBTUSD", "ETHUSD"])
    refused = fake.parse(adapter.encode(bad))
    assert isinstance(refused, SubscribeRequest)
    assert refused.invalid == ("liquidation:ETHUSD",)
    (answer,) = fake.reject(refused, "c0ffee")
    assert adapter.classify_frame(json.loads(answer)) is FrameKind.REJECT
    offline.assert_junk_is_rejected(fake, adapter)


async def test_the_fake_sends_each_order_as_an_insert_then_a_delete() -> None:
    fake = BitmexProtocol(DEFAULT_MARKETS)
    sent = [
        fake.quantize(FakeLiquidation(INVERSE, "long", 80_000.0, 0.123456, NOW_MS)),
        fake.quantize(FakeLiquidation(LINEAR, "short", 80_000.0, 0.1234567, NOW_MS)),
    ]
    # Whole contracts: 9876 USD on XBTUSD, 123457 micro-BTC on XBTUSDT.
    assert [s.coins * s.price for s in sent] == pytest.approx([9_876.0, 0.123457 * 80_000])
    frames = fake.encode(sent)
    assert [(f.symbol, len(f.liquidations)) for f in frames] == [
        (INVERSE, 1),
        (INVERSE, 0),
        (LINEAR, 1),
        (LINEAR, 0),
    ]
    recorded = [json.loads(line) for line in (FIXTURES / FILE).read_text().splitlines()]
    for text, like in zip([f.text for f in frames[:2]], recorded, strict=True):
        mine = json.loads(text)
        assert list(mine) == list(like)
        assert list(mine["data"][0]) == list(like["data"][0])
    assert [fake.decode(f.text) for f in frames] == [
        [FakeLiquidation(INVERSE, "long", 80_000.0, sent[0].coins, 0)],
        [],
        [FakeLiquidation(LINEAR, "short", 80_000.0, sent[1].coins, 0)],
        [],
    ]
    events, rejected = await run(*(json.loads(f.text) for f in frames))
    assert [(e.symbol, e.side) for e in events] == [(s.symbol, s.side) for s in sent]
    assert [e.quantity for e in events] == pytest.approx([s.coins for s in sent], rel=1e-12)
    assert rejected == {}


@pytest.mark.integration
async def test_the_rest_client_loads_markets_and_open_interest_from_the_fake(
    fake_exchange: FakeExchangeFactory,
) -> None:
    fake = await fake_exchange("bitmex")
    fake.set_market_state(INVERSE, open_interest_coins=2_500.0, mark_price=80_000.0)
    fake.set_market_state(LINEAR, open_interest_coins=12.5, mark_price=80_000.0)
    adapter = BitmexVenue()
    rest = RestExchange(adapter, fake.rest_url, 5.0)
    try:
        found = await rest.load_markets()
        items = await adapter.read_open_interest(cast("CcxtExchange", rest), [INVERSE, LINEAR])
    finally:
        await rest.close()
    assert sorted(found) == sorted(fake.symbols)
    assert found[INVERSE]["contractSize"] == 1.0
    assert found[LINEAR]["contractSize"] == 1e-6
    assert XBTUSD in BitmexProtocol.EXTRA_MARKETS
    assert {symbol: read[:3] for symbol, read in offline.readings(items).items()} == {
        INVERSE: (2_500.0, 200_000_000.0, 80_000.0),  # 200M contracts of 1 USD
        LINEAR: (12.5, None, 80_000.0),
    }
    assert fake.rest_requests[INSTRUMENTS_PATH] == 2  # the markets, then one poll


# --- funding and index price -------------------------------------------------------------------

# XBTUSD's funding columns as BitMEX's instrument field definitions describe them: the rate paid
# at fundingTimestamp, the next period's indicative rate, the interval as a time after
# 2000-01-01T00:00Z, and the index (.BXBT) as indicativeSettlePrice.
FUNDING = {
    "fundingRate": 0.0001,
    "indicativeFundingRate": 0.000083,
    "fundingTimestamp": "2026-10-09T16:00:00.000Z",
    "fundingInterval": "2000-01-01T08:00:00.000Z",
    "indicativeSettlePrice": 79_990.37,
}


async def xbtusd(**changes: object) -> RawOpenInterest:
    rest = Rest([{**XBTUSD_ROW, **FUNDING, **changes}])
    rest.markets = await markets()
    (inverse,) = await BitmexVenue().read_open_interest(rest, [INVERSE])  # type: ignore[arg-type]  # stub
    assert isinstance(inverse, RawOpenInterest)
    assert inverse.context is not None
    return inverse


async def test_funding_and_the_index_come_with_the_open_interest() -> None:
    """Five more columns of the one instrument call; no other request."""
    assert set(FUNDING) <= set(POLL_COLUMNS)
    inverse = await xbtusd()
    assert inverse.read() == (5_000.0, 400_000_000.0, 80_000.0, 1_791_547_200_000)
    assert inverse.context is not None
    assert inverse.context() == ContextFields(
        index_price=79_990.37,
        funding_rate=0.0001,
        predicted_funding_rate=0.000083,
        next_funding_ms=1_791_561_600_000,
        funding_interval_s=28_800.0,
    )
    assert {f.name for f in dataclasses.fields(ContextFields)} == BitmexVenue.CONTEXT


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("2000-01-01T08:00:00.000Z", 28_800.0),
        ("2000-01-01T04:00:00.000Z", 14_400.0),
        ("2000-01-01T01:00:00.000Z", 3_600.0),
        ("2000-01-02T00:00:00.000Z", 86_400.0),
    ],
)
def test_the_funding_interval_is_its_time_after_2000(written: str, seconds: float) -> None:
    assert funding_interval_s({"fundingInterval": written}) == seconds


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"indicativeSettlePrice": None}, Reason.MISSING_FIELD),
        ({"indicativeFundingRate": "n/a"}, Reason.WRONG_TYPE),
        ({"fundingTimestamp": "soon"}, Reason.BAD_TIMESTAMP),
        ({"fundingTimestamp": "2026-10-09T12:00:00"}, Reason.BAD_TIMESTAMP),  # no zone
        ({"fundingInterval": ""}, Reason.MISSING_FIELD),
    ],
)
async def test_a_bad_funding_figure_is_rejected_and_the_open_interest_stands(
    changes: dict[str, object], reason: Reason
) -> None:
    inverse = await xbtusd(**changes)
    assert inverse.read() == (5_000.0, 400_000_000.0, 80_000.0, 1_791_547_200_000)
    assert inverse.context is not None
    with pytest.raises(InvalidEventError) as caught:
        inverse.context()
    assert caught.value.reason is reason


@pytest.mark.integration
async def test_the_fake_serves_the_state_as_bitmex_prints_it(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """Rates and the index as JSON numbers, times as ISO strings, the interval after 2000;
    what the adapter reads of them is the state."""
    fake = await fake_exchange("bitmex")
    fake.set_market_state(
        LINEAR,
        open_interest_coins=12.5,
        mark_price=80_000.0,
        index_price=79_990.5,
        funding_rate=0.000125,
        predicted_funding_rate=-0.00005,
        funding_interval_hours=4,
    )
    adapter = BitmexVenue()
    rest = RestExchange(adapter, fake.rest_url, 5.0)
    try:
        await rest.load_markets()
        before_ms = int(time.time() * 1000)
        items = await adapter.read_open_interest(cast("CcxtExchange", rest), [LINEAR])
        after_ms = int(time.time() * 1000)
        rows = await rest.get_json(INSTRUMENTS_PATH, {"columns": json.dumps(list(FUNDING))})
    finally:
        await rest.close()
    row = next(r for r in cast("list[dict[str, Any]]", rows) if r["symbol"] == "XBTUSDT")
    assert set(row) == {*FUNDING, "symbol", "timestamp"}
    assert (row["fundingRate"], row["indicativeFundingRate"]) == (0.000125, -0.00005)
    assert (row["indicativeSettlePrice"], row["fundingInterval"]) == (
        79_990.5,
        "2000-01-01T04:00:00.000Z",
    )
    (linear,) = items
    assert isinstance(linear, RawOpenInterest)
    assert linear.context is not None
    context = linear.context()
    assert (context.index_price, context.funding_rate, context.predicted_funding_rate) == (
        79_990.5,
        0.000125,
        -0.00005,
    )
    assert context.funding_interval_s == 14_400.0
    assert context.next_funding_ms in {
        (now // 14_400_000 + 1) * 14_400_000 for now in (before_ms, after_ms)
    }
