"""OKX swaps, funding and long/short ratios: one ``/public/funding-rate?instId=ANY`` call gives
every swap's funding, whose interval is the step from ``fundingTime`` to ``nextFundingTime``;
one ``/market/index-tickers`` call per quote currency gives the indexes (a swap's ``uly``); the
three contract ratio endpoints give ``[[ts, ratio]]`` newest first, a request per swap and
ratio. The documentation's example answers read exactly, a missing or bad figure rejects the
context and not the open interest, and the fake serves all of it as the pages show it
(https://www.okx.com/docs-v5/en/#public-data-rest-api-get-funding-rate, ...-get-index-tickers,
#trading-statistics-rest-api-get-contract-long-short-ratio and the top-trader ones)."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import ccxt
import pytest

from exporter.collectors.okx import (
    RATIO_CALLS,
    OkxVenue,
    context_fields,
    long_short_row,
    rows_by_id,
)
from exporter.collectors.venue import ContextFields, RawLongShort, RawOpenInterest
from exporter.events import InvalidEventError, Reason
from exporter.fakeexchange.markets import DEFAULT_MARKETS, MarketState
from exporter.fakeexchange.okx import OkxProtocol
from exporter.fakeexchange.protocol import Quote, RestContext
from tests.collector_harness import RecordingCore, make_collector
from tests.venues import offline

if TYPE_CHECKING:
    from exporter.collectors.ccxt_types import Market
    from exporter.fakeexchange.history import FakeHistory
    from tests.conftest import FakeExchangeFactory

ADAPTER = OkxVenue()
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
NOW_MS = 1_791_565_700_000
HOUR_MS = 3_600_000
FIVE_MINUTES_MS = 300_000

# The pages' example rows (funding: BTC-USDT-SWAP, 2025-04-02; index: BTC-USDT).
DOCUMENTED_FUNDING = {
    "formulaType": "noRate",
    "fundingRate": "0.0000182221218054",
    "fundingTime": "1743609600000",
    "impactValue": "",
    "instId": "BTC-USDT-SWAP",
    "instType": "SWAP",
    "interestRate": "",
    "maxFundingRate": "0.00375",
    "method": "current_period",
    "minFundingRate": "-0.00375",
    "nextFundingRate": "",
    "nextFundingTime": "1743638400000",
    "premium": "0.0000910113652644",
    "settFundingRate": "0.0000145824401745",
    "settState": "settled",
    "ts": "1743588686291",
}
DOCUMENTED_INDEX = {
    "instId": "BTC-USDT",
    "idxPx": "43350",
    "high24h": "43649.7",
    "sodUtc0": "43444.1",
    "open24h": "43640.8",
    "low24h": "43261.9",
    "sodUtc8": "43328.7",
    "ts": "1649419644492",
}
# "Get contract long/short ratio": the example answer, as the page prints it.
DOCUMENTED_RATIO = {
    "code": "0",
    "msg": "",
    "data": [["1701417600000", "1.1739"], ["1701417600000", "0.1236"]],
}


def _market(symbol: str, market_id: str, uly: str) -> Market:
    """A swap as ccxt's okx parses /public/instruments, its row (``uly``) in ``info``."""
    return {**offline.ccxt_market(symbol, market_id), "info": {"instId": market_id, "uly": uly}}


BTC_SWAP = _market(BTC, "BTC-USDT-SWAP", "BTC-USDT")
BTC_INVERSE = _market("BTC/USD:BTC", "BTC-USD-SWAP", "BTC-USD")


def _answer(*rows: object) -> dict[str, Any]:
    return {"code": "0", "msg": "", "data": list(rows)}


def _no_history(symbol: str) -> FakeHistory:
    raise AssertionError(f"no history is asked for: {symbol}")


STATE = MarketState(
    mark_price=2_950.5,
    open_interest_coins=123_456.7,
    ts_ms=NOW_MS,
    index_price=2_948.0,
    funding_rate=0.000125,
    predicted_funding_rate=-0.00005,
    funding_interval_hours=4,
    long_short={"accounts": 1.8125, "top_accounts": 0.875, "top_positions": 1.25},
)


