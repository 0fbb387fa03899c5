"""HTX USDT swaps: every recorded frame becomes exactly the expected events by the side rule
"direction is the forced order's side: sell => a long was liquidated", with coins from
``amount``; the coin-margined recordings are rejected as unknown symbols; gzip frames are
decoded within a size limit; the server's ``{"op":"ping"}`` is answered with its own ``ts``;
the funding rate and its settlement time come from swap_batch_funding_rate; and the fake
speaks what the adapter expects (and ccxt loads from it)."""

from __future__ import annotations

import gzip
import json
import time
from typing import TYPE_CHECKING, Any

import ccxt
import pytest

from exporter.collectors.htx import MAX_TEXT_BYTES, TOPIC, HtxVenue
from exporter.collectors.venue import ContextFields, FrameKind, RawOpenInterest
from exporter.events import InvalidEventError, Reason
from exporter.fakeexchange.htx import HtxProtocol, ping_frame
from exporter.fakeexchange.markets import DEFAULT_MARKETS
from exporter.fakeexchange.protocol import ALL_MARKETS, IgnoredRequest, SubscribeRequest
from exporter.fakeexchange.protocol import Liquidation as FakeLiquidation
from exporter.venues import completeness_of
from tests.collector_harness import RecordingCore, eventually, make_collector, running
from tests.venues import offline
from tests.venues.case import FIXTURES
from tests.venues.htx import CASE, RULE

if TYPE_CHECKING:
    from exporter.collectors.ccxt_types import Market
    from exporter.health import Health
    from tests.conftest import FakeExchangeFactory
    from tests.venues.case import Recorded

ADAPTER = HtxVenue()


def _market(base: str, size: float) -> Market:
    """As ccxt's htx parses swap_contract_info (HTX's contract sizes: BTC 0.001, ETH 0.01)."""
    return offline.ccxt_market(f"{base}/USDT:USDT", f"{base}-USDT", size)


MARKETS = offline.by_id((_market("BTC", 0.001), _market("ETH", 0.01)))
NOW_S = 1_791_565_600.0
T0 = 1_791_565_600_000


def intake() -> offline.Intake:
    return offline.make_intake(ADAPTER, MARKETS, NOW_S)


def invalid(health: Health) -> dict[Reason, int]:
    return offline.invalid_by_reason(health, "htx")


def order(**changes: object) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "symbol": "BTC",
        "contract_code": "BTC-USDT",
        "direction": "sell",
        "offset": "close",
        "volume": 227,
        "price": 80000.5,
        "created_at": T0,
        "amount": 0.227,
        "trade_turnover": 18160.1135,
    }
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


def notify(*entries: object) -> dict[str, Any]:
    return {
        "op": "notify",
        "topic": "public.BTC-USDT.liquidation_orders",
        "ts": T0,
        "data": list(entries),
    }


@offline.each_recorded(CASE)
def test_recorded_frames_become_exact_events(recorded: Recorded) -> None:
    """Rule: direction sell => long. Coin-margined frames are rejected, the ack is no data."""
    assert recorded.origin in {"capture", "unattributed capture"}
    message = json.loads(recorded.text())
    # On the wire each is gzip: the adapter reads the compressed bytes back to the same text.
    assert ADAPTER.decode_binary(gzip.compress(recorded.text().encode())) == recorded.text()
    kind = ADAPTER.classify_frame(message)
    if not recorded.events and not recorded.rejected:
        assert kind is FrameKind.ACK  # htx.unattributed.jsonl:2, the subscription's answer
        return
    assert recorded.rule == RULE
    offline.assert_recorded_frame(ADAPTER, intake(), recorded, exchange="htx")


def test_every_recorded_line_is_asserted() -> None:
    offline.assert_every_line_recorded(CASE, "htx.jsonl", "htx.unattributed.jsonl")


@pytest.mark.parametrize(("direction", "side"), [("sell", "long"), ("buy", "short")])
def test_direction_is_the_forced_orders_side(direction: str, side: str) -> None:
    """A forced sell closes a long, a forced buy a short (HTX: direction "buy"/"sell" of the
    liquidation order, offset "close")."""
    assert ADAPTER.parse_entry(order(direction=direction)).side == side


@pytest.mark.parametrize("direction", ["long", "Sell", "", None, 1])
def test_any_other_direction_is_rejected(direction: object) -> None:
    with pytest.raises(InvalidEventError) as caught:
        ADAPTER.parse_entry(order(direction=direction))
    assert caught.value.reason in {Reason.INVALID_SIDE, Reason.MISSING_FIELD}


