"""Bitfinex: every recorded frame becomes exactly the expected event by the side rule "AMOUNT
> 0 is a LONG position"; only the initial trigger row (IS_MATCH 0) of a position counts, its
market executions never; the price is LIQUIDATION_PRICE, or BASE_PRICE where that is null; rows
are read by position, extra trailing elements ignored; the snapshot after subscribing is never
counted; open interest comes from one status call; and the fake speaks what the adapter expects
(and ccxt loads from it)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import ccxt.pro
import pytest

from exporter.collectors.bitfinex import STATUS_REQUESTS_PER_MINUTE, BitfinexVenue
from exporter.collectors.venue import ContextFields, FrameKind, RawOpenInterest
from exporter.events import InvalidEventError, Reason
from exporter.fakeexchange.bitfinex import (
    CHAN_ID,
    CURRENCIES_CONFIG,
    PAIRS_CONFIG,
    SNAPSHOT_ROW,
    BitfinexProtocol,
)
from exporter.fakeexchange.markets import DEFAULT_MARKETS
from exporter.fakeexchange.protocol import Liquidation as FakeLiquidation
from exporter.fakeexchange.protocol import PingRequest, SubscribeRequest
from exporter.venues import completeness_of
from tests.venues import offline
from tests.venues.bitfinex import CASE, DOCS, FILE, RULE
from tests.venues.case import FIXTURES

if TYPE_CHECKING:
    from exporter.collectors.ccxt_types import Market
    from exporter.events import Liquidation
    from exporter.health import Health
    from tests.conftest import FakeExchangeFactory
    from tests.venues.case import Recorded

NOW_S = 1_791_565_600.0
T0 = 1_791_565_600_000
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


def _market(market_id: str, base: str, settle: str = "USDT") -> Market:
    """As ccxt's bitfinex parses conf pub:info:pair:futures: a contract is one coin."""
    return offline.ccxt_market(f"{base}/{settle}:{settle}", market_id)


MARKETS = offline.by_id(
    (
        _market("tBTCF0:USTF0", "BTC"),
        _market("tETHF0:USTF0", "ETH"),
        _market("tBTCF0:EUTF0", "BTC", "EURT"),
    )
)


def intake(adapter: BitfinexVenue | None = None) -> offline.Intake:
    """A fresh adapter unless one is given: it keeps which snapshot is due."""
    return offline.make_intake(adapter or BitfinexVenue(), MARKETS, NOW_S)


def invalid(health: Health) -> dict[Reason, int]:
    return offline.invalid_by_reason(health, "bitfinex")


def row(**changes: object) -> list[Any]:
    """A trigger row of the stream: ["pos", POS_ID, MTS, _, SYMBOL, AMOUNT, BASE_PRICE, _,
    IS_MATCH, IS_MARKET_SOLD, _, LIQUIDATION_PRICE]."""
    fields: dict[str, Any] = {
        "POS_ID": 171085137,
        "MTS": T0,
        "SYMBOL": "tBTCF0:USTF0",
        "AMOUNT": 0.25,
        "BASE_PRICE": 81_000.0,
        "IS_MATCH": 0,
        "LIQUIDATION_PRICE": 80_000.0,
    }
    fields.update(changes)
    f = fields
    return [
        *("pos", f["POS_ID"], f["MTS"], None, f["SYMBOL"], f["AMOUNT"], f["BASE_PRICE"]),
        *(None, f["IS_MATCH"], 1, None, f["LIQUIDATION_PRICE"]),
    ]


def frame(*rows: object) -> list[Any]:
    return [CHAN_ID, list(rows)]


def taken(*rows: object) -> tuple[list[Liquidation], dict[Reason, int]]:
    taker, sink, health = intake()
    taker.take(frame(*rows))
    return sink.events, invalid(health)


# --- the recorded frames ---------------------------------------------------------------------


@offline.each_recorded(CASE)
def test_recorded_frames_become_exact_events(recorded: Recorded) -> None:
    """Rule: AMOUNT > 0 is a long position; one event per trigger row (IS_MATCH 0)."""
    assert recorded.origin == ("documentation" if recorded.file == DOCS else "capture")
    message = json.loads(recorded.text())
    adapter = BitfinexVenue()
    kind = adapter.classify_frame(message)
    taker, sink, health = intake(adapter)
    if kind is FrameKind.DATA:
        taker.take(message)
    else:
        assert kind is FrameKind.CONTROL  # the heartbeat
        assert message[1] == "hb"
    assert invalid(health) == dict(recorded.rejected)
    if recorded.events:
        assert recorded.rule == RULE
    offline.assert_events(sink.events, recorded.events, exchange="bitfinex", rule=RULE)