def _get(path: str, state: MarketState = STATE, /, **query: str) -> Any:
    """The fake's JSON answer to ``path?query`` with ETH-USDT-SWAP in ``state``."""
    fake = OkxProtocol(DEFAULT_MARKETS)
    quote = Quote(fake.market(ETH), state)
    reply = fake.rest_routes()[path](RestContext(query, [quote], NOW_MS, _no_history))
    return json.loads(reply.body)


# --- funding and index price ----------------------------------------------------------------


def test_the_documented_rows_read_exactly() -> None:
    """The interval is the step between the two times (8 h here); no predicted rate."""
    context = context_fields(
        rows_by_id(_answer(DOCUMENTED_FUNDING)), rows_by_id(_answer(DOCUMENTED_INDEX)), BTC_SWAP
    )
    assert context == ContextFields(
        index_price=43_350.0,
        funding_rate=0.0000182221218054,
        predicted_funding_rate=None,
        next_funding_ms=1_743_609_600_000,
        funding_interval_s=8 * 3600.0,
    )


@pytest.mark.parametrize(("hours", "seconds"), [(1, 3600.0), (2, 7200.0), (4, 14_400.0)])
def test_a_shortened_interval_is_read_from_the_two_times(hours: int, seconds: float) -> None:
    """OKX moves volatile swaps from 8 h to 6, 4, 2 or 1 h and says to read the step."""
    row = DOCUMENTED_FUNDING | {"nextFundingTime": str(1_743_609_600_000 + hours * HOUR_MS)}
    context = context_fields(
        rows_by_id(_answer(row)), rows_by_id(_answer(DOCUMENTED_INDEX)), BTC_SWAP
    )
    assert context.funding_interval_s == seconds


@pytest.mark.parametrize(
    ("funding", "index", "reason", "detail"),
    [
        (_answer(), _answer(DOCUMENTED_INDEX), Reason.MISSING_FIELD, "no funding rate of"),
        (_answer(DOCUMENTED_FUNDING), _answer(), Reason.MISSING_FIELD, "no index ticker of"),
        (
            _answer(DOCUMENTED_FUNDING | {"fundingRate": ""}),
            _answer(DOCUMENTED_INDEX),
            Reason.MISSING_FIELD,
            "fundingRate",
        ),
        (
            _answer(DOCUMENTED_FUNDING | {"nextFundingTime": "soon"}),
            _answer(DOCUMENTED_INDEX),
            Reason.WRONG_TYPE,
            "nextFundingTime",
        ),
        (
            _answer(DOCUMENTED_FUNDING),
            _answer(DOCUMENTED_INDEX | {"idxPx": None}),
            Reason.MISSING_FIELD,
            "idxPx",
        ),
        ({"code": "0", "data": {}}, _answer(DOCUMENTED_INDEX), Reason.MALFORMED, "data="),
        (_answer(DOCUMENTED_FUNDING), "oops", Reason.MALFORMED, "data="),
    ],
)
def test_a_missing_or_bad_figure_is_rejected_by_name(
    funding: object, index: object, reason: Reason, detail: str
) -> None:
    with pytest.raises(InvalidEventError) as caught:
        context_fields(rows_by_id(funding), rows_by_id(index), BTC_SWAP)
    assert caught.value.reason is reason
    assert caught.value.detail.startswith(detail)