def test_amount_is_coins_whatever_the_contract_size() -> None:
    """`volume` (contracts) is not read: `amount` is the coins, so no contract size is
    involved (227 contracts of 0.001 BTC = 0.227 BTC)."""
    raw = ADAPTER.parse_entry(order(volume=999999))
    assert (raw.amount, raw.price, raw.timestamp_ms) == (0.227, 80000.5, T0)
    assert ADAPTER.quantity_in_contracts is False
    with pytest.raises(InvalidEventError) as caught:
        ADAPTER.parse_entry(order(amount=None))
    assert caught.value.reason is Reason.MISSING_FIELD


def test_each_entry_stands_alone() -> None:
    taker, sink, health = intake()
    taker.take(
        notify(
            order(),
            "not an object",
            order(contract_code=None),
            order(contract_code="BTC200703"),
            order(price="-1"),
            order(direction="buy", amount=0.5, created_at=T0 + 1),
        )
    )
    assert [(e.side, e.quantity) for e in sink.events] == [("long", 0.227), ("short", 0.5)]
    assert invalid(health) == {
        Reason.WRONG_TYPE: 1,
        Reason.MISSING_FIELD: 1,
        Reason.UNKNOWN_SYMBOL: 1,
        Reason.NOT_POSITIVE: 1,
    }


def test_data_that_is_no_list_is_one_rejection() -> None:
    for data, reason in (({}, Reason.WRONG_TYPE), (None, Reason.MISSING_FIELD)):
        taker, sink, health = intake()
        message = notify()
        message["data"] = data
        taker.take(message)
        assert sink.events == []
        assert invalid(health) == {reason: 1}


def test_gzip_frames_are_decoded_within_the_size_limit() -> None:
    text = json.dumps(notify(order()))
    assert ADAPTER.decode_binary(gzip.compress(text.encode())) == text
    bomb = gzip.compress(b" " * (MAX_TEXT_BYTES + 1))
    assert len(bomb) < 20_000
    for bad in (bomb, gzip.compress(text.encode())[:-9], b"\xff\xfe junk", text.encode()):
        with pytest.raises(ValueError, match="gzip"):
            ADAPTER.decode_binary(bad)


def test_the_servers_ping_is_answered_with_its_own_ts() -> None:
    """The notification endpoint pings `{"op":"ping","ts":"<ms string>"}` and wants the same
    `ts` back in `{"op":"pong"}` (the market endpoint's `{"ping": n}` is not its shape)."""
    ping = {"op": "ping", "ts": "1492420473058"}
    assert ADAPTER.classify_frame(ping) is FrameKind.CONTROL
    assert ADAPTER.reply(ping) == '{"op":"pong","ts":"1492420473058"}'
    assert ADAPTER.reply({"ping": 18212558000}) is None
    assert ADAPTER.reply(notify(order())) is None
    assert ADAPTER.reply("ping") is None


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        (
            {"op": "sub", "cid": "c", "topic": TOPIC, "ts": 1789670081489, "err-code": 0},
            FrameKind.ACK,
        ),
        (  # as ccxt.pro htx records it
            {
                "op": "sub",
                "cid": "1649149285",
                "topic": "orders_cross.ltc-usdt",
                "err-code": 2011,
                "err-msg": "Contract doesn't exist.",
                "ts": 1649149287637,
            },
            FrameKind.REJECT,
        ),
        ({"op": "sub", "cid": "c", "err-code": 2040, "ts": 1}, FrameKind.REJECT),
        ({"op": "sub", "cid": "c", "topic": TOPIC, "ts": 1}, FrameKind.REJECT),
        ({"op": "error", "ts": 1489474081631}, FrameKind.REJECT),
        ({"op": "close", "ts": 1489474081631}, FrameKind.CONTROL),
        ({"op": "unsub", "topic": TOPIC, "ts": 1, "err-code": 0}, FrameKind.CONTROL),
        ({"op": "notify", "topic": "public.BTC-USDT.funding_rate", "data": []}, FrameKind.UNKNOWN),
        ({"ping": 18212558000}, FrameKind.UNKNOWN),
        ([1, 2], FrameKind.UNKNOWN),
        ("pong", FrameKind.UNKNOWN),
    ],
)
def test_frames_are_classified(frame: object, kind: FrameKind) -> None:
    assert ADAPTER.classify_frame(frame) is kind