def test_every_recorded_line_is_asserted() -> None:
    offline.assert_every_line_recorded(CASE, FILE, DOCS)


def test_a_position_counts_once_whatever_its_executions() -> None:
    """Recorded lines 3 and 4 are the execution and the trigger of one position (in that
    order): one event, the trigger's full AMOUNT."""
    lines = (FIXTURES / FILE).read_text(encoding="utf-8").splitlines()
    taker, sink, health = intake()
    for line in (lines[2], lines[3]):
        taker.take(json.loads(line))
    assert [(e.symbol, e.side, e.quantity) for e in sink.events] == [(ETH, "short", 8.6007)]
    assert invalid(health) == {}


# --- the rules, one test each ----------------------------------------------------------------


@pytest.mark.parametrize(("amount", "side"), [(0.25, "long"), (-0.25, "short")])
def test_the_sign_of_amount_is_the_positions_side(amount: float, side: str) -> None:
    events, rejected = taken(row(AMOUNT=amount))
    assert [(e.side, e.quantity) for e in events] == [(side, 0.25)]
    assert rejected == {}


def test_a_zero_amount_names_no_side() -> None:
    assert taken(row(AMOUNT=0)) == ([], {Reason.INVALID_SIDE: 1})


def test_market_executions_are_not_entries_and_not_invalid() -> None:
    assert taken(row(IS_MATCH=1), row(IS_MATCH=1, MTS=T0 + 1)) == ([], {})


@pytest.mark.parametrize(
    ("is_match", "reason"),
    [
        (True, Reason.WRONG_TYPE),
        (2, Reason.WRONG_TYPE),
        ("0", Reason.WRONG_TYPE),
        (None, Reason.MISSING_FIELD),
    ],
)
def test_is_match_is_exactly_zero_or_one(is_match: object, reason: Reason) -> None:
    assert taken(row(IS_MATCH=is_match)) == ([], {reason: 1})


def test_the_price_is_the_liquidation_price_else_the_base_price() -> None:
    events, rejected = taken(
        row(LIQUIDATION_PRICE=80_000.0, BASE_PRICE=81_000.0),
        row(LIQUIDATION_PRICE=None, BASE_PRICE=81_000.0, MTS=T0 + 1),
    )
    assert [e.price for e in events] == [80_000.0, 81_000.0]
    assert rejected == {}
    assert taken(row(LIQUIDATION_PRICE="80000")) == ([], {Reason.WRONG_TYPE: 1})


def test_rows_are_read_by_position_whatever_follows_or_is_missing_at_the_end() -> None:
    longer = [*row(), "liquidations", "global", 42]
    cut_before_price = row(BASE_PRICE=79_000.0)[:11]  # no LIQUIDATION_PRICE at all
    events, rejected = taken(longer, cut_before_price)
    assert [e.price for e in events] == [80_000.0, 79_000.0]
    assert rejected == {}
    assert taken(row()[:8]) == ([], {Reason.MISSING_FIELD: 1})  # no IS_MATCH


def test_a_fractional_mts_is_truncated() -> None:
    """The documentation's example states TIME_MS 1574697680828.2002."""
    events, _ = taken(row(MTS=T0 + 0.2002))
    assert [e.timestamp_ms for e in events] == [T0]


def test_each_row_stands_alone() -> None:
    events, rejected = taken(
        "junk",
        ["trade", 1],
        row(SYMBOL="tFOOF0:USTF0"),
        row(MTS="1791565600000"),  # numbers only: Bitfinex never sends strings
        row(MTS=T0 + 5),
    )
    assert [e.timestamp_ms for e in events] == [T0 + 5]
    assert rejected == {Reason.WRONG_TYPE: 3, Reason.UNKNOWN_SYMBOL: 1}