async def test_one_funding_call_and_one_index_call_per_quote_currency() -> None:
    """Every swap's funding in one ANY call; the USDT and the inverse (USD) swap's indexes
    in one call each. A funding answer without a swap costs that swap its context only."""
    asked: list[tuple[str, dict[str, object]]] = []

    def call(name: str, answer: dict[str, Any]) -> Any:
        async def answered(params: dict[str, object]) -> dict[str, Any]:
            asked.append((name, params))
            return answer

        return answered

    inverse_index = DOCUMENTED_INDEX | {"instId": "BTC-USD", "idxPx": "43348.5"}

    async def open_interests(symbols: None, params: dict[str, str]) -> dict[str, Any]:
        assert (symbols, params) == (None, {"instType": "SWAP"})
        rows = {"oiCcy": "555.55", "oiUsd": "50000", "ts": "1597026383085"}
        return {BTC: {"info": rows}, "BTC/USD:BTC": {"info": rows}}

    async def mark_prices(symbols: None, params: dict[str, str]) -> dict[str, Any]:
        assert (symbols, params) == (None, {"instType": "SWAP"})
        return {s: {"info": {"markPx": "90"}} for s in (BTC, "BTC/USD:BTC")}

    exchange: Any = SimpleNamespace(
        markets={BTC: BTC_SWAP, "BTC/USD:BTC": BTC_INVERSE},
        fetch_open_interests=open_interests,
        fetch_mark_prices=mark_prices,
        publicGetPublicFundingRate=call("funding", _answer(DOCUMENTED_FUNDING)),
        publicGetMarketIndexTickers=call("index", _answer(DOCUMENTED_INDEX, inverse_index)),
    )
    items = await ADAPTER.read_open_interest(exchange, None)
    assert asked == [
        ("funding", {"instId": "ANY"}),
        ("index", {"quoteCcy": "USD"}),
        ("index", {"quoteCcy": "USDT"}),
    ]
    linear, inverse = items
    assert isinstance(linear, RawOpenInterest)
    assert isinstance(inverse, RawOpenInterest)
    assert linear.context is not None
    assert inverse.context is not None
    assert linear.context().index_price == 43_350.0
    assert inverse.read() == (555.55, 50_000.0, 90.0, 1_597_026_383_085)
    with pytest.raises(InvalidEventError) as caught:
        inverse.context()
    assert caught.value.detail == "no funding rate of BTC-USD-SWAP"


def test_the_fake_prints_funding_and_index_as_the_pages_do() -> None:
    """The documented fields in their order, every number a string; `nextFundingRate` empty
    (OKX dropped the `next_period` method), the state's predicted rate not served."""
    (row,) = _get("/api/v5/public/funding-rate", instId="ANY")["data"]
    assert list(row) == list(DOCUMENTED_FUNDING)
    next_funding = (NOW_MS // (4 * HOUR_MS) + 1) * 4 * HOUR_MS
    assert {k: row[k] for k in ("instId", "fundingRate", "fundingTime", "nextFundingTime")} == {
        "instId": "ETH-USDT-SWAP",
        "fundingRate": "0.000125",
        "fundingTime": str(next_funding),
        "nextFundingTime": str(next_funding + 4 * HOUR_MS),
    }
    assert (row["nextFundingRate"], row["method"], row["ts"]) == ("", "current_period", str(NOW_MS))
    for rate, printed in ((-0.00005, "-0.00005"), (1e-8, "0.00000001"), (0.0001, "0.0001")):
        (row,) = _get(
            "/api/v5/public/funding-rate", replace(STATE, funding_rate=rate), instId="ETH-USDT-SWAP"
        )["data"]
        assert row["fundingRate"] == printed
    (index,) = _get("/api/v5/market/index-tickers", quoteCcy="USDT")["data"]
    assert list(index) == list(DOCUMENTED_INDEX)
    assert (index["instId"], index["idxPx"], index["ts"]) == ("ETH-USDT", "2948", str(NOW_MS))
    assert _get("/api/v5/market/index-tickers", instId="ETH-USDT")["data"] == [index]
    assert _get("/api/v5/market/index-tickers", quoteCcy="USD")["data"] == []


@pytest.mark.parametrize(
    ("path", "query", "code"),
    [
        ("/api/v5/public/funding-rate", {}, "50014"),
        ("/api/v5/public/funding-rate", {"instId": "FOO-USDT-SWAP"}, "51001"),
        ("/api/v5/market/index-tickers", {}, "50014"),
        ("/api/v5/market/index-tickers", {"instId": "FOO-USDT"}, "51001"),
    ],
)
def test_the_fake_refuses_what_okx_refuses(path: str, query: dict[str, str], code: str) -> None:
    assert _get(path, **query)["code"] == code


# --- long/short ratios ----------------------------------------------------------------------


def test_the_ratio_of_the_docs_example_is_its_first_row() -> None:
    assert long_short_row(DOCUMENTED_RATIO) == (1.1739, 1_701_417_600_000)


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (_answer(), Reason.MISSING_FIELD),
        ({"code": "0"}, Reason.MISSING_FIELD),
        (_answer({"ts": "1", "ratio": "1"}), Reason.WRONG_TYPE),
        (_answer(["1701417600000"]), Reason.WRONG_TYPE),
        (_answer(["1701417600000", ""]), Reason.MISSING_FIELD),
        (_answer(["", "1.1"]), Reason.MISSING_FIELD),
        (_answer(["1701417600000", "x"]), Reason.WRONG_TYPE),
    ],
)
def test_an_answer_without_a_ratio_is_rejected(response: object, reason: Reason) -> None:
    with pytest.raises(InvalidEventError) as caught:
        long_short_row(response)
    assert caught.value.reason is reason