def test_one_topic_covers_every_contract_and_nothing_else_is_needed() -> None:
    sub = {"op": "sub", "cid": "cryptoliq-liquidations", "topic": "public.*.liquidation_orders"}
    assert ADAPTER.native_subscriptions(None) == [sub]
    assert ADAPTER.native_subscriptions(["BTC-USDT"]) == [sub]  # we keep our markets
    assert HtxVenue.NATIVE.url(None) == "wss://api.hbdm.com/linear-swap-notification"
    assert HtxVenue.NATIVE.all_markets_channel is True
    assert HtxVenue.NATIVE.keepalive is None  # HTX pings us; WebSocket pings are ours
    assert HtxVenue.CCXT_STREAMS is False
    assert HtxVenue.HISTORY is None  # swap_his_open_interest has no 5-minute period
    assert ADAPTER.exchange == "htx"
    assert completeness_of("htx") == "complete"
    assert ADAPTER.coin_symbol("BTC") == "BTC/USDT:USDT"


def test_the_fake_answers_as_the_adapter_expects() -> None:
    fake = HtxProtocol(DEFAULT_MARKETS)
    request = fake.parse(ADAPTER.encode(ADAPTER.native_subscriptions(None)[0]))
    assert isinstance(request, SubscribeRequest)
    assert (request.keys, request.invalid) == (frozenset({ALL_MARKETS}), ())
    (ack,) = fake.ack(request, "c0ffee")
    assert list(json.loads(ack)) == ["op", "cid", "topic", "ts", "err-code"]  # as recorded
    assert ADAPTER.classify_frame(json.loads(ack)) is FrameKind.ACK
    one = fake.parse('{"op":"sub","cid":"1","topic":"public.eth-usdt.liquidation_orders"}')
    assert isinstance(one, SubscribeRequest)
    assert one.keys == frozenset({"ETH/USDT:USDT"})  # contract codes are case-insensitive
    for topic, code in (("public.FOO-USDT.liquidation_orders", 2011), ("market.x", 2010)):
        refused = fake.parse(json.dumps({"op": "sub", "cid": "1", "topic": topic}))
        assert isinstance(refused, SubscribeRequest)
        assert refused.invalid == (topic,)
        (answer,) = fake.reject(refused, "c0ffee")
        assert json.loads(answer)["err-code"] == code
        assert ADAPTER.classify_frame(json.loads(answer)) is FrameKind.REJECT
    pong = fake.parse(ADAPTER.reply(json.loads(ping_frame(T0))) or "")
    assert isinstance(pong, IgnoredRequest)  # a pong is taken without an answer
    offline.assert_junk_is_rejected(fake, ADAPTER)


def test_the_fake_packs_orders_as_recorded_and_gzips_every_frame() -> None:
    fake = HtxProtocol(DEFAULT_MARKETS)
    sent = [
        fake.quantize(FakeLiquidation("ETH/USDT:USDT", "short", 2446.26, 5.0, T0)),
        fake.quantize(FakeLiquidation("ETH/USDT:USDT", "long", 2446.255, 0.123, T0 + 1)),
        fake.quantize(FakeLiquidation("BTC/USDT:USDT", "long", 80000.04, 0.0004, T0 + 2)),
    ]
    # Whole contracts (at least one) on the tick: 0.123 ETH is 12 contracts of 0.01.
    assert [(s.coins, s.price) for s in sent] == [(5.0, 2446.26), (0.12, 2446.26), (0.001, 80000.0)]
    frames = fake.encode(sent)
    assert [len(f.liquidations) for f in frames] == [2, 1]
    recorded = json.loads((FIXTURES / "htx.unattributed.jsonl").read_text().splitlines()[0])
    first = json.loads(frames[0].text)
    assert list(first) == list(recorded)
    assert list(first["data"][0]) == list(recorded["data"][0])
    assert first["data"][0]["volume"] == recorded["data"][0]["volume"] == 500
    assert first["data"][0]["amount"] == recorded["data"][0]["amount"] == 5
    assert first["data"][0]["trade_turnover"] == recorded["data"][0]["trade_turnover"]
    assert first["topic"] == recorded["topic"]
    assert gzip.decompress(fake.wire(frames[0].text)) == frames[0].text.encode()  # type: ignore[arg-type]  # bytes here
    for frame in frames:
        assert fake.decode(frame.text) == list(frame.liquidations)
        read = offline.read_entries(ADAPTER, json.loads(frame.text))
        want = [(liq.side, liq.price, liq.coins, liq.ts_ms) for liq in frame.liquidations]
        assert [(r.side, r.price, r.amount, r.timestamp_ms) for r in read] == want