def test_the_snapshot_after_subscribing_is_never_counted() -> None:
    """The first data frame after `subscribed` is the latest liquidation, however old."""
    adapter = BitfinexVenue()
    subscribed = {
        "event": "subscribed",
        "channel": "status",
        "chanId": CHAN_ID,
        "key": "liq:global",
    }
    snapshot = frame(SNAPSHOT_ROW)
    live = frame(row())
    assert adapter.classify_frame(live) is FrameKind.DATA  # not subscribed yet: nothing due
    assert adapter.classify_frame(subscribed) is FrameKind.ACK
    assert adapter.classify_frame([CHAN_ID, "hb"]) is FrameKind.CONTROL  # does not use it up
    assert adapter.classify_frame(snapshot) is FrameKind.CONTROL
    assert adapter.classify_frame(live) is FrameKind.DATA
    assert adapter.classify_frame(subscribed) is FrameKind.ACK  # a reconnect: due again
    assert adapter.classify_frame(snapshot) is FrameKind.CONTROL
    assert adapter.classify_frame(live) is FrameKind.DATA


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ({"event": "info", "version": 2, "serverId": "x", "platform": {"status": 1}}, "control"),
        ({"event": "info", "code": 20051, "msg": "Stopping. Please try to reconnect"}, "control"),
        ({"event": "pong", "ts": T0, "cid": 1}, "control"),
        ({"event": "conf", "status": "OK", "flags": 65536}, "control"),
        ({"event": "error", "msg": "subscribe: dup", "code": 10301}, "reject"),
        ({"event": "auth"}, "unknown"),
        ({"foo": 1}, "unknown"),
        ([CHAN_ID, "hb", 2043, T0], "control"),
        ([CHAN_ID, 7], "unknown"),
        (["x", []], "unknown"),
        ([CHAN_ID], "unknown"),
        ("pong", "unknown"),
        (42, "unknown"),
    ],
)
def test_frames_are_classified(message: object, kind: str) -> None:
    assert BitfinexVenue().classify_frame(message) is FrameKind(kind)


def test_one_subscription_covers_every_pair() -> None:
    adapter = BitfinexVenue()
    assert adapter.native_subscriptions(None) == adapter.native_subscriptions(["tBTCF0:USTF0"])
    (request,) = adapter.native_subscriptions(None)
    assert request == {"event": "subscribe", "channel": "status", "key": "liq:global"}
    assert BitfinexVenue.NATIVE.all_markets_channel is True
    assert BitfinexVenue.NATIVE.url(None) == "wss://api-pub.bitfinex.com/ws/2"
    assert BitfinexVenue.NATIVE.keepalive == '{"event":"ping","cid":1}'
    assert (BitfinexVenue.CCXT_STREAMS, BitfinexVenue.HISTORY) == (False, None)
    assert adapter.watch_calls(None, None) == []  # type: ignore[arg-type]  # not reached
    assert adapter.coin_symbol("BTC") == BTC
    assert (adapter.exchange, completeness_of("bitfinex")) == ("bitfinex", "complete")


def test_all_symbols_means_the_usdt_perpetuals() -> None:
    class Exchange:
        markets = {m["symbol"]: m for m in MARKETS.values() if m["settle"] == "USDT"} | {
            "BTC/EURT:EURT": MARKETS["tBTCF0:EUTF0"],
            "BTC/USD": {"symbol": "BTC/USD", "spot": True, "swap": False},
        }

    assert BitfinexVenue().every_market(Exchange()) == [BTC, ETH]  # type: ignore[arg-type]  # markets only


# --- open interest -----------------------------------------------------------------------------


class StatusExchange:
    """What read_open_interest uses of ccxt: the markets and the implicit status call."""

    def __init__(self, rows: object) -> None:
        self.markets = {m["symbol"]: m for m in MARKETS.values()}
        self.rows = rows
        self.calls: list[dict[str, str]] = []

    async def publicGetStatusDeriv(self, params: dict[str, str]) -> object:  # noqa: N802 - ccxt's name
        self.calls.append(params)
        return self.rows


def status_row(key: str, mark: object, oi: object, mts: object = T0) -> list[Any]:
    values: list[Any] = [None] * 24
    values[0], values[1], values[15], values[18] = key, mts, mark, oi
    return values


async def test_open_interest_and_mark_price_come_from_one_status_call() -> None:
    exchange = StatusExchange(
        [
            status_row("tBTCF0:USTF0", 80_000.0, 1_500.5),
            status_row("tETHF0:USTF0", 3_000.0, "x"),
            status_row("tXRPF0:USTF0", 1.5, 10.0),  # not loaded: skipped
            "junk",
        ]
    )
    items = await BitfinexVenue().read_open_interest(exchange, None)  # type: ignore[arg-type]  # stub
    assert exchange.calls == [{"keys": "ALL"}]
    btc, eth, junk = items
    assert isinstance(btc, RawOpenInterest)
    assert btc.market["symbol"] == BTC
    assert btc.read() == (1_500.5, None, 80_000.0, T0)
    assert isinstance(eth, RawOpenInterest)
    with pytest.raises(InvalidEventError) as caught:
        eth.read()
    assert caught.value.reason is Reason.WRONG_TYPE
    assert isinstance(junk, InvalidEventError)
    only_eth = await BitfinexVenue().read_open_interest(exchange, [ETH])  # type: ignore[arg-type]  # stub
    assert [i.market["symbol"] for i in only_eth if isinstance(i, RawOpenInterest)] == [ETH]