async def test_a_request_per_swap_and_ratio_and_an_unknown_swap_stands_alone() -> None:
    asked: list[tuple[str, dict[str, object]]] = []

    def call(method: str) -> Any:
        async def answered(params: dict[str, object]) -> dict[str, Any]:
            asked.append((method, params))
            if params["instId"] == "ETH-USDT-SWAP":
                raise ccxt.BadSymbol('okx {"code":"51001","msg":"Instrument ID does not exist"}')
            return DOCUMENTED_RATIO

        return answered

    eth = _market(ETH, "ETH-USDT-SWAP", "ETH-USDT")
    exchange: Any = SimpleNamespace(
        markets={BTC: BTC_SWAP, ETH: eth}, **{m: call(m) for m in RATIO_CALLS.values()}
    )
    items = await ADAPTER.read_positioning(exchange, [BTC, ETH])
    params = [
        {"instId": i, "period": "5m", "limit": "1"} for i in ("BTC-USDT-SWAP", "ETH-USDT-SWAP")
    ]
    assert asked == [(m, p) for p in params for m in RATIO_CALLS.values()]
    read = [(i.source, i.read()) for i in items[:3] if isinstance(i, RawLongShort)]
    assert read == [(s, (1.1739, 1_701_417_600_000)) for s in RATIO_CALLS]
    assert [i.reason for i in items[3:] if isinstance(i, InvalidEventError)] == [
        Reason.UNKNOWN_SYMBOL
    ] * 3