async def test_ccxt_loads_only_linear_swaps_and_three_calls_read_every_open_interest(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """load_markets reads the spot currencies and one contract_info (no coin-margined or spot
    markets); a poll is one swap_open_interest, one swap_index and one swap_batch_funding_rate
    for every contract."""
    fake = await fake_exchange("htx")
    fake.set_market_state("BTC/USDT:USDT", mark_price=81_000.0, open_interest_coins=12_345.678)
    collector = make_collector(fake, RecordingCore(), ("BTC", "ETH"))
    exchange = collector.make_exchange()
    try:
        markets = await exchange.load_markets()
        assert set(fake.rest_requests) == {
            "/v2/reference/currencies",
            "/linear-swap-api/v1/swap_contract_info",
        }
        assert set(markets) == set(fake.symbols)
        btc = markets["BTC/USDT:USDT"]
        assert (btc["id"], btc["contractSize"], btc["swap"], btc["linear"]) == (
            "BTC-USDT",
            0.001,
            True,
            True,
        )
        before = time.time() * 1000
        items = await ADAPTER.read_open_interest(exchange, ["BTC/USDT:USDT", "ETH/USDT:USDT"])
        assert fake.rest_requests["/linear-swap-api/v1/swap_open_interest"] == 1
        assert fake.rest_requests["/linear-swap-api/v1/swap_index"] == 1
        assert fake.rest_requests["/linear-swap-api/v1/swap_batch_funding_rate"] == 1
        read = offline.readings(items)
        assert set(read) == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
        coins, usd, mark, ts = read["BTC/USDT:USDT"]
        assert (coins, mark) == (12_345.678, 81_000.0)
        assert usd == pytest.approx(12_345.678 * 81_000.0)
        assert ts is not None
        assert before - 1000 <= ts <= time.time() * 1000 + 1000
    finally:
        await exchange.close()


async def test_the_collector_answers_the_fakes_ping_and_reads_gzip_frames(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """End to end on the native client: the fake pings as HTX does, the collector pongs with
    the same ts, and a liquidation after that still arrives (gzip all the way)."""
    fake = await fake_exchange("htx")
    core = RecordingCore()
    async with running(make_collector(fake, core, ("BTC",), transport="native")):
        await fake.wait_subscribed(["BTC/USDT:USDT"])
        await eventually(lambda: core.health.is_up("htx"), "up")
        await fake.send_raw(ping_frame(1_492_420_473_058))
        pong = '{"op":"pong","ts":"1492420473058"}'
        await eventually(lambda: pong in fake.received, "the pong")
        fake.publish_liquidation("BTC/USDT:USDT", "long", 80_000.0, 0.25, int(time.time() * 1000))
        await eventually(lambda: len(core.liquidations) == 1, "the liquidation")
    (event,) = core.liquidations
    assert (event.symbol, event.side, event.quantity) == ("BTC/USDT:USDT", "long", 0.25)
    assert core.health.snapshot().invalid == {}


# --- funding -----------------------------------------------------------------------------------

# One row of swap_batch_funding_rate in the shape of HTX's documentation ("[General] Query a Batch
# of Funding Rate"): the deprecated fields are null, `funding_time` the current period's end.
FUNDING_ROW = {
    "estimated_rate": None,
    "funding_rate": "0.000100000000000000",
    "contract_code": "BTC-USDT",
    "symbol": "BTC",
    "fee_asset": "USDT",
    "funding_time": "1780560000000",
    "next_funding_time": None,
    "trade_partition": "USDT",
}
OI_ROW = {"contract_code": "BTC-USDT", "amount": 24691.356, "value": 2000000000.0, "volume": 1}


class ContractApi:
    """What read_open_interest uses of ccxt: the markets and the generic request."""

    def __init__(self, funding: object) -> None:
        self.markets = {m["symbol"]: m for m in MARKETS.values()}
        self.answers: dict[str, object] = {
            "linear-swap-api/v1/swap_open_interest": {"status": "ok", "data": [OI_ROW], "ts": T0},
            "linear-swap-api/v1/swap_index": {
                "status": "ok",
                "data": [{"contract_code": "BTC-USDT", "index_price": 81_000.5}],
            },
            "linear-swap-api/v1/swap_batch_funding_rate": funding,
        }
        self.paths: list[str] = []

    async def request(
        self, path: str, api: list[str], method: str, params: dict[str, Any]
    ) -> object:
        assert (api, method) == (["contract", "public"], "GET")
        assert "contract_code" not in params  # every contract in one call
        self.paths.append(path)
        return self.answers[path]


async def btc_reading(funding_rows: list[object]) -> RawOpenInterest:
    api = ContractApi({"status": "ok", "data": funding_rows, "ts": T0})
    (btc,) = await ADAPTER.read_open_interest(api, ["BTC/USDT:USDT"])  # type: ignore[arg-type]  # stub
    assert api.paths[-1] == "linear-swap-api/v1/swap_batch_funding_rate"
    assert isinstance(btc, RawOpenInterest)
    assert btc.context is not None
    return btc


async def test_the_rate_and_its_settlement_time_come_from_the_batch_funding_rate() -> None:
    """`funding_time` is when the current rate is settled; there is no estimate, no second
    time to derive an interval from, and the index is the reading's price already."""
    btc = await btc_reading([FUNDING_ROW])
    assert btc.read() == (12_345.678, 1_000_000_000.0, 81_000.5, T0)
    assert btc.context is not None
    assert btc.context() == ContextFields(funding_rate=0.0001, next_funding_ms=1_780_560_000_000)
    assert {"funding_rate", "next_funding_ms"} == HtxVenue.CONTEXT


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([], Reason.MISSING_FIELD),  # a contract the call does not list
        ([{**FUNDING_ROW, "funding_time": None}], Reason.MISSING_FIELD),
        ([{**FUNDING_ROW, "funding_rate": "null"}], Reason.WRONG_TYPE),
        ([{**FUNDING_ROW, "funding_time": "NaN"}], Reason.BAD_TIMESTAMP),
    ],
)
async def test_a_bad_funding_figure_is_rejected_and_the_open_interest_stands(
    rows: list[object], reason: Reason
) -> None:
    btc = await btc_reading(rows)
    assert btc.read() == (12_345.678, 1_000_000_000.0, 81_000.5, T0)
    assert btc.context is not None
    with pytest.raises(InvalidEventError) as caught:
        btc.context()
    assert caught.value.reason is reason