def test_the_poll_keeps_within_half_the_status_budget() -> None:
    assert STATUS_REQUESTS_PER_MINUTE == 45  # half of 90 a minute
    assert BitfinexVenue().min_poll_interval(500) == pytest.approx(60 / 45)


# --- the fake --------------------------------------------------------------------------------


def test_the_fake_answers_as_the_adapter_expects() -> None:
    fake = BitfinexProtocol(DEFAULT_MARKETS)
    adapter = BitfinexVenue()
    (greeting,) = fake.greeting("c0ffee")
    assert adapter.classify_frame(json.loads(greeting)) is FrameKind.CONTROL
    (sent,) = adapter.native_subscriptions(None)
    request = fake.parse(adapter.encode(sent))
    assert isinstance(request, SubscribeRequest)
    assert (request.keys, request.invalid) == (frozenset({"*"}), ())
    ack, snapshot = fake.ack(request, "c0ffee")
    assert adapter.classify_frame(json.loads(ack)) is FrameKind.ACK
    assert adapter.classify_frame(json.loads(snapshot)) is FrameKind.CONTROL
    ping = fake.parse(BitfinexVenue.NATIVE.keepalive or "")
    assert isinstance(ping, PingRequest)
    pong = json.loads(fake.pong(ping, "c0ffee"))
    assert (pong["event"], pong["cid"]) == ("pong", 1)
    assert adapter.classify_frame(pong) is FrameKind.CONTROL
    other = fake.parse('{"event":"subscribe","channel":"trades","symbol":"tBTCUSD"}')
    assert isinstance(other, SubscribeRequest)
    assert other.invalid
    (refused,) = fake.reject(other, "c0ffee")
    assert json.loads(refused)["code"] == 10302
    assert adapter.classify_frame(json.loads(refused)) is FrameKind.REJECT
    offline.assert_junk_is_rejected(fake, adapter)


def test_the_fake_sends_each_liquidation_as_a_trigger_and_its_execution() -> None:
    fake = BitfinexProtocol(DEFAULT_MARKETS)
    sent = [
        FakeLiquidation(BTC, "long", 80_000.5, 0.25, T0),
        FakeLiquidation(BTC, "short", 80_001.0, 1.5, T0 + 1),
        FakeLiquidation(ETH, "long", 3_000.0, 2.0, T0 + 2),
    ]
    frames = fake.encode(sent)
    assert [(f.symbol, len(f.liquidations)) for f in frames] == [(BTC, 2), (ETH, 1)]
    first = json.loads(frames[0].text)
    recorded = json.loads((FIXTURES / FILE).read_text().splitlines()[3])
    assert first[0] == CHAN_ID
    assert [len(r) for r in first[1]] == [len(recorded[1][0])] * 4
    assert [r[8] for r in first[1]] == [0, 1, 0, 1]  # trigger, execution, trigger, execution
    assert [fake.decode(f.text) for f in frames] == [sent[:2], sent[2:]]
    taker, sink, health = intake()
    for f in frames:
        taker.take(json.loads(f.text))
    assert [(e.symbol, e.side, e.price, e.quantity, e.timestamp_ms) for e in sink.events] == [
        (s.symbol, s.side, s.price, s.coins, s.ts_ms) for s in sent
    ]
    assert invalid(health) == {}


@pytest.mark.integration
async def test_ccxt_loads_the_perpetuals_from_the_fake_in_two_requests(
    fake_exchange: FakeExchangeFactory,
) -> None:
    fake = await fake_exchange("bitfinex")
    exchange = getattr(ccxt.pro, "bitfinex")(  # noqa: B009 - ccxt's classes are dynamic
        {**fake.ccxt_config(), "options": BitfinexVenue.ccxt_options(), "timeout_on_exit": 0}
    )
    try:
        markets = await exchange.load_markets()
        rows = await exchange.publicGetStatusDeriv({"keys": "ALL"})
    finally:
        await exchange.close()
    assert fake.rest_requests == Counter(
        {f"/v2/conf/{CURRENCIES_CONFIG}": 1, f"/v2/conf/{PAIRS_CONFIG}": 1, "/v2/status/deriv": 1}
    )
    assert set(markets) == set(fake.symbols)
    btc = markets[BTC]
    assert (btc["id"], btc["swap"], btc["linear"], btc["contractSize"]) == (
        "tBTCF0:USTF0",
        True,
        True,
        1,
    )
    assert BitfinexVenue().every_market(exchange) == fake.symbols
    assert [r[0] for r in rows] == [f"t{s.split('/')[0]}F0:USTF0" for s in fake.symbols]


