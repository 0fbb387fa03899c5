"""Deribit: the recorded frames become exactly the expected events by the side rules "T: the
taker's direction is the liquidated order's side" and "M: the maker's order is opposite the
taker's direction", and the unit "amount is USD on inverse perpetuals, coins on linear ones";
"MT" is two liquidations, unflagged trades are none; the heartbeat's test_request is answered;
the fake speaks what the adapter expects and ccxt loads from it."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest

from exporter.collectors import ADAPTERS
from exporter.collectors.collector import Collector
from exporter.collectors.deribit import KEEPALIVE, DeribitVenue, Liquidated, is_inverse
from exporter.collectors.intake import RawEntry
from exporter.collectors.venue import ContextFields, FrameKind, RawOpenInterest
from exporter.config import ExchangeConfig
from exporter.events import InvalidEventError, Reason
from exporter.fakeexchange.deribit import DeribitProtocol
from exporter.fakeexchange.markets import DEFAULT_MARKETS
from exporter.fakeexchange.protocol import Liquidation as FakeLiquidation
from exporter.fakeexchange.protocol import PingRequest, SubscribeRequest
from exporter.venues import completeness_of
from tests.collector_harness import RecordingCore, eventually, make_collector, running
from tests.venues import offline
from tests.venues.deribit import CASE

if TYPE_CHECKING:
    from exporter.health import Health
    from tests.conftest import FakeExchangeFactory
    from tests.venues.case import Recorded

ADAPTER = DeribitVenue()
# Inverse BTC-PERPETUAL: contracts of 10 USD; linear SOL_USDC-PERPETUAL: of 0.1 SOL.
MARKETS = offline.by_id(
    (
        offline.ccxt_market("BTC/USD:BTC", "BTC-PERPETUAL", 10.0),
        offline.ccxt_market("SOL/USDC:USDC", "SOL_USDC-PERPETUAL", 0.1),
    )
)
NOW_S = 1_791_565_600.0
T0 = 1_791_565_600_000


def intake() -> offline.Intake:
    return offline.make_intake(ADAPTER, MARKETS, NOW_S)


def invalid(health: Health) -> dict[Reason, int]:
    return offline.invalid_by_reason(health, "deribit")


def trade(**changes: object) -> dict[str, object]:
    good = {
        "trade_seq": 1,
        "trade_id": "1",
        "timestamp": T0,
        "tick_direction": 3,
        "price": 80_000.0,
        "liquidation": "T",
        "instrument_name": "BTC-PERPETUAL",
        "index_price": 80_010.0,
        "direction": "sell",
        "amount": 8_000,
    }
    return {k: v for k, v in {**good, **changes}.items() if v is not ...}


def push(*trades: object, channel: str = "trades.BTC-PERPETUAL.100ms") -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": "subscription",
        "params": {"channel": channel, "data": list(trades)},
    }


@offline.each_recorded(CASE)
def test_recorded_frames_become_exact_events(recorded: Recorded) -> None:
    """Line 1: "T", taker sold => a long; line 2: "M", taker bought => the maker sold => a long.
    Both on the inverse BTC-PERPETUAL: coins = USD amount / price. Captures via tardis-node."""
    offline.assert_recorded_frame(ADAPTER, intake(), recorded, exchange="deribit", coin="BTC")


@pytest.mark.parametrize(
    ("flag", "direction", "position"),
    [
        ("T", "sell", "long"),  # the liquidated taker's forced sell closes a long
        ("T", "buy", "short"),
        ("M", "buy", "long"),  # the taker bought from the liquidated maker: the maker sold
        ("M", "sell", "short"),
    ],
)
def test_side_rules_of_taker_and_maker(flag: str, direction: str, position: str) -> None:
    (item,) = ADAPTER.split_frame(push(trade(liquidation=flag, direction=direction)))
    assert isinstance(item, RawEntry)
    raw = ADAPTER.parse_entry(item.fields)
    assert (raw.side, raw.price, raw.amount, raw.timestamp_ms) == (position, 80_000.0, 0.1, T0)


def test_both_sides_liquidated_are_two_liquidations() -> None:
    """ "MT": the maker's and the taker's positions were both liquidated: one long, one short
    (the same fill), and two events."""
    taker, sink, health = intake()
    taker.take(push(trade(liquidation="MT", direction="sell")))
    assert [(e.side, e.quantity, e.notional_usd) for e in sink.events] == [
        ("short", 0.1, 8_000.0),  # the maker bought
        ("long", 0.1, 8_000.0),  # the taker sold
    ]
    assert invalid(health) == {}


def test_only_flagged_trades_are_entries() -> None:
    """An ordinary trade is not an entry and not a rejection; a bad flag is a rejection."""
    taker, sink, health = intake()
    taker.take(
        push(
            trade(liquidation=...),
            trade(liquidation="X"),
            trade(timestamp=T0 + 1),
            "not a trade",
            trade(instrument_name=None, timestamp=T0 + 2),
            trade(instrument_name="FOO-PERPETUAL", timestamp=T0 + 3),
        )
    )
    assert [e.timestamp_ms for e in sink.events] == [T0 + 1]
    assert invalid(health) == {
        Reason.INVALID_SIDE: 1,
        Reason.WRONG_TYPE: 1,
        Reason.MISSING_FIELD: 1,
        Reason.UNKNOWN_SYMBOL: 1,
    }


def test_linear_amounts_are_coins_and_inverse_amounts_usd() -> None:
    taker, sink, _ = intake()
    taker.take(
        push(
            trade(instrument_name="SOL_USDC-PERPETUAL", price=180.0, amount=12.5),
            trade(price=80_000.0, amount=8_000, timestamp=T0 + 1),
            channel="trades.SOL_USDC-PERPETUAL.100ms",
        )
    )
    got = [(e.symbol, e.quantity, e.notional_usd) for e in sink.events]
    assert got == [("SOL/USDC:USDC", 12.5, 2_250.0), ("BTC/USD:BTC", 0.1, 8_000.0)]
    assert is_inverse("BTC-PERPETUAL")
    assert is_inverse("ETH-PERPETUAL")
    assert not is_inverse("BTC_USDC-PERPETUAL")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"direction": "long"}, Reason.INVALID_SIDE),
        ({"direction": None}, Reason.MISSING_FIELD),
        ({"price": 0}, Reason.NOT_POSITIVE),  # never a division by zero
        ({"price": "x"}, Reason.WRONG_TYPE),
        ({"amount": ""}, Reason.MISSING_FIELD),
        ({"timestamp": "inf"}, Reason.BAD_TIMESTAMP),
    ],
)
def test_a_bad_field_is_rejected(changes: dict[str, object], reason: Reason) -> None:
    with pytest.raises(InvalidEventError) as caught:
        ADAPTER.parse_entry(Liquidated("T", trade(**changes)))
    assert caught.value.reason is reason


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        ({"jsonrpc": "2.0", "id": 2, "result": ["trades.BTC-PERPETUAL.100ms"]}, FrameKind.ACK),
        ({"jsonrpc": "2.0", "id": 1, "result": "ok"}, FrameKind.ACK),  # set_heartbeat
        ({"jsonrpc": "2.0", "id": 2, "result": []}, FrameKind.REJECT),  # no channel taken
        ({"jsonrpc": "2.0", "id": 0, "result": {"version": "1.2.26"}}, FrameKind.CONTROL),
        ({"jsonrpc": "2.0", "id": 2, "error": {"code": 13778}}, FrameKind.REJECT),
        ({"jsonrpc": "2.0", "error": {"code": 11050, "message": "bad_request"}}, FrameKind.REJECT),
        ({"method": "heartbeat", "params": {"type": "test_request"}}, FrameKind.CONTROL),
        ({"method": "heartbeat", "params": {"type": "heartbeat"}}, FrameKind.CONTROL),
        (push(channel="book.BTC-PERPETUAL.100ms"), FrameKind.UNKNOWN),
        ({"method": "subscription"}, FrameKind.UNKNOWN),
        ([], FrameKind.UNKNOWN),
    ],
)
def test_frames_are_classified(frame: object, kind: FrameKind) -> None:
    assert ADAPTER.classify_frame(frame) is kind


def test_only_the_test_request_is_answered() -> None:
    test_request = {"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}}
    assert ADAPTER.reply(test_request) == KEEPALIVE
    assert json.loads(KEEPALIVE) == {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "public/test",
        "params": {},
    }
    assert ADAPTER.reply({"method": "heartbeat", "params": {"type": "heartbeat"}}) is None
    assert ADAPTER.reply(push(trade())) is None
    assert ADAPTER.reply("pong") is None


def test_subscriptions_set_the_heartbeat_then_take_500_channels_a_call() -> None:
    ids = [f"C{i}_USDC-PERPETUAL" for i in range(1001)]
    heartbeat, *subscribes = ADAPTER.native_subscriptions(ids)
    assert heartbeat == {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "public/set_heartbeat",
        "params": {"interval": 30},
    }
    assert [(r["id"], len(r["params"]["channels"])) for r in subscribes] == [
        (2, 500),
        (3, 500),
        (4, 1),
    ]
    assert subscribes[0]["params"]["channels"][0] == "trades.C0_USDC-PERPETUAL.100ms"
    assert {r["method"] for r in subscribes} == {"public/subscribe"}
    assert ADAPTER.native_subscriptions([]) == [heartbeat]
    assert DeribitVenue.CCXT_STREAMS is False
    assert DeribitVenue.HISTORY is None
    assert completeness_of("deribit") == "complete"
    assert DeribitVenue.exchange == "deribit"


def test_a_bare_coin_means_its_perpetual() -> None:
    assert DeribitVenue.coin_symbol("BTC") == "BTC/USD:BTC"
    assert DeribitVenue.coin_symbol("ETH") == "ETH/USD:ETH"
    assert DeribitVenue.coin_symbol("SOL") == "SOL/USDC:USDC"


def test_the_fake_answers_as_the_adapter_expects() -> None:
    fake = DeribitProtocol(DEFAULT_MARKETS)
    heartbeat, subscribe = ADAPTER.native_subscriptions(["BTC-PERPETUAL", "SOL_USDC-PERPETUAL"])
    ping = fake.parse(ADAPTER.encode(heartbeat))
    assert isinstance(ping, PingRequest)
    assert ADAPTER.classify_frame(json.loads(fake.pong(ping, "c"))) is FrameKind.ACK
    keepalive = fake.parse(KEEPALIVE)
    assert isinstance(keepalive, PingRequest)
    assert ADAPTER.classify_frame(json.loads(fake.pong(keepalive, "c"))) is FrameKind.CONTROL
    request = fake.parse(ADAPTER.encode(subscribe))
    assert isinstance(request, SubscribeRequest)
    assert request.keys == {"BTC/USD:BTC", "SOL/USDC:USDC"}
    (ack,) = fake.ack(request, "c")
    assert json.loads(ack)["result"] == subscribe["params"]["channels"]
    assert ADAPTER.classify_frame(json.loads(ack)) is FrameKind.ACK
    unknown = fake.parse(ADAPTER.encode({**subscribe, "params": {"channels": ["trades.X.100ms"]}}))
    assert isinstance(unknown, SubscribeRequest)
    (dropped,) = fake.reject(unknown, "c")
    assert json.loads(dropped)["result"] == []  # Deribit leaves an unknown channel out
    assert ADAPTER.classify_frame(json.loads(dropped)) is FrameKind.REJECT
    raw = fake.parse(
        ADAPTER.encode({**subscribe, "params": {"channels": ["trades.BTC-PERPETUAL.raw"]}})
    )
    assert isinstance(raw, SubscribeRequest)
    (refused,) = fake.reject(raw, "c")
    assert json.loads(refused)["error"]["code"] == 13778
    offline.assert_junk_is_rejected(fake, ADAPTER, "{not json")


def test_the_fake_pushes_in_the_recorded_shape() -> None:
    fake = DeribitProtocol(DEFAULT_MARKETS)
    sent = [
        fake.quantize(FakeLiquidation("BTC/USD:BTC", "long", 80_000.5, 0.1, T0)),
        fake.quantize(FakeLiquidation("BTC/USD:BTC", "short", 80_001.0, 0.25, T0 + 1)),
        fake.quantize(FakeLiquidation("SOL/USDC:USDC", "long", 180.0, 12.5, T0 + 2)),
    ]
    assert sent[0].price == 80_000.5  # on the 0.5 tick
    assert sent[0].coins * sent[0].price == pytest.approx(8_000.0)  # 800 contracts of 10 USD
    frames = fake.encode(sent)
    assert [f.symbol for f in frames] == ["BTC/USD:BTC", "SOL/USDC:USDC"]
    recorded = json.loads(CASE.recorded[0].text())
    first = json.loads(frames[0].text)
    assert list(first) == list(recorded)
    assert first["params"]["channel"] == "trades.BTC-PERPETUAL.100ms"
    assert set(recorded["params"]["data"][0]) <= set(first["params"]["data"][0])
    # Both flags are exercised: the first trade "T" (taker sold), the second "M".
    flags = [(t["liquidation"], t["direction"]) for t in first["params"]["data"]]
    assert flags == [("T", "sell"), ("M", "sell")]
    assert first["params"]["data"][0]["amount"] == 8_000
    for frame in frames:
        decoded = fake.decode(frame.text)
        assert [(d.symbol, d.side, d.price, d.ts_ms) for d in decoded] == [
            (s.symbol, s.side, s.price, s.ts_ms) for s in frame.liquidations
        ]
        assert [d.coins for d in decoded] == pytest.approx([s.coins for s in frame.liquidations])
        read = offline.read_entries(ADAPTER, json.loads(frame.text))
        assert [r.side for r in read] == [s.side for s in frame.liquidations]
        assert [r.amount for r in read] == pytest.approx([s.coins for s in frame.liquidations])


async def test_ccxt_loads_perpetuals_and_reads_open_interest_per_currency(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """load_markets asks the currencies and every instrument (two calls); a poll asks one book
    summary per settlement currency: USD open interest of the inverse perpetual is turned to
    coins at the mark price, the linear one's is coins."""
    fake = await fake_exchange("deribit")
    fake.set_market_state("BTC/USD:BTC", mark_price=80_000.0, open_interest_coins=1_000.0)
    fake.set_market_state("SOL/USDC:USDC", mark_price=180.0, open_interest_coins=12_345.6)
    exchange = make_collector(fake, RecordingCore(), ("BTC", "SOL")).make_exchange()
    try:
        markets = await exchange.load_markets()
        assert dict(fake.rest_requests) == {
            "/api/v2/public/get_currencies": 1,
            "/api/v2/public/get_instruments": 1,
        }
        assert list(markets) == fake.symbols
        for market in markets.values():  # the naming rule agrees with the listing
            assert is_inverse(market["id"]) == market["inverse"], market["id"]
        assert ADAPTER.every_market(exchange) == fake.symbols
        items = await ADAPTER.read_open_interest(exchange, ["BTC/USD:BTC", "SOL/USDC:USDC"])
        assert fake.rest_requests["/api/v2/public/get_book_summary_by_currency"] == 2
        read = offline.readings(items)
        coins, usd, mark, ts = read["BTC/USD:BTC"]
        assert (coins, usd, mark) == (1_000.0, 80_000_000.0, 80_000.0)
        assert isinstance(ts, int)
        assert read["SOL/USDC:USDC"][:3] == (12_345.6, None, 180.0)
    finally:
        await exchange.close()