async def test_a_funding_answer_without_data_fails_the_poll() -> None:
    """As for the other two calls: the poll retries the whole reading."""
    api = ContractApi({"status": "error", "err_code": 1013, "err_msg": "x"})
    with pytest.raises(ccxt.BadResponse):
        await ADAPTER.read_open_interest(api, None)  # type: ignore[arg-type]  # stub


async def test_the_fake_serves_the_state_as_htx_prints_it(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """Rates with 18 decimals, `funding_time` a string of ms, the deprecated fields null; one
    contract with `contract_code`."""
    fake = await fake_exchange("htx")
    fake.set_market_state(
        "ETH/USDT:USDT",
        mark_price=2_950.5,
        open_interest_coins=1_000.0,
        funding_rate=-0.00005,
        funding_interval_hours=4,
    )
    collector = make_collector(fake, RecordingCore(), ("ETH",))
    exchange = collector.make_exchange()
    try:
        await exchange.load_markets()
        before_ms = int(time.time() * 1000)
        (eth,) = await ADAPTER.read_open_interest(exchange, ["ETH/USDT:USDT"])
        after_ms = int(time.time() * 1000)
        generic: Any = exchange  # ccxt's generic call, untyped
        one = await generic.request(
            "linear-swap-api/v1/swap_batch_funding_rate",
            ["contract", "public"],
            "GET",
            {"contract_code": "ETH-USDT"},
        )
    finally:
        await exchange.close()
    (row,) = one["data"]
    assert set(row) == set(FUNDING_ROW)
    assert (row["contract_code"], row["funding_rate"]) == ("ETH-USDT", "-0.000050000000000000")
    assert (row["estimated_rate"], row["next_funding_time"]) == (None, None)
    assert isinstance(row["funding_time"], str)
    assert isinstance(eth, RawOpenInterest)
    assert eth.context is not None
    context = eth.context()
    assert context.funding_rate == -0.00005
    assert context.next_funding_ms in {
        (now // 14_400_000 + 1) * 14_400_000 for now in (before_ms, after_ms)
    }
