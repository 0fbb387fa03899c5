"""dYdX v4: the recorded frames become exactly the expected events by the side rule "side is
the liquidation (taker) order's side: SELL => a long" and the unit "size is the base coin";
only LIQUIDATED trades are entries (DELEVERAGED and ordinary trades are none), the past trades
of a subscription's acknowledgement are never counted, ``symbols: all`` stays within the
indexer's 32 subscriptions a connection, and the fake speaks what the adapter expects."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from exporter.collectors.collector import Collector
from exporter.collectors.dydx import DydxVenue
from exporter.collectors.fields import iso_ms
from exporter.collectors.venue import ContextFields, FrameKind, RawOpenInterest
from exporter.config import ExchangeConfig
from exporter.events import InvalidEventError, Reason
from exporter.fakeexchange.dydx import DydxProtocol
from exporter.fakeexchange.markets import DEFAULT_MARKETS
from exporter.fakeexchange.protocol import Liquidation as FakeLiquidation
from exporter.fakeexchange.protocol import PingRequest, SubscribeRequest
from exporter.venues import completeness_of
from tests.collector_harness import RecordingCore, eventually, make_collector, running
from tests.venues import offline
from tests.venues.dydx import CASE, RULE

if TYPE_CHECKING:
    from exporter.health import Health
    from tests.conftest import FakeExchangeFactory
    from tests.venues.case import Recorded

ADAPTER = DydxVenue()
MARKETS = offline.by_id(
    offline.ccxt_market(f"{base}/USDC:USDC", f"{base}-USD") for base in ("BTC", "ETH")
)
NOW_S = 1_791_565_600.0
T0 = 1_791_565_600_000
T0_ISO = "2026-10-09T17:06:40.000Z"


def intake() -> offline.Intake:
    return offline.make_intake(ADAPTER, MARKETS, NOW_S)


def invalid(health: Health) -> dict[Reason, int]:
    return offline.invalid_by_reason(health, "dydx")


def trade(**changes: object) -> dict[str, object]:
    good = {
        "id": "064e89330000000200000002",
        "side": "SELL",
        "size": "0.25",
        "price": "80000",
        "type": "LIQUIDATED",
        "createdAt": T0_ISO,
        "createdAtHeight": "105810227",
    }
    return {**good, **changes}


def push(*trades: object, market: object = "BTC-USD", kind: str = "channel_data") -> Any:
    return {
        "type": kind,
        "connection_id": "x",
        "message_id": 7,
        "id": market,
        "channel": "v4_trades",
        "version": "2.4.0",
        "contents": {"trades": list(trades)},
    }


@offline.each_recorded(CASE)
def test_recorded_frames_become_exact_events(recorded: Recorded) -> None:
    """dydx_v4.jsonl (via tardis-node) holds a LIMIT trade, left out, and a LIQUIDATED SELL: a
    long; the unattributed 2026 capture one LIQUIDATED SELL."""
    assert recorded.rule == RULE
    offline.assert_recorded_frame(ADAPTER, intake(), recorded, exchange="dydx", coin="BTC")


@pytest.mark.parametrize(("side", "position"), [("SELL", "long"), ("BUY", "short")])
def test_side_is_the_liquidation_orders_side(side: str, position: str) -> None:
    raw = ADAPTER.parse_entry(trade(side=side))
    assert (raw.side, raw.price, raw.amount, raw.timestamp_ms) == (position, 80_000.0, 0.25, T0)


def test_only_liquidated_trades_are_entries() -> None:
    """LIMIT, MARKET, DELEVERAGED (bankruptcy or final settlement, indistinguishable here),
    TWAP_SUBORDER and untyped trades are left out without a rejection."""
    taker, sink, health = intake()
    taker.take(
        push(
            trade(type="LIMIT"),
            trade(type="DELEVERAGED"),
            trade(type="TWAP_SUBORDER"),
            {k: v for k, v in trade().items() if k != "type"},
            trade(createdAt="2026-10-09T17:06:40.001Z"),
            "not a trade",
            trade(side="LONG", createdAt="2026-10-09T17:06:40.002Z"),
        )
    )
    assert [e.timestamp_ms for e in sink.events] == [T0 + 1]
    assert invalid(health) == {Reason.WRONG_TYPE: 1, Reason.INVALID_SIDE: 1}


def test_a_frame_of_an_unknown_or_missing_market() -> None:
    taker, sink, health = intake()
    taker.take(push(trade(), market="FOO-USD"))
    taker.take(push(trade(), market=None))
    taker.take({**push(), "contents": {"trades": {}}})
    assert sink.events == []
    assert invalid(health) == {
        Reason.UNKNOWN_SYMBOL: 1,
        Reason.MISSING_FIELD: 1,
        Reason.WRONG_TYPE: 1,
    }


def test_a_batch_frame_holds_several_contents() -> None:
    taker, sink, _ = intake()
    batch = push(kind="channel_batch_data")
    batch["contents"] = [
        {"trades": [trade()]},
        {"trades": [trade(side="BUY", createdAt="2026-10-09T17:06:40.005Z")]},
    ]
    assert ADAPTER.classify_frame(batch) is FrameKind.DATA
    taker.take(batch)
    assert [(e.side, e.timestamp_ms) for e in sink.events] == [("long", T0), ("short", T0 + 5)]


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2024-08-04T07:34:50.628Z", 1_722_756_890_628),  # a float product would give ...627
        ("2024-08-22T23:59:59.851Z", 1_724_371_199_851),
        ("2026-09-17T13:39:47.542+00:00", 1_789_652_387_542),
        ("2026-09-17T15:39:47.542+02:00", 1_789_652_387_542),
    ],
)
def test_iso_times_are_exact_milliseconds(text: str, ms: int) -> None:
    assert iso_ms({"t": text}, "t") == ms


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2026-09-17T13:39:47.542", Reason.BAD_TIMESTAMP),  # no zone
        ("yesterday", Reason.BAD_TIMESTAMP),
        ("", Reason.MISSING_FIELD),
        (1_789_652_387_542, Reason.WRONG_TYPE),
    ],
)
def test_a_bad_time_is_rejected(value: object, reason: Reason) -> None:
    with pytest.raises(InvalidEventError) as caught:
        ADAPTER.parse_entry(trade(createdAt=value))
    assert caught.value.reason is reason


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        ({"type": "connected", "connection_id": "x", "message_id": 0}, FrameKind.CONTROL),
        # The acknowledgement carries past trades, a liquidation among them: still the ack.
        ({**push(trade()), "type": "subscribed"}, FrameKind.ACK),
        ({"type": "error", "message": "Invalid channel: v4_foo"}, FrameKind.REJECT),
        ({"type": "unsubscribed", "channel": "v4_trades", "id": "BTC-USD"}, FrameKind.CONTROL),
        ({"type": "pong", "connection_id": "x", "message_id": 3}, FrameKind.CONTROL),
        ({**push(), "channel": "v4_orderbook"}, FrameKind.UNKNOWN),
        ({"type": "ping"}, FrameKind.UNKNOWN),
        ([], FrameKind.UNKNOWN),
    ],
)
def test_frames_are_classified(frame: object, kind: FrameKind) -> None:
    assert ADAPTER.classify_frame(frame) is kind


def test_one_subscription_per_market() -> None:
    assert ADAPTER.native_subscriptions(["BTC-USD", "ETH-USD"]) == [
        {"type": "subscribe", "channel": "v4_trades", "id": "BTC-USD"},
        {"type": "subscribe", "channel": "v4_trades", "id": "ETH-USD"},
    ]
    assert DydxVenue.NATIVE.keepalive is None  # WebSocket pings, as the indexer sends
    assert DydxVenue.CCXT_STREAMS is False
    assert DydxVenue.HISTORY is None
    assert completeness_of("dydx") == "complete"
    assert DydxVenue.coin_symbol("BTC") == "BTC/USDC:USDC"


def test_symbols_all_is_the_32_largest_markets() -> None:
    """One connection may hold 32 v4_trades subscriptions: the largest open interest (USD)
    first; inactive markets and unreadable listings last or out."""

    def market(oi: object, price: object = "1", *, active: bool = True) -> dict[str, object]:
        info = {"openInterest": oi, "oraclePrice": price}
        return {"swap": True, "linear": True, "active": active, "info": info}

    class Markets:
        markets: ClassVar[dict[str, dict[str, object]]] = {
            **{f"C{i}/USDC:USDC": market(str(i)) for i in range(40)},
            "BIG/USDC:USDC": market("2", "1000"),
            "OFF/USDC:USDC": market("1000", "1000", active=False),
            "BAD/USDC:USDC": market(None),
        }

    chosen = ADAPTER.every_market(Markets())  # type: ignore[arg-type]  # markets only
    assert len(chosen) == DydxVenue.MAX_MARKETS == 32
    assert chosen[:3] == ["BIG/USDC:USDC", "C39/USDC:USDC", "C38/USDC:USDC"]
    assert "OFF/USDC:USDC" not in chosen
    assert "BAD/USDC:USDC" not in chosen


def test_the_fake_answers_as_the_adapter_expects() -> None:
    fake = DydxProtocol(DEFAULT_MARKETS)
    (greeting,) = fake.greeting("c0ffee")
    assert json.loads(greeting) == {"type": "connected", "connection_id": "c0ffee", "message_id": 0}
    assert ADAPTER.classify_frame(json.loads(greeting)) is FrameKind.CONTROL
    request = fake.parse(ADAPTER.encode(ADAPTER.native_subscriptions(["BTC-USD"])[0]))
    assert isinstance(request, SubscribeRequest)
    assert (request.keys, request.invalid) == (frozenset({"BTC/USDC:USDC"}), ())
    (ack,) = fake.ack(request, "c0ffee")
    acked = json.loads(ack)
    assert ADAPTER.classify_frame(acked) is FrameKind.ACK
    assert [t["type"] for t in acked["contents"]["trades"]] == ["LIMIT", "LIQUIDATED"]
    unknown = fake.parse('{"type":"subscribe","channel":"v4_trades","id":"FOO-USD"}')
    assert isinstance(unknown, SubscribeRequest)
    (refusal,) = fake.reject(unknown, "c0ffee")
    assert (
        json.loads(refusal)["message"] == "Invalid subscription id for channel: (v4_trades-FOO-USD)"
    )
    assert ADAPTER.classify_frame(json.loads(refusal)) is FrameKind.REJECT
    ping = fake.parse('{"type":"ping","id":4}')
    assert isinstance(ping, PingRequest)
    assert ADAPTER.classify_frame(json.loads(fake.pong(ping, "c0ffee"))) is FrameKind.CONTROL
    offline.assert_junk_is_rejected(fake, ADAPTER, "{not json")


def test_the_fake_pushes_in_the_recorded_shape() -> None:
    fake = DydxProtocol(DEFAULT_MARKETS)
    sent = [
        fake.quantize(FakeLiquidation("BTC/USDC:USDC", "long", 80_000.04, 0.2504, T0)),
        fake.quantize(FakeLiquidation("BTC/USDC:USDC", "short", 80_001.0, 0.1, T0 + 1)),
        fake.quantize(FakeLiquidation("ETH/USDC:USDC", "long", 2_900.0, 1.5, T0 + 2)),
    ]
    assert (sent[0].price, sent[0].coins) == (80_000.0, 0.25)  # tick 0.1, step 0.001
    frames = fake.encode(sent)
    assert [f.symbol for f in frames] == ["BTC/USDC:USDC", "ETH/USDC:USDC"]
    recorded = json.loads(CASE.recorded[1].text())
    first = json.loads(frames[0].text)
    assert list(first) == list(recorded)
    assert list(first["contents"]["trades"][0]) == list(recorded["contents"]["trades"][0])
    newest = first["contents"]["trades"][0]  # the indexer lists the newest trade first
    assert (newest["side"], newest["size"], newest["price"]) == ("BUY", "0.1", "80001")
    assert newest["createdAt"] == "2026-10-09T17:06:40.001Z"
    for frame in frames:
        decoded = fake.decode(frame.text)
        assert sorted((d.symbol, d.side, d.price, d.coins, d.ts_ms) for d in decoded) == sorted(
            (s.symbol, s.side, s.price, s.coins, s.ts_ms) for s in frame.liquidations
        )
        read = offline.read_entries(ADAPTER, json.loads(frame.text))
        assert sorted((r.side, r.price, r.amount, r.timestamp_ms) for r in read) == sorted(
            (s.side, s.price, s.coins, s.ts_ms) for s in frame.liquidations
        )


async def test_ccxt_loads_markets_and_one_call_reads_every_open_interest(
    fake_exchange: FakeExchangeFactory,
) -> None:
    fake = await fake_exchange("dydx")
    fake.set_market_state("ETH/USDC:USDC", mark_price=2_950.5, open_interest_coins=12_345.678)
    exchange = make_collector(fake, RecordingCore(), ("BTC", "ETH")).make_exchange()
    try:
        markets = await exchange.load_markets()
        assert dict(fake.rest_requests) == {"/v4/perpetualMarkets": 1}
        assert list(markets) == fake.symbols
        assert markets["ETH/USDC:USDC"]["id"] == "ETH-USD"
        items = await ADAPTER.read_open_interest(exchange, ["BTC/USDC:USDC", "ETH/USDC:USDC"])
        assert fake.rest_requests["/v4/perpetualMarkets"] == 2
        read = offline.readings(items)
        assert read["ETH/USDC:USDC"] == (12_345.678, None, 2_950.5, None)
        assert set(read) == {"BTC/USDC:USDC", "ETH/USDC:USDC"}
    finally:
        await exchange.close()


async def test_the_acknowledgements_past_trades_are_never_counted(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """The fake's `subscribed` carries a past LIQUIDATED trade, as the real one may: nothing is
    recorded from it, and the greeting is no malformed frame; the next liquidation counts."""
    fake = await fake_exchange("dydx")
    core = RecordingCore()
    async with running(make_collector(fake, core, ("BTC",), transport="native")):
        await fake.wait_subscribed(["BTC/USDC:USDC"])
        await eventually(lambda: core.health.is_up("dydx"), "up")
        fake.publish_liquidation("BTC/USDC:USDC", "long", 80_000.0, 0.5, int(time.time() * 1000))
        await eventually(lambda: len(core.liquidations) >= 1, "the live liquidation")
    assert [(e.symbol, e.side, e.quantity) for e in core.liquidations] == [
        ("BTC/USDC:USDC", "long", 0.5)
    ]
    assert core.health.snapshot().invalid == {}


def test_more_symbols_than_one_connection_takes_are_cut_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The indexer refuses the 33rd ``v4_trades`` subscription of a connection: an explicit
    list longer than that watches its first 32 and says so, instead of failing to subscribe
    forever."""
    symbols = tuple(f"C{i}/USDC:USDC" for i in range(40))
    core = RecordingCore()
    config = ExchangeConfig(name="dydx", symbols=symbols)
    collector = Collector(DydxVenue(), config, core, core.health)

    class Listed:
        markets: ClassVar[dict[str, Any]] = {s: {"symbol": s} for s in symbols}

    with caplog.at_level("WARNING", logger="exporter"):
        chosen = collector.resolve_symbols(Listed())  # type: ignore[arg-type]  # markets only
    assert chosen == list(symbols[:32])
    assert "40 symbols configured, one connection takes 32" in caplog.text


