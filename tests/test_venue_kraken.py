"""Kraken Futures: every recorded frame becomes exactly the expected event by the side rule
"side is the taker's side and the liquidation order (IOC) is the taker: sell => a long was
liquidated"; ``qty`` is USD on ``PI_`` inverse and coins on ``PF_`` perpetuals; trades of any
other type are skipped without a count; the ``trade_snapshot`` sent on subscribing is never
counted; and the fake speaks what the adapter expects (and ccxt loads from it)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest

from exporter.collectors.intake import RawEntry
from exporter.collectors.kraken import PRODUCTS_PER_REQUEST, KrakenVenue
from exporter.collectors.venue import FrameKind, RawOpenInterest
from exporter.events import InvalidEventError, Reason
from exporter.fakeexchange.kraken import KrakenProtocol
from exporter.fakeexchange.markets import DEFAULT_MARKETS
from exporter.fakeexchange.protocol import Liquidation as FakeLiquidation
from exporter.fakeexchange.protocol import SubscribeRequest
from exporter.venues import completeness_of
from tests.collector_harness import RecordingCore, eventually, make_collector, running
from tests.venues import offline
from tests.venues.case import FIXTURES
from tests.venues.kraken import CASE, FILE, RULE

if TYPE_CHECKING:
    from exporter.collectors.ccxt_types import Market
    from exporter.health import Health
    from tests.conftest import FakeExchangeFactory
    from tests.venues.case import Recorded

ADAPTER = KrakenVenue()


def _market(market_id: str, base: str, *, inverse: bool) -> Market:
    """As ccxt's krakenfutures parses /instruments: contractSize 1 (USD on PI_, a coin on
    PF_), PI_ settled in the coin, PF_ in USD."""
    return offline.ccxt_market(f"{base}/USD:{base if inverse else 'USD'}", market_id)


MARKETS = offline.by_id(
    (
        _market("PI_XRPUSD", "XRP", inverse=True),
        _market("PI_ETHUSD", "ETH", inverse=True),
        _market("PF_XBTUSD", "BTC", inverse=False),
    )
)
NOW_S = 1_791_565_600.0
T0 = 1_791_565_600_000


def intake() -> offline.Intake:
    return offline.make_intake(ADAPTER, MARKETS, NOW_S)


def invalid(health: Health) -> dict[Reason, int]:
    return offline.invalid_by_reason(health, "kraken")


def trade(**changes: object) -> dict[str, Any]:
    message: dict[str, Any] = {
        "feed": "trade",
        "product_id": "PF_XBTUSD",
        "uid": "05af78ac-a774-478c-a50c-8b9c234e071e",
        "side": "sell",
        "type": "liquidation",
        "seq": 653355,
        "time": T0,
        "qty": 0.25,
        "price": 80000.5,
    }
    message.update(changes)
    return {k: v for k, v in message.items() if v is not None}


@offline.each_recorded(CASE)
def test_recorded_frames_become_exact_events(recorded: Recorded) -> None:
    """Rule: the taker's (the liquidation order's) sell => long; PI_ qty is USD."""
    assert recorded.origin == "capture"
    assert recorded.rule == RULE
    offline.assert_recorded_frame(ADAPTER, intake(), recorded, exchange="kraken")


def test_every_recorded_line_is_asserted() -> None:
    offline.assert_every_line_recorded(CASE, FILE)


@pytest.mark.parametrize(("taker", "side"), [("sell", "long"), ("buy", "short")])
def test_the_takers_side_is_the_liquidation_orders_side(taker: str, side: str) -> None:
    assert ADAPTER.parse_entry(trade(side=taker)).side == side
    with pytest.raises(InvalidEventError) as caught:
        ADAPTER.parse_entry(trade(side="Sell"))
    assert caught.value.reason is Reason.INVALID_SIDE


def test_qty_is_usd_on_inverse_and_coins_on_flexible_perpetuals() -> None:
    taker, sink, health = intake()
    taker.take(trade(product_id="PI_ETHUSD", qty=2400, price=2400.0))
    taker.take(trade(product_id="PF_XBTUSD", qty=0.25, price=80000.0, time=T0 + 1))
    assert [(e.symbol, e.quantity, e.notional_usd) for e in sink.events] == [
        ("ETH/USD:ETH", 1.0, 2400.0),
        ("BTC/USD:USD", 0.25, 20000.0),
    ]
    assert invalid(health) == {}


def test_fills_alike_but_for_their_uid_are_two_liquidations_and_a_resent_one_is_one() -> None:
    """Kraken sends each trade in a frame of its own: two fills of one millisecond, price and
    size are told apart by ``uid``; the same trade sent again counts once."""
    taker, sink, health = intake()
    taker.take(trade(uid="a"))
    taker.take(trade(uid="b"))
    taker.take(trade(uid="a"))
    assert len(sink.events) == 2
    assert health.snapshot().duplicates == {"kraken": 1}


@pytest.mark.parametrize("kind", ["fill", "block", "assignment", "termination", "other"])
def test_other_trades_are_not_entries_and_not_invalid(kind: str) -> None:
    taker, sink, health = intake()
    taker.take(trade(type=kind))
    assert sink.events == []
    assert invalid(health) == {}


def test_a_trade_without_type_or_product_is_rejected() -> None:
    taker, sink, health = intake()
    taker.take(trade(type=None))
    taker.take(trade(product_id=None))
    taker.take(trade(product_id="PF_FOOUSD"))
    taker.take(trade(qty="abc"))
    assert sink.events == []
    assert invalid(health) == {
        Reason.MISSING_FIELD: 2,
        Reason.UNKNOWN_SYMBOL: 1,
        Reason.WRONG_TYPE: 1,
    }


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        ({"event": "subscribed", "feed": "trade", "product_ids": ["PF_XBTUSD"]}, FrameKind.ACK),
        ({"event": "error", "message": "Invalid product id"}, FrameKind.REJECT),
        ({"event": "alert", "message": "Bad request"}, FrameKind.REJECT),
        ({"event": "subscribed_failed", "feed": "trade"}, FrameKind.REJECT),
        ({"event": "info", "version": 1}, FrameKind.CONTROL),
        ({"event": "unsubscribed", "feed": "trade", "product_ids": ["X"]}, FrameKind.CONTROL),
        ({"feed": "heartbeat", "time": 1534262350627}, FrameKind.CONTROL),
        # Past trades on subscribing, a liquidation among them: never counted.
        (
            {"feed": "trade_snapshot", "product_id": "PF_XBTUSD", "trades": [trade()]},
            FrameKind.CONTROL,
        ),
        (trade(), FrameKind.DATA),
        (trade(type="fill"), FrameKind.DATA),  # a data frame without an entry
        ({"feed": "book", "product_id": "PF_XBTUSD", "side": "buy"}, FrameKind.UNKNOWN),
        ({"event": "challenge"}, FrameKind.UNKNOWN),
        ([1, 2], FrameKind.UNKNOWN),
        ("pong", FrameKind.UNKNOWN),
    ],
)
def test_frames_are_classified(frame: object, kind: FrameKind) -> None:
    assert ADAPTER.classify_frame(frame) is kind


def test_each_product_is_subscribed_by_its_id_in_bounded_requests() -> None:
    ids = [f"PF_C{i}USD" for i in range(2 * PRODUCTS_PER_REQUEST + 1)]
    requests = ADAPTER.native_subscriptions(ids)
    assert [len(r["product_ids"]) for r in requests] == [50, 50, 1]
    assert [p for r in requests for p in r["product_ids"]] == ids
    assert requests[0]["event"] == "subscribe"
    assert requests[0]["feed"] == "trade"
    assert KrakenVenue.NATIVE.all_markets_channel is False
    assert KrakenVenue.NATIVE.url(None) == "wss://futures.kraken.com/ws/v1"
    assert KrakenVenue.NATIVE.keepalive is None  # WebSocket pings, within Kraken's 60 s
    assert KrakenVenue.NATIVE.keepalive_seconds < 60
    assert KrakenVenue.CCXT_STREAMS is False
    assert KrakenVenue.HISTORY is None
    assert ADAPTER.coin_symbol("BTC") == "BTC/USD:USD"
    assert (ADAPTER.exchange, completeness_of("kraken")) == ("kraken", "complete")


def test_the_fake_answers_as_the_adapter_expects() -> None:
    fake = KrakenProtocol(DEFAULT_MARKETS)
    (greeting,) = fake.greeting("c0ffee")
    assert ADAPTER.classify_frame(json.loads(greeting)) is FrameKind.CONTROL
    (sent,) = ADAPTER.native_subscriptions(["PF_XBTUSD", "PI_XRPUSD"])
    request = fake.parse(ADAPTER.encode(sent))
    assert isinstance(request, SubscribeRequest)
    assert (request.keys, request.invalid) == (frozenset({"BTC/USD:USD", "XRP/USD:XRP"}), ())
    ack, *snapshots = fake.ack(request, "c0ffee")
    assert ADAPTER.classify_frame(json.loads(ack)) is FrameKind.ACK
    assert [json.loads(s)["product_id"] for s in snapshots] == ["PF_XBTUSD", "PI_XRPUSD"]
    assert {ADAPTER.classify_frame(json.loads(s)) for s in snapshots} == {FrameKind.CONTROL}
    (bad,) = ADAPTER.native_subscriptions(["PF_XBTUSD", "PF_FOOUSD"])
    refused = fake.parse(ADAPTER.encode(bad))
    assert isinstance(refused, SubscribeRequest)
    assert refused.invalid == ("PF_FOOUSD",)
    (answer,) = fake.reject(refused, "c0ffee")
    assert json.loads(answer) == {"event": "error", "message": "Invalid product id"}
    assert ADAPTER.classify_frame(json.loads(answer)) is FrameKind.REJECT
    offline.assert_junk_is_rejected(fake, ADAPTER)


def test_the_fake_sends_each_trade_as_recorded() -> None:
    fake = KrakenProtocol(DEFAULT_MARKETS)
    sent = [
        fake.quantize(FakeLiquidation("XRP/USD:XRP", "long", 0.1736, 69124.4, T0)),
        fake.quantize(FakeLiquidation("BTC/USD:USD", "short", 80000.04, 0.25041, T0 + 1)),
    ]
    # PI_: whole USD contracts (69124.4 XRP at 0.1736 is 12000 USD); PF_: the lot step.
    assert [s.price for s in sent] == [0.1736, 80000.0]
    assert [s.coins * s.price for s in sent] == pytest.approx([12000.0, 0.25 * 80000.0])
    frames = fake.encode(sent)
    assert [len(f.liquidations) for f in frames] == [1, 1]
    recorded = json.loads((FIXTURES / FILE).read_text().splitlines()[0])
    first = json.loads(frames[0].text)
    assert list(first) == list(recorded)
    assert {k: first[k] for k in ("product_id", "side", "type", "qty", "price")} == {
        "product_id": "PI_XRPUSD",
        "side": "sell",
        "type": "liquidation",
        "qty": 12000,
        "price": 0.1736,
    }
    for frame in frames:
        (decoded,) = fake.decode(frame.text)
        (liquidation,) = frame.liquidations
        assert decoded.coins == pytest.approx(liquidation.coins, rel=1e-12)
        assert (decoded.symbol, decoded.side, decoded.price, decoded.ts_ms) == (
            liquidation.symbol,
            liquidation.side,
            liquidation.price,
            liquidation.ts_ms,
        )
        (item,) = ADAPTER.split_frame(json.loads(frame.text))
        assert isinstance(item, RawEntry)


async def test_ccxt_loads_pf_and_pi_perpetuals_and_one_call_reads_every_open_interest(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """load_markets is one /instruments call (PF_XBTUSD is BTC/USD:USD, PI_XRPUSD XRP/USD:XRP);
    a poll is one /tickers call: openInterest in coins on PF_, in USD on PI_."""
    fake = await fake_exchange("kraken")
    fake.set_market_state("BTC/USD:USD", mark_price=81_000.0, open_interest_coins=1_234.5)
    fake.set_market_state("XRP/USD:XRP", mark_price=0.5, open_interest_coins=2_000_000.0)
    collector = make_collector(fake, RecordingCore(), ("BTC",))
    exchange = collector.make_exchange()
    try:
        markets = await exchange.load_markets()
        assert set(fake.rest_requests) == {"/derivatives/api/v3/instruments"}
        assert set(fake.symbols) <= set(markets)
        assert markets["BTC/USD:USD"]["id"] == "PF_XBTUSD"
        assert markets["XRP/USD:XRP"]["id"] == "PI_XRPUSD"
        assert markets["XRP/USD:XRP"]["inverse"] is True
        assert ADAPTER.every_market(exchange) == fake.symbols  # PF_ and PI_, no index
        items = await ADAPTER.read_open_interest(exchange, ["BTC/USD:USD", "XRP/USD:XRP"])
        assert fake.rest_requests["/derivatives/api/v3/tickers"] == 1
        assert offline.readings(items) == {
            "BTC/USD:USD": (1_234.5, None, 81_000.0, None),
            "XRP/USD:XRP": (2_000_000.0, 1_000_000.0, 0.5, None),
        }
    finally:
        await exchange.close()


async def test_the_snapshot_on_subscribing_is_never_counted(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """The fake sends the subscription's snapshot (and we replay one holding a liquidation):
    nothing is counted, nothing is invalid; a live liquidation after it is one event."""
    fake = await fake_exchange("kraken")
    core = RecordingCore()
    async with running(make_collector(fake, core, ("BTC",), transport="native")):
        await fake.wait_subscribed(["BTC/USD:USD"])
        await eventually(lambda: core.health.is_up("kraken"), "up")
        now = int(time.time() * 1000)
        past = trade(time=now - 1000, qty=0.5, price=80_000.0)
        snapshot = {"feed": "trade_snapshot", "product_id": "PF_XBTUSD", "trades": [past]}
        await fake.send_raw(json.dumps(snapshot))
        fake.publish_liquidation("BTC/USD:USD", "short", 80_000.0, 0.25, now)
        await eventually(lambda: len(core.liquidations) == 1, "the live liquidation")
    (event,) = core.liquidations
    assert (event.symbol, event.side, event.quantity) == ("BTC/USD:USD", "short", 0.25)
    assert core.health.snapshot().invalid == {}


# --- funding and index price -------------------------------------------------------------------

SERVER_TIME = "2026-10-09T17:06:40.000Z"  # T0: funding next at 18:00
NEXT_HOUR_MS = 1_791_568_800_000


class TickersExchange:
    """What read_open_interest uses of ccxt: the markets and the implicit tickers call."""

    def __init__(self, answer: object) -> None:
        self.markets = {m["symbol"]: m for m in MARKETS.values()}
        self.answer = answer

    async def publicGetTickers(self) -> object:  # noqa: N802 - ccxt's name
        return self.answer


def ticker(symbol: str, **changes: object) -> dict[str, Any]:
    """A perpetual's ticker: the fields read here, absolute rates of 0.000125 and -0.00005 of
    the index per hour (USD per PF_ contract of a coin, XRP per PI_ contract of a USD)."""
    index = 80_000.0 if symbol.startswith("PF_") else 0.5
    per_contract = index if symbol.startswith("PF_") else 1 / index
    good: dict[str, Any] = {
        "tag": "perpetual",
        "symbol": symbol,
        "markPrice": index + 10 if symbol.startswith("PF_") else 0.5001,
        "openInterest": 1_234.5,
        "indexPrice": index,
        "fundingRate": 0.000125 * per_contract,
        "fundingRatePrediction": -0.00005 * per_contract,
    }
    good.update(changes)
    return {k: v for k, v in good.items() if v is not None}


def tickers(*rows: dict[str, Any], server_time: object = SERVER_TIME) -> dict[str, Any]:
    return {"result": "success", "tickers": list(rows), "serverTime": server_time}


async def test_absolute_rates_become_fractions_of_the_index_on_linear_and_inverse_contracts() -> (
    None
):
    """``fundingRate`` is this hour's rate, paid at the next whole hour of ``serverTime``, and
    ``fundingRatePrediction`` the next hour's, both per contract: USD per coin on PF_ (/
    index), the coin per USD on PI_ (x index)."""
    exchange = TickersExchange(
        tickers(
            ticker("PF_XBTUSD"),
            ticker("PI_XRPUSD"),
            {"symbol": "in_xbtusd", "last": 80_000.0},  # an index: no perpetual
        )
    )
    items = await ADAPTER.read_open_interest(exchange, None)  # type: ignore[arg-type]  # stub
    contexts = {
        i.market["symbol"]: i.context()
        for i in items
        if isinstance(i, RawOpenInterest) and i.context
    }
    assert set(contexts) == {"BTC/USD:USD", "XRP/USD:XRP"}
    for symbol, index in (("BTC/USD:USD", 80_000.0), ("XRP/USD:XRP", 0.5)):
        context = contexts[symbol]
        assert context.index_price == index
        assert context.funding_rate == pytest.approx(0.000125, abs=1e-15)
        assert context.predicted_funding_rate == pytest.approx(-0.00005, abs=1e-15)
        assert (context.next_funding_ms, context.funding_interval_s) == (NEXT_HOUR_MS, 3_600.0)


@pytest.mark.parametrize(
    ("changes", "server_time", "reason"),
    [
        ({"fundingRate": None}, SERVER_TIME, Reason.MISSING_FIELD),
        ({"indexPrice": 0}, SERVER_TIME, Reason.NOT_POSITIVE),
        ({}, "2026-10-09 17:06", Reason.BAD_TIMESTAMP),
    ],
)
async def test_a_bad_funding_figure_is_rejected_and_the_open_interest_stands(
    changes: dict[str, object], server_time: str, reason: Reason
) -> None:
    exchange = TickersExchange(tickers(ticker("PF_XBTUSD", **changes), server_time=server_time))
    (btc,) = await ADAPTER.read_open_interest(exchange, ["BTC/USD:USD"])  # type: ignore[arg-type]  # stub
    assert isinstance(btc, RawOpenInterest)
    assert btc.read() == (1_234.5, None, 80_010.0, None)
    assert btc.context is not None
    with pytest.raises(InvalidEventError) as caught:
        btc.context()
    assert caught.value.reason is reason


async def test_no_prediction_is_none() -> None:
    exchange = TickersExchange(tickers(ticker("PF_XBTUSD", fundingRatePrediction=None)))
    (btc,) = await ADAPTER.read_open_interest(exchange, ["BTC/USD:USD"])  # type: ignore[arg-type]  # stub
    assert isinstance(btc, RawOpenInterest)
    assert btc.context is not None
    assert btc.context().predicted_funding_rate is None


async def test_an_answer_without_tickers_takes_every_watched_market() -> None:
    exchange = TickersExchange({"result": "error", "error": "apiLimitExceeded"})
    items = await ADAPTER.read_open_interest(exchange, ["BTC/USD:USD", "XRP/USD:XRP"])  # type: ignore[arg-type]  # stub
    assert [i.reason for i in items if isinstance(i, InvalidEventError)] == [Reason.MALFORMED] * 2


async def test_the_fakes_tickers_carry_the_state_where_the_adapter_reads_it(
    fake_exchange: FakeExchangeFactory,
) -> None:
    fake = await fake_exchange("kraken")
    for symbol, mark, index in (("BTC/USD:USD", 81_000.0, 80_984.5), ("XRP/USD:XRP", 0.5, 0.4999)):
        fake.set_market_state(
            symbol,
            mark_price=mark,
            open_interest_coins=1_234.5,
            index_price=index,
            funding_rate=0.000125,
            predicted_funding_rate=-0.00005,
        )
    exchange = make_collector(fake, RecordingCore(), ("BTC",)).make_exchange()
    try:
        await exchange.load_markets()
        items = await ADAPTER.read_open_interest(exchange, ["BTC/USD:USD", "XRP/USD:XRP"])
    finally:
        await exchange.close()
    contexts = {i.market["symbol"]: i.context for i in items if isinstance(i, RawOpenInterest)}
    for symbol, index in (("BTC/USD:USD", 80_984.5), ("XRP/USD:XRP", 0.4999)):
        read = contexts[symbol]
        assert read is not None
        context = read()
        assert context.index_price == index
        assert context.funding_rate == pytest.approx(0.000125, abs=1e-15)
        assert context.predicted_funding_rate == pytest.approx(-0.00005, abs=1e-15)
        assert context.next_funding_ms is not None
        assert context.next_funding_ms % 3_600_000 == 0
