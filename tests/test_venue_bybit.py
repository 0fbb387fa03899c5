"""Bybit linear: funding and index price come from the tickers row the open interest comes from
(its ``fundingIntervalHour`` before instruments-info's ``fundingInterval``, which ccxt keeps in
the market's ``info``), the accounts' long/short ratio is ``buyRatio / sellRatio`` of the newest
``/v5/market/account-ratio`` row, a request per market, and the fake serves both as Bybit's
documentation shows them (https://bybit-exchange.github.io/docs/v5/market/tickers,
.../v5/market/instrument, .../v5/market/long-short-ratio)."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import ccxt
import pytest

from exporter.collectors.bybit import BybitVenue, account_ratio, ticker_context
from exporter.collectors.venue import ContextFields, RawLongShort, RawOpenInterest
from exporter.events import InvalidEventError, Reason
from exporter.fakeexchange.bybit import BybitProtocol
from exporter.fakeexchange.markets import DEFAULT_MARKETS, MarketState
from exporter.fakeexchange.protocol import Quote, RestContext
from tests.collector_harness import RecordingCore, make_collector
from tests.venues import offline

if TYPE_CHECKING:
    from exporter.collectors.ccxt_types import Market
    from exporter.fakeexchange.history import FakeHistory
    from tests.conftest import FakeExchangeFactory

ADAPTER = BybitVenue()
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
NOW_MS = 1_791_565_700_000
HOUR_MS = 3_600_000


def _market(base: str, funding_minutes: object = 480) -> Market:
    """A linear perpetual as ccxt's bybit parses it, its instruments-info row in ``info``."""
    market = offline.ccxt_market(f"{base}/USDT:USDT", f"{base}USDT")
    return {**market, "info": {"symbol": f"{base}USDT", "fundingInterval": funding_minutes}}


def _no_history(symbol: str) -> FakeHistory:
    raise AssertionError(f"no history is asked for: {symbol}")


def _get(path: str, state: MarketState, **query: str) -> Any:
    """The fake's JSON answer to ``path?query`` with ETHUSDT in ``state``."""
    fake = BybitProtocol(DEFAULT_MARKETS)
    quote = Quote(fake.market(ETH), state)
    reply = fake.rest_routes()[path](RestContext(query, [quote], NOW_MS, _no_history))
    return json.loads(reply.body)


STATE = MarketState(
    mark_price=2_950.5,
    open_interest_coins=123_456.7,
    ts_ms=NOW_MS,
    index_price=2_948.0,
    funding_rate=0.000125,
    predicted_funding_rate=-0.00005,
    funding_interval_hours=4,
    long_short={"accounts": 1.8125},
)


# --- funding and index price ----------------------------------------------------------------