# --- funding and index price -------------------------------------------------------------------


def funded_row(**changes: object) -> list[Any]:
    """A status row of BTC with its spot price and funding at the documented positions."""
    values = status_row("tBTCF0:USTF0", 80_000.0, 1_500.5)
    positions = {"SPOT": 4, "NEXT_EVT": 8, "ACCRUED": 9, "STEP": 10, "CURRENT": 12}
    fields = {
        "SPOT": 79_984.5,
        "NEXT_EVT": 1_791_568_800_000,  # 2026-10-09T16:00:00Z + 8 h
        "ACCRUED": 0.00000527,
        "STEP": 82,
        "CURRENT": 0.00014548,
    }
    for name, value in (fields | changes).items():
        values[positions[name]] = value
    return values


async def test_the_status_row_gives_index_funding_and_the_next_funding_event() -> None:
    """SPOT_PRICE is the index, CURRENT_FUNDING the rate paid at NEXT_FUNDING_EVT_MTS,
    NEXT_FUNDING_ACCRUED the prediction, and the interval Bitfinex's fixed 8 h."""
    exchange = StatusExchange([funded_row()])
    (btc,) = await BitfinexVenue().read_open_interest(exchange, [BTC])  # type: ignore[arg-type]  # stub
    assert isinstance(btc, RawOpenInterest)
    assert btc.context is not None
    assert btc.context() == ContextFields(
        index_price=79_984.5,
        funding_rate=0.00014548,
        predicted_funding_rate=0.00000527,
        next_funding_ms=1_791_568_800_000,
        funding_interval_s=28_800.0,
    )
    assert {f.name for f in dataclasses.fields(ContextFields)} == BitfinexVenue.CONTEXT


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"CURRENT": None}, Reason.MISSING_FIELD),
        ({"SPOT": "79984.5"}, Reason.WRONG_TYPE),  # Bitfinex sends numbers, never strings
        ({"NEXT_EVT": float("nan")}, Reason.BAD_TIMESTAMP),
    ],
)
async def test_a_bad_funding_figure_is_rejected_and_the_open_interest_stands(
    changes: dict[str, object], reason: Reason
) -> None:
    exchange = StatusExchange([funded_row(**changes)])
    (btc,) = await BitfinexVenue().read_open_interest(exchange, [BTC])  # type: ignore[arg-type]  # stub
    assert isinstance(btc, RawOpenInterest)
    assert btc.read() == (1_500.5, None, 80_000.0, T0)
    assert btc.context is not None
    with pytest.raises(InvalidEventError) as caught:
        btc.context()
    assert caught.value.reason is reason


@pytest.mark.integration
async def test_the_fakes_status_row_carries_the_state_where_the_adapter_reads_it(
    fake_exchange: FakeExchangeFactory,
) -> None:
    fake = await fake_exchange("bitfinex")
    fake.set_market_state(
        BTC,
        open_interest_coins=1_500.5,
        mark_price=80_000.0,
        index_price=79_984.5,
        funding_rate=0.000125,
        predicted_funding_rate=-0.00005,
    )
    exchange = getattr(ccxt.pro, "bitfinex")(  # noqa: B009 - ccxt's classes are dynamic
        {**fake.ccxt_config(), "options": BitfinexVenue.ccxt_options(), "timeout_on_exit": 0}
    )
    try:
        await exchange.load_markets()
        (btc,) = await BitfinexVenue().read_open_interest(exchange, [BTC])
    finally:
        await exchange.close()
    assert isinstance(btc, RawOpenInterest)
    assert btc.context is not None
    context = btc.context()
    assert (context.index_price, context.funding_rate, context.predicted_funding_rate) == (
        79_984.5,
        0.000125,
        -0.00005,
    )
    assert context.next_funding_ms is not None
    assert context.next_funding_ms % 28_800_000 == 0  # 00:00, 08:00 and 16:00 UTC
    assert context.funding_interval_s == 28_800.0