# --- funding -----------------------------------------------------------------------------------


class ListingExchange:
    """What read_open_interest uses of ccxt: the markets, the implicit listing call and the
    answer's headers."""

    def __init__(self, listing: dict[str, Any], headers: dict[str, str] | None) -> None:
        self.markets = {m["symbol"]: m for m in MARKETS.values()}
        self.listing = listing
        self.last_response_headers = headers

    async def indexerGetPerpetualMarkets(self) -> object:  # noqa: N802 - ccxt's name
        return {"markets": self.listing}


def listed(**changes: object) -> dict[str, Any]:
    """ETH-USD as the indexer lists the fields read here."""
    market: dict[str, Any] = {
        "ticker": "ETH-USD",
        "oraclePrice": "2950.5",
        "openInterest": "12345.678",
        "nextFundingRate": "-0.0000125",
        "defaultFundingRate1H": "0",
    }
    market.update(changes)
    return {k: v for k, v in market.items() if v is not None}


@pytest.mark.parametrize(
    ("date", "next_funding_ms"),
    [
        ("Fri, 09 Oct 2026 17:06:40 GMT", 1_791_568_800_000),  # 18:00
        ("Fri, 09 Oct 2026 17:59:59 GMT", 1_791_568_800_000),
        ("Fri, 09 Oct 2026 18:00:00 GMT", 1_791_572_400_000),  # paid at 18:00: next at 19:00
    ],
)
async def test_the_hours_funding_rate_is_paid_at_the_next_whole_hour_of_the_indexer(
    date: str, next_funding_ms: int
) -> None:
    """``nextFundingRate`` is the rate per hour the coming tick pays; ticks fall on the whole
    hour, read from the answer's ``Date``; the oracle price is the mark, not repeated as an
    index."""
    exchange = ListingExchange({"ETH-USD": listed()}, {"Date": date})
    (eth,) = await ADAPTER.read_open_interest(exchange, ["ETH/USDC:USDC"])  # type: ignore[arg-type]  # stub
    assert isinstance(eth, RawOpenInterest)
    assert eth.read() == (12_345.678, None, 2_950.5, None)
    assert eth.context is not None
    assert eth.context() == ContextFields(
        funding_rate=-0.0000125, next_funding_ms=next_funding_ms, funding_interval_s=3_600.0
    )