def test_the_fake_prints_funding_and_index_as_bybit_does() -> None:
    """Strings in the tickers row (rates without trailing zeros, times in ms), the interval
    in whole hours there and in minutes, a number, in instruments-info."""
    (row,) = _get("/v5/market/tickers", STATE, category="linear")["result"]["list"]
    next_funding = (NOW_MS // (4 * HOUR_MS) + 1) * 4 * HOUR_MS
    assert {k: row[k] for k in ("indexPrice", "markPrice", "fundingRate", "nextFundingTime")} == {
        "indexPrice": "2948.00",
        "markPrice": "2950.50",
        "fundingRate": "0.000125",
        "nextFundingTime": str(next_funding),
    }
    assert (row["fundingIntervalHour"], row["fundingCap"], row["basisRateYear"]) == (
        "4",
        "0.005",
        "",
    )
    (instrument,) = _get("/v5/market/instruments-info", STATE, category="linear")["result"]["list"]
    assert instrument["fundingInterval"] == 240
    for rate, printed in ((-0.001034, "-0.001034"), (1e-8, "0.00000001"), (0.0001, "0.0001")):
        state = replace(STATE, funding_rate=rate)
        (row,) = _get("/v5/market/tickers", state, category="linear")["result"]["list"]
        assert row["fundingRate"] == printed  # as the docs' examples print them


def test_the_context_of_a_tickers_row() -> None:
    (row,) = _get("/v5/market/tickers", STATE, category="linear")["result"]["list"]
    assert ticker_context(row, _market("ETH")) == ContextFields(
        index_price=2_948.0,
        funding_rate=0.000125,
        predicted_funding_rate=None,
        next_funding_ms=(NOW_MS // (4 * HOUR_MS) + 1) * 4 * HOUR_MS,
        funding_interval_s=4 * 3600.0,
    )


def test_a_dated_futures_row_has_its_index_price_only() -> None:
    """``symbols: all`` reads every tickers row; a dated future's funding fields are empty
    (as in the docs' futures example), which is no funding, not an invalid reading."""
    row = {
        "symbol": "BTCUSDT-26DEC26",
        "indexPrice": "80000.50",
        "fundingRate": "",
        "nextFundingTime": "",
        "fundingIntervalHour": "",
    }
    assert ticker_context(row, _market("BTC")) == ContextFields(index_price=80_000.5)


@pytest.mark.parametrize(
    ("hours", "minutes", "seconds"),
    [
        ("1", 480, 3600.0),  # the row's interval wins: Bybit shortens it live, markets load once
        (None, 480, 8 * 3600.0),  # a row from before 2025-10-23: instruments-info's
        ("", 60, 3600.0),
    ],
)
def test_the_interval_is_the_rows_else_instruments_infos(
    hours: str | None, minutes: int, seconds: float
) -> None:
    row = {"indexPrice": "2948.00", "fundingRate": "0.0001", "nextFundingTime": str(NOW_MS)}
    if hours is not None:
        row["fundingIntervalHour"] = hours
    assert ticker_context(row, _market("ETH", minutes)).funding_interval_s == seconds


@pytest.mark.parametrize(
    ("changes", "reason", "field"),
    [
        ({"fundingRate": "high"}, Reason.WRONG_TYPE, "fundingRate"),
        ({"indexPrice": None}, Reason.MISSING_FIELD, "indexPrice"),
        ({"nextFundingTime": "soon"}, Reason.WRONG_TYPE, "nextFundingTime"),
        ({"fundingIntervalHour": "8h"}, Reason.WRONG_TYPE, "fundingIntervalHour"),
        ({"fundingIntervalHour": None}, Reason.MISSING_FIELD, "fundingInterval"),
    ],
)
def test_a_bad_funding_field_is_rejected_by_name(
    changes: dict[str, object], reason: Reason, field: str
) -> None:
    """Without ``fundingIntervalHour`` the market's ``fundingInterval`` is needed: absent here."""
    good: dict[str, object] = {
        "indexPrice": "2948.00",
        "fundingRate": "0.0001",
        "nextFundingTime": str(NOW_MS),
        "fundingIntervalHour": "8",
    }
    row = {k: v for k, v in (good | changes).items() if v is not None}
    market = {**_market("ETH"), "info": {}}
    with pytest.raises(InvalidEventError) as caught:
        ticker_context(row, market)
    assert caught.value.reason is reason
    assert caught.value.detail.startswith(field)


# --- the accounts' long/short ratio -----------------------------------------------------------


def test_the_ratio_of_the_docs_example_is_its_newest_row() -> None:
    """The page's example answer (period=1h, limit=2): rows newest first."""
    response = {
        "retCode": 0,
        "retMsg": "OK",
        "result": {
            "list": [
                {
                    "symbol": "BTCUSDT",
                    "buyRatio": "0.49",
                    "sellRatio": "0.51",
                    "timestamp": "1696262400000",
                },
                {
                    "symbol": "BTCUSDT",
                    "buyRatio": "0.4927",
                    "sellRatio": "0.5073",
                    "timestamp": "1696258800000",
                },
            ],
            "nextPageCursor": "lastid%3D0%26lasttime%3D1696258800",
        },
        "retExtInfo": {},
        "time": 1731567491688,
    }
    assert account_ratio(response) == (0.49 / 0.51, 1_696_262_400_000)


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ({"retCode": 0, "result": {"list": []}}, Reason.MISSING_FIELD),
        ({"retCode": 0, "result": {}}, Reason.MISSING_FIELD),
        ({"retCode": 0}, Reason.MISSING_FIELD),
        ({"retCode": 0, "result": {"list": ["0.5"]}}, Reason.WRONG_TYPE),
        (
            {"result": {"list": [{"buyRatio": "1", "sellRatio": "0", "timestamp": "1"}]}},
            Reason.NOT_POSITIVE,
        ),
        ({"result": {"list": [{"sellRatio": "0.5", "timestamp": "1"}]}}, Reason.MISSING_FIELD),
        (
            {"result": {"list": [{"buyRatio": "0.5", "sellRatio": "0.5", "timestamp": ""}]}},
            Reason.MISSING_FIELD,
        ),
    ],
)
def test_an_answer_without_a_ratio_is_rejected(response: object, reason: Reason) -> None:
    with pytest.raises(InvalidEventError) as caught:
        account_ratio(response)
    assert caught.value.reason is reason


