"""Funding, index price and long/short ratios, end to end: each venue's fake serves them in the
venue's real REST format, its collector reads them, and the core holds exactly what was set.

What a venue publishes is its adapter's ``CONTEXT`` (figures read with the open interest) and
``POSITIONING`` (long/short ratios): a figure declared must arrive exactly, one not declared
must stay None, so a venue that gains or loses one fails here until its declaration says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from exporter.cli import load_config
from exporter.collectors import ADAPTERS
from exporter.config import ConfigError
from exporter.core import Core
from exporter.events import MarketContext, Reason
from exporter.health import Stream
from exporter.venues import VENUES, exchange_label
from tests.collector_harness import RecordingCore, eventually, make_collector, running
from tests.conftest import FakeClock, make_open_interest

if TYPE_CHECKING:
    from pathlib import Path

    from exporter.venues import Venue
    from tests.conftest import FakeExchangeFactory

# Values every venue's wire format carries exactly (rates to 8 decimals, prices on the tick).
FUNDING_RATE = 0.000125
PREDICTED_RATE = -0.00005
INTERVAL_HOURS = 4  # a venue with a fixed interval (FIXED_FUNDING_INTERVAL_S) keeps its own
LONG_SHORT = {"accounts": 1.8125, "top_accounts": 0.875, "top_positions": 1.25}
CONTEXT_FIELDS = (
    "index_price",
    "funding_rate",
    "predicted_funding_rate",
    "next_funding_ms",
    "funding_interval_s",
)


@pytest.mark.parametrize("venue", VENUES)
async def test_funding_and_index_price_arrive_exactly(
    venue: Venue, fake_exchange: FakeExchangeFactory
) -> None:
    adapter = ADAPTERS[venue]
    assert set(CONTEXT_FIELDS) >= adapter.CONTEXT, adapter.CONTEXT
    fixed = adapter.FIXED_FUNDING_INTERVAL_S
    hours = INTERVAL_HOURS if fixed is None else round(fixed / 3600)
    fake = await fake_exchange(venue)
    symbol = fake.symbol_of("ETH")
    market = fake.market(symbol)
    tick = float(market.tick_size)
    mark = round(2_950.5 / tick) * tick
    index = round(2_948.0 / tick) * tick
    fake.set_market_state(
        symbol,
        open_interest_coins=123_456.7,
        mark_price=mark,
        index_price=index,
        funding_rate=FUNDING_RATE,
        predicted_funding_rate=PREDICTED_RATE,
        funding_interval_hours=hours,
    )
    core = RecordingCore()
    async with running(make_collector(fake, core, (symbol,))):
        await eventually(
            lambda: any(c.symbol == symbol for c in core.market_context) or not adapter.CONTEXT,
            "the market context",
        )
        await eventually(lambda: len(core.open_interest) >= 2, "a second poll")
    if not adapter.CONTEXT:
        assert core.market_context == []
        return
    context: MarketContext = core.market_context[-1]
    assert (context.exchange, context.symbol, context.coin) == (
        exchange_label(venue),
        symbol,
        "ETH",
    )
    interval_ms = hours * 3_600_000
    expected = {
        "index_price": pytest.approx(index, rel=1e-9),
        "funding_rate": pytest.approx(FUNDING_RATE, abs=1e-12),
        "predicted_funding_rate": pytest.approx(PREDICTED_RATE, abs=1e-12),
        "next_funding_ms": (context.received_ms // interval_ms + 1) * interval_ms,
        "funding_interval_s": float(hours * 3600),
    }
    for name in CONTEXT_FIELDS:
        value = getattr(context, name)
        if name in adapter.CONTEXT:
            assert value == expected[name], name
        else:
            assert value is None, name
    # Every other market's context (not set: the fake's defaults) is there too, or none.
    assert {c.symbol for c in core.market_context} == {symbol}


@pytest.mark.parametrize("venue", [v for v in VENUES if ADAPTERS[v].POSITIONING])
async def test_long_short_ratios_arrive_exactly(
    venue: Venue, fake_exchange: FakeExchangeFactory
) -> None:
    adapter = ADAPTERS[venue]
    fake = await fake_exchange(venue)
    symbol = fake.symbol_of("BTC")
    market = fake.market(symbol)
    fake.set_market_state(
        symbol,
        open_interest_coins=10_000.0,
        mark_price=market.mark_price,
        long_short=LONG_SHORT,
    )
    core = RecordingCore()
    collector = make_collector(fake, core, (symbol,), positioning=True)
    async with running(collector):
        await eventually(
            lambda: {r.source for r in core.long_short} >= set(adapter.POSITIONING),
            "every ratio the venue publishes",
        )
    for source in adapter.POSITIONING:
        ratio = next(r for r in core.long_short if r.source == source)
        assert (ratio.exchange, ratio.symbol, ratio.coin) == (exchange_label(venue), symbol, "BTC")
        assert ratio.period == adapter.POSITIONING_PERIOD
        assert ratio.ratio == pytest.approx(LONG_SHORT[source], rel=1e-9), source
    assert {r.source for r in core.long_short} == set(adapter.POSITIONING)


async def test_a_bad_figure_is_counted_and_takes_nothing_else(
    fake_exchange: FakeExchangeFactory,
) -> None:
    """A funding rate past any venue's cap is rejected on its own (the open interest stands),
    and so is a negative ratio (the market's other ratios arrive)."""
    fake = await fake_exchange("binance")
    symbol = fake.symbol_of("BTC")
    fake.set_market_state(
        symbol,
        open_interest_coins=10_000.0,
        mark_price=80_000.0,
        funding_rate=0.9,
        long_short={"accounts": -1.5, "top_accounts": 0.875, "top_positions": 1.25},
    )
    core = RecordingCore()
    async with running(make_collector(fake, core, (symbol,), positioning=True)):
        await eventually(
            lambda: {r.source for r in core.long_short} == {"top_accounts", "top_positions"},
            "the valid ratios",
        )
        await eventually(lambda: len(core.open_interest) >= 2, "two polls")
    invalid = core.health.snapshot().invalid
    assert invalid[("binance", Stream.OPEN_INTEREST, Reason.OUT_OF_RANGE)] >= 2
    assert invalid[("binance", Stream.POSITIONING, Reason.NOT_POSITIVE)] >= 1
    assert core.market_context == []
    assert {r.source for r in core.long_short} == {"top_accounts", "top_positions"}


async def test_failing_ratio_polls_are_retried_and_leave_the_exchange_up(
    fake_exchange: FakeExchangeFactory,
) -> None:
    fake = await fake_exchange("binance")
    symbol = fake.symbol_of("BTC")
    core = RecordingCore()
    async with running(make_collector(fake, core, (symbol,), positioning=True)):
        await eventually(lambda: core.health.is_up("binance"), "the feeds up")
        await eventually(lambda: len(core.long_short) >= 3, "a first round of ratios")
        fake.fail_rest(503, count=4, path_prefix="/futures/data/globalLongShortAccountRatio")
        await eventually(
            lambda: core.health.snapshot().reconnects.get(("binance", Stream.POSITIONING), 0) >= 2,
            "the failed ratio polls to be counted",
        )
        assert core.health.is_up("binance")
        assert core.health.snapshot().reconnects.get(("binance", Stream.OPEN_INTEREST), 0) == 0
        seen = len(core.long_short)
        await eventually(lambda: len(core.long_short) >= seen + 3, "the ratios to resume")
        await eventually(
            lambda: core.health.stream_healthy("binance", Stream.POSITIONING), "positioning up"
        )


def exchange_yaml(tmp_path: Path, venue: str, settings: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(f"exchanges:\n  {venue}:\n{settings}", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", 300.0),
        ("    positioning_interval_seconds: 0\n", 0.0),
        ("    positioning_interval_seconds: '900'\n", 900.0),
    ],
)
def test_positioning_interval_setting(tmp_path: Path, line: str, expected: float) -> None:
    config = load_config(["--config", exchange_yaml(tmp_path, "binance", line or "    {}\n")], {})
    assert config.exchange("binance").positioning_interval_seconds == expected


@pytest.mark.parametrize("raw", ["30", "-1", "86401", "often"])
def test_a_bad_positioning_interval_names_key_value_and_range(tmp_path: Path, raw: str) -> None:
    path = exchange_yaml(tmp_path, "okx", f"    positioning_interval_seconds: {raw}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(["--config", path], {})
    message = str(caught.value)
    assert message.startswith("exchanges.okx.positioning_interval_seconds = ")
    assert "0 (off) or a number of seconds from 60 to 86400" in message


def test_a_market_whose_latest_context_was_rejected_shows_none(clock: FakeClock) -> None:
    """Funding the latest poll could not read is left out, not shown stale beside fresh open
    interest (the rejection is counted by the poll)."""
    core = Core(("okx",), clock)
    first = make_open_interest(clock)
    core.record_open_interest(first)
    context = MarketContext(
        exchange=first.exchange,
        symbol=first.symbol,
        coin=first.coin,
        index_price=2_899.0,
        funding_rate=0.0001,
        predicted_funding_rate=None,
        next_funding_ms=None,
        funding_interval_s=28_800.0,
        timestamp_ms=first.timestamp_ms,
        received_ms=first.received_ms,
    )
    core.record_market_context(context)
    assert core.snapshot().market_context == (context,)
    clock.now += 15.0
    core.record_open_interest(make_open_interest(clock))  # its context was rejected
    assert core.snapshot().market_context == ()


# The calls some venues make for funding alone, beside their open-interest call.
CONTEXT_CALLS: dict[Venue, str] = {
    "binance": "/fapi/v1/fundingInfo",
    "binance_coinm": "/dapi/v1/fundingInfo",
    "okx": "/api/v5/public/funding-rate",
    "gate": "/api/v4/futures/usdt/contracts",  # also the markets' listing: failed once loaded
    "bitget": "/api/v2/mix/market/current-fund-rate",
    "htx": "/linear-swap-api/v1/swap_batch_funding_rate",
}


@pytest.mark.parametrize("venue", sorted(CONTEXT_CALLS))
async def test_a_failing_funding_call_leaves_the_open_interest_standing(
    venue: Venue, fake_exchange: FakeExchangeFactory
) -> None:
    """Each market's context is rejected with why (counted, logged); its open interest is read
    as before and the poll is neither retried nor marked down."""
    fake = await fake_exchange(venue)
    symbol = fake.symbol_of("ETH")
    label = exchange_label(venue)
    path = CONTEXT_CALLS[venue]
    if venue != "gate":
        fake.fail_rest(503, count=1_000, path_prefix=path)
    core = RecordingCore()
    async with running(make_collector(fake, core, (symbol,))):
        await eventually(lambda: len(core.open_interest) >= 1, "a first reading")
        if venue == "gate":
            fake.fail_rest(503, count=1_000, path_prefix=path)
        failed = fake.rest_requests[path]
        readings = len(core.open_interest)
        await eventually(
            lambda: len(core.open_interest) >= readings + 3 and fake.rest_requests[path] > failed,
            "polls with the funding call failing",
        )
        health = core.health.snapshot()
        assert health.invalid[(label, Stream.OPEN_INTEREST, Reason.MISSING_FIELD)] >= 2
        assert health.reconnects.get((label, Stream.OPEN_INTEREST), 0) == 0
        assert core.health.stream_healthy(venue, Stream.OPEN_INTEREST)
        assert core.snapshot().market_context == ()