@pytest.mark.parametrize("headers", [None, {}, {"date": "yesterday"}])
async def test_without_the_indexers_time_there_is_no_next_funding_time(
    headers: dict[str, str] | None,
) -> None:
    exchange = ListingExchange({"ETH-USD": listed()}, headers)
    (eth,) = await ADAPTER.read_open_interest(exchange, ["ETH/USDC:USDC"])  # type: ignore[arg-type]  # stub
    assert isinstance(eth, RawOpenInterest)
    assert eth.context is not None
    assert eth.context() == ContextFields(funding_rate=-0.0000125, funding_interval_s=3_600.0)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"nextFundingRate": None}, Reason.MISSING_FIELD),
        ({"nextFundingRate": "x"}, Reason.WRONG_TYPE),
    ],
)
async def test_a_bad_funding_rate_is_rejected_and_the_open_interest_stands(
    changes: dict[str, object], reason: Reason
) -> None:
    exchange = ListingExchange(
        {"ETH-USD": listed(**changes)}, {"Date": "Fri, 09 Oct 2026 17:06:40 GMT"}
    )
    (eth,) = await ADAPTER.read_open_interest(exchange, ["ETH/USDC:USDC"])  # type: ignore[arg-type]  # stub
    assert isinstance(eth, RawOpenInterest)
    assert eth.read() == (12_345.678, None, 2_950.5, None)
    assert eth.context is not None
    with pytest.raises(InvalidEventError) as caught:
        eth.context()
    assert caught.value.reason is reason


async def test_the_fakes_listing_carries_the_states_rate_and_its_answer_the_time(
    fake_exchange: FakeExchangeFactory,
) -> None:
    fake = await fake_exchange("dydx")
    fake.set_market_state(
        "ETH/USDC:USDC", mark_price=2_950.5, open_interest_coins=12_345.678, funding_rate=0.000125
    )
    exchange = make_collector(fake, RecordingCore(), ("ETH",)).make_exchange()
    try:
        await exchange.load_markets()
        before_ms = int(time.time()) * 1000
        (eth,) = await ADAPTER.read_open_interest(exchange, ["ETH/USDC:USDC"])
        after_ms = int(time.time() * 1000)
    finally:
        await exchange.close()
    assert isinstance(eth, RawOpenInterest)
    assert eth.context is not None
    context = eth.context()
    assert (context.funding_rate, context.funding_interval_s) == (0.000125, 3_600.0)
    hour = 3_600_000
    assert context.next_funding_ms in {
        (before_ms // hour + 1) * hour,
        (after_ms // hour + 1) * hour,
    }