def test_the_positioning_budget_is_half_of_5_requests_per_2_s() -> None:
    """Three requests per swap at 1.25 a second (the rule is per IP and instrument; counted
    per IP to be safe); the 60 s shortest interval covers 25 swaps."""
    assert ADAPTER.min_positioning_interval(25) == pytest.approx(60.0)
    assert ADAPTER.POSITIONING == ("accounts", "top_accounts", "top_positions")
    assert ADAPTER.POSITIONING_PERIOD == "5m"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/api/v5/rubik/stat/contracts/long-short-account-ratio-contract", "accounts"),
        (
            "/api/v5/rubik/stat/contracts/long-short-account-ratio-contract-top-trader",
            "top_accounts",
        ),
        (
            "/api/v5/rubik/stat/contracts/long-short-position-ratio-contract-top-trader",
            "top_positions",
        ),
    ],
)
def test_the_fake_serves_each_ratio_on_the_period_grid(path: str, kind: str) -> None:
    rows = _get(path, instId="ETH-USDT-SWAP", period="5m")["data"]
    assert len(rows) == 100  # OKX's default page
    newest = NOW_MS // FIVE_MINUTES_MS * FIVE_MINUTES_MS
    printed = {"accounts": "1.8125", "top_accounts": "0.875", "top_positions": "1.25"}[kind]
    assert rows[:2] == [[str(newest), printed], [str(newest - FIVE_MINUTES_MS), printed]]
    one = _get(path, instId="ETH-USDT-SWAP", period="1H", limit="1")["data"]
    assert one == [[str(NOW_MS // HOUR_MS * HOUR_MS), printed]]
    window = _get(path, instId="ETH-USDT-SWAP", end=str(newest), begin=str(newest - 900_000))
    assert [int(r[0]) for r in window["data"]] == [newest - 300_000, newest - 600_000]
    assert long_short_row(_get(path, instId="ETH-USDT-SWAP")) == (float(printed), newest)
    lacking = replace(STATE, long_short={})
    assert _get(path, lacking, instId="ETH-USDT-SWAP")["data"] == []


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({}, "50014"),
        ({"instId": "FOO-USDT-SWAP"}, "51001"),
        ({"instId": "ETH-USDT-SWAP", "period": "1D"}, "51000"),  # UTC+8-anchored: not served
        ({"instId": "ETH-USDT-SWAP", "limit": "101"}, "51000"),
    ],
)
def test_the_fake_refuses_ratio_queries_okx_refuses(query: dict[str, str], code: str) -> None:
    path = "/api/v5/rubik/stat/contracts/long-short-account-ratio-contract"
    assert _get(path, **query)["code"] == code


# --- ccxt against the fake ------------------------------------------------------------------


async def test_ccxt_reads_the_context_and_the_ratios_from_the_fake(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """A poll of two swaps is one funding (ANY) and one index (USDT) call beside open interest
    and mark price; a one-hour interval and the rate arrive exactly; ccxt's own parsers agree
    with the fake (funding interval "1h", the accounts' ratio history)."""
    fake = await fake_exchange("okx")
    fake.set_market_state(
        BTC,
        mark_price=81_234.5,
        open_interest_coins=12_345.6,
        index_price=81_200.1,
        funding_rate=-0.0003,
        funding_interval_hours=1,
        long_short={"accounts": 0.6, "top_accounts": 2.5, "top_positions": 1.75},
    )
    exchange = make_collector(fake, RecordingCore(), ("BTC", "ETH")).make_exchange()
    try:
        await exchange.load_markets()
        fake.rest_requests.clear()
        btc, eth = await ADAPTER.read_open_interest(exchange, [BTC, ETH])
        assert dict(fake.rest_requests) == {
            "/api/v5/public/open-interest": 1,
            "/api/v5/public/mark-price": 1,
            "/api/v5/public/funding-rate": 1,
            "/api/v5/market/index-tickers": 1,
        }
        assert isinstance(btc, RawOpenInterest)
        assert isinstance(eth, RawOpenInterest)
        assert btc.context is not None
        assert eth.context is not None
        context = btc.context()
        assert (context.index_price, context.funding_rate, context.funding_interval_s) == (
            81_200.1,
            -0.0003,
            3600.0,
        )
        assert context.next_funding_ms is not None
        assert context.next_funding_ms % HOUR_MS == 0
        assert eth.context().funding_interval_s == 8 * 3600.0  # the fake's default
        ratios = await ADAPTER.read_positioning(exchange, [BTC])
        read = {r.source: r.read()[0] for r in ratios if isinstance(r, RawLongShort)}
        assert read == {"accounts": 0.6, "top_accounts": 2.5, "top_positions": 1.75}
        api: Any = exchange
        rates = await api.fetch_funding_rates([BTC])
        assert (rates[BTC]["fundingRate"], rates[BTC]["interval"]) == (-0.0003, "1h")
        history = await api.fetch_long_short_ratio_history(BTC, "5m", None, 3)
        assert [h["longShortRatio"] for h in history] == [0.6, 0.6, 0.6]
    finally:
        await exchange.close()