async def test_the_servers_test_request_is_answered_on_the_connection(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """The native client sets the heartbeat before subscribing, and answers the server's
    test_request with public/test at once (its own keepalive is 20 s away)."""
    fake = await fake_exchange("deribit")
    core = RecordingCore()
    config = ExchangeConfig(
        name="deribit", symbols=("BTC",), rest_url=fake.rest_url, ws_url=fake.ws_url
    )
    collector = Collector(ADAPTERS["deribit"](), config, core, core.health, sleep=asyncio.sleep)
    async with running(collector):
        await fake.wait_subscribed(["BTC/USD:BTC"])
        await eventually(lambda: core.health.is_up("deribit"), "up")
        first, second = (json.loads(t) for t in list(fake.received)[:2])
        assert (first["method"], first["params"]) == ("public/set_heartbeat", {"interval": 30})
        assert second["params"]["channels"] == ["trades.BTC-PERPETUAL.100ms"]
        assert KEEPALIVE not in fake.received
        await fake.send_raw(
            '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}'
        )
        await eventually(lambda: KEEPALIVE in fake.received, "public/test sent back", 5)
        assert core.health.snapshot().invalid == {}


# --- funding and index price -------------------------------------------------------------------


class SummaryExchange:
    """What read_open_interest uses of ccxt: the markets and the implicit book summary call."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.markets = {m["symbol"]: {**m, "settleId": m["settle"]} for m in MARKETS.values()}
        self.rows = rows

    async def publicGetGetBookSummaryByCurrency(  # noqa: N802 - ccxt's name
        self, params: dict[str, str]
    ) -> object:
        del params
        return {"jsonrpc": "2.0", "result": self.rows}


def summary(**changes: object) -> dict[str, Any]:
    """BTC-PERPETUAL's book summary row, as Deribit prints the fields read here."""
    row: dict[str, Any] = {
        "instrument_name": "BTC-PERPETUAL",
        "open_interest": 80_000_000,
        "mark_price": 80_000.0,
        "creation_timestamp": T0,
        "estimated_delivery_price": 79_984.5,
        "current_funding": 0.000125,
        "funding_8h": 0.00031,
    }
    row.update(changes)
    return {k: v for k, v in row.items() if v is not None}


async def test_the_index_and_the_funding_being_paid_per_8_hours_come_with_the_open_interest() -> (
    None
):
    """``estimated_delivery_price`` is a perpetual's index; ``current_funding`` the rate paid
    now, stated per 8 h (``funding_8h``, the trailing 8 hours' funding, is not it); funding is
    continuous: no next funding time, no prediction."""
    exchange = SummaryExchange([summary()])
    (btc,) = await ADAPTER.read_open_interest(exchange, ["BTC/USD:BTC"])  # type: ignore[arg-type]  # stub
    assert isinstance(btc, RawOpenInterest)
    assert btc.read() == (1_000.0, 80_000_000, 80_000.0, T0)
    assert btc.context is not None
    assert btc.context() == ContextFields(
        index_price=79_984.5, funding_rate=0.000125, funding_interval_s=28_800.0
    )
    assert {"index_price", "funding_rate", "funding_interval_s"} == DeribitVenue.CONTEXT


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"current_funding": None}, Reason.MISSING_FIELD),
        ({"estimated_delivery_price": "x"}, Reason.WRONG_TYPE),
    ],
)
async def test_a_bad_funding_figure_is_rejected_and_the_open_interest_stands(
    changes: dict[str, object], reason: Reason
) -> None:
    exchange = SummaryExchange([summary(**changes)])
    (btc,) = await ADAPTER.read_open_interest(exchange, ["BTC/USD:BTC"])  # type: ignore[arg-type]  # stub
    assert isinstance(btc, RawOpenInterest)
    assert btc.read()[:3] == (1_000.0, 80_000_000, 80_000.0)
    assert btc.context is not None
    with pytest.raises(InvalidEventError) as caught:
        btc.context()
    assert caught.value.reason is reason


async def test_the_fakes_book_summary_carries_the_state_where_the_adapter_reads_it(
    fake_exchange: FakeExchangeFactory,
) -> None:
    fake = await fake_exchange("deribit")
    fake.set_market_state(
        "SOL/USDC:USDC",
        mark_price=180.0,
        open_interest_coins=12_345.6,
        index_price=179.95,
        funding_rate=-0.00005,
    )
    exchange = make_collector(fake, RecordingCore(), ("SOL",)).make_exchange()
    try:
        await exchange.load_markets()
        (sol,) = await ADAPTER.read_open_interest(exchange, ["SOL/USDC:USDC"])
    finally:
        await exchange.close()
    assert isinstance(sol, RawOpenInterest)
    assert sol.context is not None
    assert sol.context() == ContextFields(
        index_price=179.95, funding_rate=-0.00005, funding_interval_s=28_800.0
    )