def test_the_fake_serves_the_ratio_as_shares_on_the_period_grid() -> None:
    answer = _get(
        "/v5/market/account-ratio", STATE, category="linear", symbol="ETHUSDT", period="5min"
    )
    rows = answer["result"]["list"]
    assert len(rows) == 50  # Bybit's default page
    assert rows[0] == {
        "symbol": "ETHUSDT",
        "buyRatio": "0.644444444444",  # 1.8125 / 2.8125
        "sellRatio": "0.355555555556",
        "timestamp": str(NOW_MS // 300_000 * 300_000),
    }
    assert int(rows[1]["timestamp"]) == int(rows[0]["timestamp"]) - 300_000
    ratio, timestamp = account_ratio(answer)
    assert ratio == pytest.approx(1.8125, rel=1e-9)
    assert timestamp == NOW_MS // 300_000 * 300_000
    one = _get(
        "/v5/market/account-ratio",
        STATE,
        category="linear",
        symbol="ETHUSDT",
        period="1h",
        limit="1",
    )
    assert [r["timestamp"] for r in one["result"]["list"]] == [str(NOW_MS // HOUR_MS * HOUR_MS)]


@pytest.mark.parametrize(
    "query",
    [
        {"category": "linear", "symbol": "ETHUSDT", "period": "5m"},  # Bybit says 5min
        {"category": "linear", "symbol": "ETHUSDT", "period": "5min", "limit": "501"},
        {"category": "spot", "symbol": "ETHUSDT", "period": "5min"},
        {"category": "inverse", "symbol": "ETHUSDT", "period": "5min"},
        {"category": "linear", "symbol": "FOOUSDT", "period": "5min"},
    ],
)
def test_the_fake_refuses_what_bybit_refuses(query: dict[str, str]) -> None:
    """retCode 10001 with HTTP 200: ccxt raises BadRequest."""
    answer = _get("/v5/market/account-ratio", STATE, **query)
    assert (answer["retCode"], answer["result"]) == (10001, {})


def test_a_market_without_a_ratio_has_no_rows() -> None:
    state = replace(STATE, long_short={"top_accounts": 1.0})
    answer = _get(
        "/v5/market/account-ratio", state, category="linear", symbol="ETHUSDT", period="5min"
    )
    assert answer["result"]["list"] == []
    with pytest.raises(InvalidEventError) as caught:
        account_ratio(answer)
    assert caught.value.reason is Reason.MISSING_FIELD


async def test_a_request_per_market_and_a_refused_market_stands_alone() -> None:
    asked: list[dict[str, object]] = []

    async def account_ratio_call(params: dict[str, object]) -> dict[str, Any]:
        asked.append(params)
        if params["symbol"] == "ETHUSDT":
            raise ccxt.BadRequest('bybit {"retCode":10001,"retMsg":"params error"}')
        row = {"symbol": "BTCUSDT", "buyRatio": "0.75", "sellRatio": "0.25", "timestamp": "300000"}
        return {"retCode": 0, "result": {"list": [row]}}

    markets = {m["symbol"]: m for m in (_market("BTC"), _market("ETH"))}
    exchange: Any = SimpleNamespace(
        markets=markets, publicGetV5MarketAccountRatio=account_ratio_call
    )
    btc, eth = await ADAPTER.read_positioning(exchange, [BTC, ETH])
    assert asked == [
        {"category": "linear", "symbol": "BTCUSDT", "period": "5min", "limit": 1},
        {"category": "linear", "symbol": "ETHUSDT", "period": "5min", "limit": 1},
    ]
    assert isinstance(btc, RawLongShort)
    assert (btc.market["symbol"], btc.source, btc.read()) == (BTC, "accounts", (3.0, 300_000))
    assert isinstance(eth, InvalidEventError)
    assert eth.reason is Reason.UNKNOWN_SYMBOL


def test_the_positioning_budget_is_ccxts_pace() -> None:
    """ccxt spaces Bybit market calls 100 ms apart (10 a second; half of Bybit's 600 per 5 s
    per IP is 60): a request per market takes 0.1 s."""
    assert ADAPTER.min_positioning_interval(25) == pytest.approx(2.5)
    assert ADAPTER.POSITIONING == ("accounts",)
    assert ADAPTER.POSITIONING_PERIOD == "5m"


# --- ccxt against the fake ------------------------------------------------------------------


async def test_ccxt_reads_the_context_and_the_ratio_from_the_fake(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """One tickers call gives open interest and context; instruments-info's interval reaches
    ccxt's market ``info``; one account-ratio call per market."""
    fake = await fake_exchange("bybit")
    fake.set_market_state(
        BTC,
        mark_price=81_234.5,
        open_interest_coins=12_345.6,
        index_price=81_200.1,
        funding_rate=-0.0003,
        funding_interval_hours=1,
        long_short={"accounts": 0.6},
    )
    exchange = make_collector(fake, RecordingCore(), ("BTC",)).make_exchange()
    try:
        markets = await exchange.load_markets()
        assert markets[BTC]["info"]["fundingInterval"] == 60
        (item,) = await ADAPTER.read_open_interest(exchange, [BTC])
        assert isinstance(item, RawOpenInterest)
        assert item.context is not None
        context = item.context()
        assert (context.index_price, context.funding_rate, context.funding_interval_s) == (
            81_200.1,
            -0.0003,
            3600.0,
        )
        assert context.next_funding_ms is not None
        assert context.next_funding_ms % HOUR_MS == 0
        (ratio,) = await ADAPTER.read_positioning(exchange, [BTC])
        assert isinstance(ratio, RawLongShort)
        value, timestamp = ratio.read()
        assert value == pytest.approx(0.6, rel=1e-9)
        assert timestamp % 300_000 == 0
        assert fake.rest_requests["/v5/market/tickers"] == 1
        assert fake.rest_requests["/v5/market/account-ratio"] == 1
    finally:
        await exchange.close()
