"""The fake venues against unmodified ccxt.pro 4.5.x: if ccxt is happy, the wire format is right.

Per-venue differences (which ccxt call, how a liquidation's info maps to coins and side, which
error a refused subscribe raises) live in the `VenueCase` table, so every test runs the same
steps on all three venues.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
import ccxt
import ccxt.pro
import pytest

from exporter.fakeexchange import DEFAULT_MARKETS, FakeExchange, FakeMarket, SentFrame

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence

    from tests.conftest import FakeExchangeFactory

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
CELO = "CELO/USDT:USDT"
FIXTURES = Path(__file__).parent / "fixtures" / "ws"
TS = 1_791_565_600_000

Row = tuple[str, str, float, float]
"""(symbol, position side, price, coins) as a collector must derive it from ccxt's `info`."""


# --- per-venue knowledge, as data ------------------------------------------------------------


async def _watch_binance(ex: Any, symbols: Sequence[str] | None) -> list[Any]:
    return list(await ex.watch_liquidations_for_symbols(list(symbols) if symbols else None))


async def _watch_bybit(ex: Any, symbols: Sequence[str] | None) -> list[Any]:
    results: list[Any] = await asyncio.gather(
        *(ex.watch_liquidations(s) for s in symbols or [BTC]),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [liq for result in results for liq in result]


async def _watch_okx(ex: Any, symbols: Sequence[str] | None) -> list[Any]:
    del symbols  # OKX has one all-swaps subscription
    return list(await ex.watch_liquidations_for_symbols(None))


async def _state_binance(ex: Any, symbol: str) -> tuple[float, float]:
    oi = await ex.fetch_open_interest(symbol)
    mark = await ex.fetch_mark_price(symbol)
    marks = await ex.fetch_mark_prices()
    assert marks[symbol]["markPrice"] == mark["markPrice"]
    assert len(marks) == len(ex.markets)
    return oi["openInterestAmount"], mark["markPrice"]


async def _state_bybit(ex: Any, symbol: str) -> tuple[float, float]:
    tickers = await ex.fetch_tickers()
    assert len(tickers) == len(ex.markets)
    ticker = tickers[symbol]
    assert float(ticker["info"]["openInterestValue"]) == pytest.approx(
        float(ticker["info"]["openInterest"]) * ticker["markPrice"],
        rel=1e-6,
    )
    return float(ticker["info"]["openInterest"]), ticker["markPrice"]


async def _state_okx(ex: Any, symbol: str) -> tuple[float, float]:
    ois = await ex.fetch_open_interests(None, {"instType": "SWAP"})
    marks = await ex.fetch_mark_prices()
    oi = ois[symbol]
    coins = oi["openInterestAmount"] * ex.market(symbol)["contractSize"]
    assert float(oi["info"]["oiCcy"]) == pytest.approx(coins)
    assert oi["openInterestValue"] == pytest.approx(coins * marks[symbol]["markPrice"], rel=1e-6)
    return coins, marks[symbol]["markPrice"]


def _row_binance(_ex: Any, liq: Any) -> Row:
    info = liq["info"]
    assert liq["contracts"] == float(info["l"])  # ccxt's contracts is the last fill, not z
    side = "long" if info["S"] == "SELL" else "short"
    return liq["symbol"], side, float(info["ap"]), float(info["z"])


def _row_bybit(_ex: Any, liq: Any) -> Row:
    info = liq["info"]
    if "v" in info:
        side = "long" if info["S"] == "Buy" else "short"
        return liq["symbol"], side, float(info["p"]), float(info["v"])
    side = "long" if info["side"] == "Buy" else "short"  # retired liquidation.<ID> topic
    return liq["symbol"], side, float(info["price"]), float(info["size"])


def _row_okx(ex: Any, liq: Any) -> Row:
    detail = liq["info"]["details"][0]
    coins = float(detail["sz"]) * ex.market(liq["symbol"])["contractSize"]
    return liq["symbol"], detail["posSide"], float(detail["bkPx"]), coins


@dataclass(frozen=True)
class VenueCase:
    """What differs between venues, from a ccxt user's point of view."""

    venue: Literal["binance", "bybit", "okx"]
    ws_path: str
    load_markets_requests: Counter[str]
    probe_path: str
    watch: Callable[[Any, Sequence[str] | None], Coroutine[Any, Any, list[Any]]]
    state: Callable[[Any, str], Awaitable[tuple[float, float]]]
    row: Callable[[Any, Any], Row]
    reject_error: type[Exception] | None
    """ccxt's exception for a refused subscribe; None: the watch hangs (Binance)."""
    rate_limit_error: type[Exception]
    """ccxt's exception for HTTP 429: Binance raises DDoSProtection, a sibling (not a parent)
    of RateLimitExceeded in ccxt 4.5, so a collector must catch both."""


CASES = {
    "binance": VenueCase(
        venue="binance",
        ws_path="/ws",
        load_markets_requests=Counter({"/fapi/v1/exchangeInfo": 1}),
        probe_path="/fapi/v1/premiumIndex",
        watch=_watch_binance,
        state=_state_binance,
        row=_row_binance,
        reject_error=None,
        rate_limit_error=ccxt.DDoSProtection,
    ),
    "bybit": VenueCase(
        venue="bybit",
        ws_path="/v5/public/linear",
        load_markets_requests=Counter({"/v5/market/instruments-info": 2}),  # + status=PreLaunch
        probe_path="/v5/market/tickers",
        watch=_watch_bybit,
        state=_state_bybit,
        row=_row_bybit,
        reject_error=ccxt.ExchangeError,
        rate_limit_error=ccxt.RateLimitExceeded,
    ),
    "okx": VenueCase(
        venue="okx",
        ws_path="/ws/v5/public",
        load_markets_requests=Counter({"/api/v5/public/instruments": 1}),
        probe_path="/api/v5/public/mark-price",
        watch=_watch_okx,
        state=_state_okx,
        row=_row_okx,
        reject_error=ccxt.BadRequest,
        rate_limit_error=ccxt.RateLimitExceeded,
    ),
}
RecordedFixture = tuple[str, int, Row]
"""(file, liquidation rows in it, one row checked by hand against the raw frame)."""
RECORDED: dict[str, RecordedFixture] = {
    "binance": ("binance_usdm.jsonl", 5, ("MANTA/USDT:USDT", "long", 0.0722187, 2049.1)),
    "bybit": ("bybit_linear.jsonl", 5, ("ROSE/USDT:USDT", "short", 0.04499, 20_000.0)),
    "okx": ("okx_swap.jsonl", 2, (CELO, "short", 0.09583, 199_790.0)),  # 19979 contracts x 10
}


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> VenueCase:
    return CASES[request.param]


@pytest.fixture
async def fake(case: VenueCase, fake_exchange: FakeExchangeFactory) -> FakeExchange:
    return await fake_exchange(case.venue)


def make_client(fake: FakeExchange, **overrides: Any) -> Any:
    """A ccxt.pro instance of the venue's class, pointed at the fake.

    `timeout_on_exit` is ccxt's 250 ms grace for TLS shutdown on close(); loopback has no TLS.
    """
    config = {**fake.ccxt_config(), "timeout_on_exit": 0, **overrides}
    return getattr(ccxt.pro, fake.ccxt_id)(config)


@pytest.fixture
async def client(fake: FakeExchange) -> AsyncIterator[Any]:
    ex = make_client(fake)
    try:
        yield ex
    finally:
        await ex.close()


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Poll until `predicate` holds; TimeoutError after `within` seconds."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 -- ccxt's cache and the counters have no event
            await asyncio.sleep(0.01)


async def cached(ex: Any, count: int) -> list[Any]:
    """ccxt's shared liquidation cache once it holds `count` rows (bursts land only there)."""
    await eventually(lambda: len(ex.liquidations or []) >= count)
    return list(ex.liquidations)


def truth(rows: Sequence[SentFrame]) -> list[Row]:
    return [(r.symbol or "", r.side or "", r.price or 0.0, r.coins or 0.0) for r in rows]


def approx_rows(rows: Sequence[Row]) -> list[Any]:
    return [(s, side, pytest.approx(p), pytest.approx(c)) for s, side, p, c in rows]


# --- REST ----------------------------------------------------------------------------------


async def test_load_markets_requests_only_the_documented_endpoints(
    case: VenueCase,
    fake: FakeExchange,
    client: Any,
) -> None:
    markets = await client.load_markets()
    assert {m.symbol for m in DEFAULT_MARKETS} <= set(markets)
    assert fake.rest_requests == case.load_markets_requests
    btc = markets[BTC]
    assert (btc["swap"], btc["linear"], btc["active"]) == (True, True, True)
    assert btc["precision"]["price"] == pytest.approx(0.1)
    assert btc["precision"]["amount"] == pytest.approx(0.01 if case.venue == "okx" else 0.001)


@pytest.mark.parametrize("case", [CASES["okx"]], ids=["okx"])
async def test_okx_contract_sizes_come_from_ctval(client: Any) -> None:
    markets = await client.load_markets()
    sizes = {
        s: markets[s]["contractSize"] for s in (BTC, ETH, "SOL/USDT:USDT", "XRP/USDT:USDT", CELO)
    }
    assert sizes == {BTC: 0.01, ETH: 0.1, "SOL/USDT:USDT": 1, "XRP/USDT:USDT": 100, CELO: 10}


async def test_open_interest_and_mark_price_follow_set_market_state(
    case: VenueCase,
    fake: FakeExchange,
    client: Any,
) -> None:
    fake.set_market_state(ETH, open_interest_coins=1_234_567.8, mark_price=3_012.34)
    coins, mark = await case.state(client, ETH)
    assert coins == pytest.approx(1_234_567.8)
    assert mark == pytest.approx(3_012.34)


async def test_custom_market_table(case: VenueCase, fake_exchange: FakeExchangeFactory) -> None:
    doge = FakeMarket("DOGE", "0.00001", "1", "1000", "0.01", 50, 0.17, 9e9)
    fake = await fake_exchange(case.venue, markets=[doge])
    ex = make_client(fake)
    try:
        markets = await ex.load_markets()
        assert list(markets) == ["DOGE/USDT:USDT"]
        coins, mark = await case.state(ex, "DOGE/USDT:USDT")
        assert coins == pytest.approx(9e9)
        assert mark == pytest.approx(0.17)
    finally:
        await ex.close()


@pytest.mark.parametrize("status", [429, 418, 503])
async def test_fail_rest_raises_ccxts_error_then_recovers(
    case: VenueCase,
    fake: FakeExchange,
    client: Any,
    status: int,
) -> None:
    error = {
        429: case.rate_limit_error,
        418: ccxt.DDoSProtection,
        503: ccxt.ExchangeNotAvailable,
    }[status]
    await client.load_markets()
    fake.fail_rest(status, count=1)
    with pytest.raises(error):
        await case.state(client, BTC)
    coins, _ = await case.state(client, BTC)
    assert coins == pytest.approx(DEFAULT_MARKETS[0].open_interest_coins)


@pytest.mark.parametrize("case", [CASES["bybit"]], ids=["bybit"])
async def test_bybit_403_is_a_rate_limit(fake: FakeExchange, client: Any) -> None:
    await client.load_markets()
    fake.fail_rest(403)
    with pytest.raises(ccxt.RateLimitExceeded):
        await client.fetch_tickers()


async def test_fail_rest_body_header_and_prefix(case: VenueCase, fake: FakeExchange) -> None:
    fake.fail_rest(429, count=2, retry_after=7, path_prefix=case.probe_path)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{fake.rest_url}/elsewhere") as other:
            assert other.status == 404  # not under the prefix: unknown path, not a fault
        for _ in range(2):
            async with http.get(f"{fake.rest_url}{case.probe_path}") as failed:
                assert failed.status == 429
                assert failed.headers["Retry-After"] == "7"
                body = await failed.json()
        async with http.get(
            f"{fake.rest_url}{case.probe_path}", params={"category": "linear", "instType": "SWAP"}
        ) as ok:
            assert ok.status == 200
    assert fake.rest_requests[case.probe_path] == 3
    assert fake.rest_requests["/elsewhere"] == 1
    expected = {"binance": ("code", -1003), "bybit": ("retCode", 10006), "okx": ("code", "50011")}
    key, value = expected[case.venue]
    assert body[key] == value


async def test_rest_delay_stalls_answers(case: VenueCase, fake: FakeExchange) -> None:
    ex = make_client(fake, timeout=150)
    try:
        await ex.load_markets()
        fake.rest_delay = 0.4
        with pytest.raises(ccxt.RequestTimeout):
            await case.state(ex, BTC)
        fake.rest_delay = 0.05
        started = time.monotonic()
        await case.state(ex, BTC)
        assert time.monotonic() - started >= 0.05
    finally:
        await ex.close()


# --- history (the heatmap backfill's endpoints) --------------------------------------------

STEP_MS = 300_000
HISTORY_COINS = {
    "binance": "openInterestAmount",
    "bybit": "openInterestAmount",
    "okx": "baseVolume",
}
"""ccxt's field with the open interest in coins: OKX's `openInterestAmount` is contracts."""


async def test_history_defaults_to_the_packaged_path_ending_now(
    case: VenueCase, fake: FakeExchange, client: Any
) -> None:
    fake.set_market_state(ETH, open_interest_coins=1_234_567.8, mark_price=3_012.34)
    candles = await client.fetch_ohlcv(ETH, "5m", None, 3)
    interest = await client.fetch_open_interest_history(ETH, "5m", None, 3)
    now_ms = int(time.time() * 1000)
    times = [c[0] for c in candles]
    assert times == [i["timestamp"] for i in interest]
    assert times == [times[-1] - 2 * STEP_MS, times[-1] - STEP_MS, times[-1]]
    assert 0 <= now_ms - times[-1] < 2 * STEP_MS  # the last row is the candle open now
    assert candles[-1][4] == pytest.approx(3_012.34, abs=0.01)
    assert interest[-1][HISTORY_COINS[case.venue]] == pytest.approx(1_234_567.8, rel=1e-9)
    assert all(low <= min(o, c) <= max(o, c) <= high for _, o, high, low, c, _ in candles)
    served = fake.history(ETH)
    assert len(served) == 4406  # the whole packaged path, about 15 days
    assert served.close[-3] == pytest.approx(candles[0][4], abs=0.01)


def test_set_history_checks_its_columns() -> None:
    fake = FakeExchange("okx")
    columns = {"open_interest_coins": [1.0, 2.0], "open": [1.0] * 2, "high": [2.0] * 2}
    with pytest.raises(KeyError, match="NOPE"):
        fake.set_history(
            "NOPE/USDT:USDT", timestamps_ms=[0, 1], low=[1.0] * 2, close=[1, 1], **columns
        )
    with pytest.raises(ValueError, match="ascending"):
        fake.set_history(BTC, timestamps_ms=[1, 0], low=[1.0] * 2, close=[1, 1], **columns)
    with pytest.raises(ValueError, match="one length"):
        fake.set_history(BTC, timestamps_ms=[0, 1], low=[1.0], close=[1, 1], **columns)


@pytest.mark.parametrize("case", [CASES["binance"]], ids=["binance"])
async def test_binance_open_interest_history_reaches_back_30_days(client: Any) -> None:
    now_ms = int(time.time() * 1000)
    await client.fetch_open_interest_history(BTC, "5m", now_ms - 29 * 86_400_000, 10)
    with pytest.raises(ccxt.BadRequest, match="startTime"):
        await client.fetch_open_interest_history(BTC, "5m", now_ms - 31 * 86_400_000, 10)


@pytest.mark.parametrize("case", [CASES["bybit"]], ids=["bybit"])
async def test_bybit_open_interest_pages_by_cursor(fake: FakeExchange, client: Any) -> None:
    await client.load_markets()
    served = fake.history(BTC)
    since, until = int(served.ts_ms[-700]), int(served.ts_ms[-1])
    fake.rest_requests.clear()
    rows = await client.fetch_open_interest_history(
        BTC, "5m", since, None, {"paginate": True, "until": until}
    )
    # ccxt follows nextPageCursor (200 rows a page) and hands the pages back newest first.
    assert [r["timestamp"] for r in rows] == served.ts_ms[-700:][::-1].tolist()
    assert fake.rest_requests["/v5/market/open-interest"] == 4


@pytest.mark.parametrize("case", [CASES["okx"]], ids=["okx"])
async def test_okx_recent_and_history_candles(fake: FakeExchange, client: Any) -> None:
    await client.load_markets()
    old = int(fake.history(BTC).ts_ms[-2000])
    assert await client.fetch_ohlcv(BTC, "5m", old, 100, {"type": "Candles"}) == []
    older = await client.fetch_ohlcv(BTC, "5m", old, 100, {"type": "HistoryCandles"})
    assert [c[0] for c in older] == fake.history(BTC).ts_ms[-2000:-1900].tolist()
    async with aiohttp.ClientSession() as http:
        url = f"{fake.rest_url}/api/v5/market/candles"
        params = {"instId": "BTC-USDT-SWAP", "bar": "5m", "limit": "2"}
        async with http.get(url, params=params) as answer:
            newest, previous = (await answer.json())["data"]
    assert (newest[8], previous[8]) == ("0", "1")  # the live candle is not confirmed yet


# --- WebSocket -----------------------------------------------------------------------------


async def test_watch_receives_published_liquidations(
    case: VenueCase,
    fake: FakeExchange,
    client: Any,
) -> None:
    watch = asyncio.create_task(case.watch(client, [BTC, ETH]))
    await fake.wait_subscribed([BTC, ETH])
    sent = fake.publish_batch(
        [
            (BTC, "long", 82_001.5, 0.25, TS),
            (ETH, "short", 2_901.25, 3.5, TS + 1),
            (BTC, "short", 81_990.0, 1.2, TS + 2),
            (ETH, "long", 2_899.0, 0.7, TS + 3),
        ]
    )
    assert [s.symbol for s in sent] == [BTC, ETH, BTC, ETH]
    assert all(s.receivers == 1 for s in sent)
    assert sent[0].usd == pytest.approx(82_001.5 * 0.25)
    await asyncio.wait_for(watch, 5)
    received = [case.row(client, liq) for liq in await cached(client, len(sent))]
    assert received == approx_rows(truth(fake.sent))  # the log is in wire order


async def test_batches_pack_per_symbol_like_the_venue(case: VenueCase, fake: FakeExchange) -> None:
    sent = fake.publish_batch([(BTC, "long", 82_000.0, 0.1, TS), (BTC, "long", 82_000.0, 0.2, TS)])
    packed = case.venue != "binance"  # Binance pushes one forceOrder event per liquidation
    assert (sent[0].frame_id == sent[1].frame_id) is packed
    assert sent[0].receivers == 0  # nobody subscribed: logged anyway, delivered nowhere
    assert list(fake.sent) == sent


@pytest.mark.parametrize("case", [CASES["binance"]], ids=["binance"])
async def test_binance_all_market_stream_and_ccxt_url(fake: FakeExchange, client: Any) -> None:
    watch = asyncio.create_task(client.watch_liquidations_for_symbols(None))
    await fake.wait_subscribed()
    assert json.loads(fake.received[-1])["params"] == ["!forceOrder@arr"]
    assert list(client.clients) == [f"{fake.ws_url}/market/ws/0"]
    fake.publish_liquidation(CELO, "long", 0.0958, 20_000, TS)
    (liq,) = await asyncio.wait_for(watch, 5)
    assert liq["symbol"] == CELO
    assert liq["info"]["z"] == "20000"
    assert liq["contracts"] == 2_400  # the last fill `l`: trusting ccxt under-counts


async def test_fixture_frames_replay_through_ccxt(
    case: VenueCase,
    fake: FakeExchange,
    client: Any,
) -> None:
    file, count, known_row = RECORDED[case.venue]
    lines = (FIXTURES / file).read_text().splitlines()
    watch = asyncio.create_task(case.watch(client, [BTC]))
    await fake.wait_subscribed([BTC])
    for line in lines:
        await fake.send_raw(line)
    rows = [r for r in fake.sent if r.symbol is not None]
    assert len(rows) == count  # Bybit's pong decodes to nothing
    assert approx_rows([known_row])[0] in truth(rows)
    assert all(r.receivers == 1 for r in fake.sent)
    await asyncio.wait_for(watch, 5)
    received = [case.row(client, liq) for liq in await cached(client, len(rows))]
    assert received == approx_rows(truth(rows))


async def test_subscribe_reject_uses_the_venues_error(
    case: VenueCase,
    fake: FakeExchange,
    client: Any,
) -> None:
    fake.subscribe_mode = "reject"
    watch = case.watch(client, [BTC])
    if case.reject_error is None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(watch, 1.0)
    else:
        with pytest.raises(case.reject_error):
            await asyncio.wait_for(watch, 5)
    assert fake.subscriptions_total >= 1
    with pytest.raises(TimeoutError):
        await fake.wait_subscribed(timeout=0.05)


async def test_subscribe_ignore_never_answers(
    case: VenueCase,
    fake: FakeExchange,
    client: Any,
) -> None:
    fake.subscribe_mode = "ignore"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(case.watch(client, [BTC]), 0.5)
    assert fake.subscriptions_total == 1
    assert fake.connections_total == 1


async def test_drop_connections_fails_the_watch_and_the_next_watch_resubscribes(
    case: VenueCase,
    fake: FakeExchange,
    client: Any,
) -> None:
    watch = asyncio.create_task(case.watch(client, [BTC]))
    await fake.wait_subscribed([BTC])
    assert await fake.drop_connections() == 1
    with pytest.raises(ccxt.NetworkError):
        await asyncio.wait_for(watch, 5)

    again = asyncio.create_task(case.watch(client, [BTC]))
    await fake.wait_subscribed([BTC])
    assert fake.connections_total == 2
    assert fake.subscriptions_total == 2
    fake.publish_liquidation(BTC, "short", 82_100.0, 0.4, TS)
    (liq, *_) = await asyncio.wait_for(again, 5)
    assert [case.row(client, liq)] == approx_rows([(BTC, "short", 82_100.0, 0.4)])


@pytest.mark.parametrize("mode", ["answer", "ignore"])
async def test_keepalive_pings(
    case: VenueCase, fake: FakeExchange, mode: Literal["answer", "ignore"]
) -> None:
    fake.ping_mode = mode
    ex = make_client(fake, streaming={"keepAlive": 150})
    try:
        watch = asyncio.create_task(case.watch(ex, [BTC]))
        await fake.wait_subscribed([BTC])
        if mode == "ignore":
            with pytest.raises(ccxt.RequestTimeout):
                await asyncio.wait_for(watch, 5)
            return
        await eventually(lambda: fake.pings_total >= 4)  # 4 missed pongs would time ccxt out
        assert not watch.done()
        fake.publish_liquidation(BTC, "long", 82_000.0, 0.1, TS)
        await asyncio.wait_for(watch, 5)
    finally:
        await ex.close()


@dataclass(frozen=True)
class RawExchange:
    """Hand-written requests and (subsets of) the venue's answers, incl. what ccxt never sends."""

    subscribe: str
    ack: dict[str, Any]
    unsubscribe: str
    unack: dict[str, Any]
    garbage_answer: dict[str, Any]
    ping: tuple[str, str | dict[str, Any]] | None
    """(request, answer); None where keepalive is protocol-level (Binance)."""
    unknown_topic: tuple[str, dict[str, Any]] | None
    """(request, answer); None where the venue accepts any well-formed stream (Binance)."""


_OKX_ARG = {"channel": "liquidation-orders", "instType": "SWAP"}
RAW = {
    "binance": RawExchange(
        subscribe='{"method":"SUBSCRIBE","params":["btcusdt@forceOrder"],"id":1}',
        ack={"result": None, "id": 1},
        unsubscribe='{"method":"UNSUBSCRIBE","params":["btcusdt@forceOrder"],"id":2}',
        unack={"result": None, "id": 2},
        garbage_answer={
            "error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}
        },
        ping=None,
        unknown_topic=None,
    ),
    "bybit": RawExchange(
        subscribe='{"op":"subscribe","req_id":"1","args":["allLiquidation.BTCUSDT"]}',
        ack={"success": True, "ret_msg": "", "req_id": "1", "op": "subscribe"},
        unsubscribe='{"op":"unsubscribe","req_id":"2","args":["allLiquidation.BTCUSDT"]}',
        unack={"success": True, "req_id": "2", "op": "unsubscribe"},
        garbage_answer={"success": False, "ret_msg": "error:invalid op"},
        ping=(
            '{"op":"ping","req_id":"7"}',
            {"success": True, "ret_msg": "pong", "req_id": "7", "op": "ping"},
        ),
        unknown_topic=(
            '{"op":"subscribe","req_id":"9","args":["allLiquidation.NOPEUSDT"]}',
            {
                "success": False,
                "ret_msg": "Invalid symbol :[allLiquidation.NOPEUSDT]",
                "req_id": "9",
            },
        ),
    ),
    "okx": RawExchange(
        subscribe=json.dumps({"op": "subscribe", "args": [_OKX_ARG]}),
        ack={"event": "subscribe", "arg": _OKX_ARG},
        unsubscribe=json.dumps({"op": "unsubscribe", "args": [_OKX_ARG]}),
        unack={"event": "unsubscribe", "arg": _OKX_ARG},
        garbage_answer={"event": "error", "code": "60012", "msg": "Illegal request: {not json"},
        ping=("ping", "pong"),
        unknown_topic=(
            '{"op":"subscribe","args":[{"channel":"liquidation-orders","instType":"SPOT"}]}',
            {"event": "error", "code": "60018"},
        ),
    ),
}


async def _answer(ws: aiohttp.ClientWebSocketResponse, request: str) -> str | dict[str, Any]:
    await ws.send_str(request)
    text = await ws.receive_str(timeout=2)
    return text if text == "pong" else dict(json.loads(text))


def _contains(answer: str | dict[str, Any], expected: str | dict[str, Any]) -> bool:
    if isinstance(answer, str) or isinstance(expected, str):
        return answer == expected
    return expected.items() <= answer.items()


async def test_raw_client_sees_the_venues_acks_pongs_and_errors(
    case: VenueCase,
    fake: FakeExchange,
) -> None:
    raw = RAW[case.venue]
    url = f"{fake.ws_url}{case.ws_path}"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        assert _contains(await _answer(ws, raw.subscribe), raw.ack)
        await fake.wait_subscribed([BTC], timeout=1)
        sent = fake.publish_liquidation(BTC, "long", 82_000.0, 0.3, TS)
        assert await ws.receive_str(timeout=2) == sent.raw

        assert _contains(await _answer(ws, raw.unsubscribe), raw.unack)
        assert fake.publish_liquidation(BTC, "long", 82_000.0, 0.3, TS).receivers == 0

        assert _contains(await _answer(ws, "{not json"), raw.garbage_answer)
        for exchange in (raw.ping, raw.unknown_topic):
            if exchange is not None:
                assert _contains(await _answer(ws, exchange[0]), exchange[1])

        await fake.send_raw(b"\x00binary")
        assert (await ws.receive(timeout=2)).data == b"\x00binary"
        assert fake.sent[-1].symbol is None
    assert fake.subscriptions_total == (2 if raw.unknown_topic else 1)
    assert fake.pings_total == (1 if raw.ping else 0)


async def test_stop_closes_live_connections(case: VenueCase, fake: FakeExchange) -> None:
    ex = make_client(fake)
    try:
        watch = asyncio.create_task(case.watch(ex, [BTC]))
        await fake.wait_subscribed([BTC])
        started = time.monotonic()
        await fake.stop()
        assert time.monotonic() - started < 2
        with pytest.raises(ccxt.NetworkError):
            await asyncio.wait_for(watch, 5)
    finally:
        await ex.close()


async def test_unknown_symbols_and_venues_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown venue"):
        FakeExchange("mexc")  # type: ignore[arg-type]  # the point: an unknown venue
    fake = FakeExchange("okx")
    with pytest.raises(KeyError, match="NOPE"):
        fake.publish_liquidation("NOPE/USDT:USDT", "long", 1.0, 1.0, TS)
    with pytest.raises(ValueError, match="side"):
        fake.publish_batch([(BTC, "sideways", 1.0, 1.0, TS)])
    with pytest.raises(RuntimeError, match="not started"):
        fake.ccxt_config()
