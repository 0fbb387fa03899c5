"""What the per-venue tests (tests/test_venue_*.py) share to test an adapter offline: frames go
through the real ``FrameIntake`` at a fixed clock into a recording sink and a fresh ``Health``,
with no connection, collector or core; then the events and the rejections are compared with
what a recorded frame must become (``Expected``, tests/venues/case.py).

Only what every venue does the same way lives here; each venue's rules, units and frame
shapes stay in its own test file.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

from exporter.collectors.intake import FrameIntake, RawEntry
from exporter.collectors.ratelimitedlog import RateLimitedLog
from exporter.collectors.venue import FrameKind, RawOpenInterest
from exporter.fakeexchange.protocol import InvalidRequest
from exporter.health import Health, Stream
from tests.venues.case import FIXTURES

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from exporter.collectors.ccxt_types import Market
    from exporter.collectors.intake import RawLiquidation
    from exporter.collectors.venue import OpenInterestFields, OpenInterestItem, VenueAdapter
    from exporter.events import (
        Liquidation,
        LongShortRatio,
        MarketContext,
        MarketHistory,
        OpenInterest,
        Reason,
    )
    from exporter.fakeexchange.protocol import VenueProtocol
    from tests.venues.case import Expected, Recorded, VenueCase


class Sink:
    """The event sink of an offline intake: it keeps the liquidations, in order. Nothing else
    reaches a sink from ``FrameIntake``, so anything else is a test's error."""

    def __init__(self) -> None:
        self.events: list[Liquidation] = []

    def record_liquidation(self, event: Liquidation) -> None:
        self.events.append(event)

    def record_open_interest(self, event: OpenInterest) -> None:
        raise AssertionError(f"no open interest is read offline: {event}")

    def record_market_context(self, event: MarketContext) -> None:
        raise AssertionError(f"no funding is read offline: {event}")

    def record_long_short(self, event: LongShortRatio) -> None:
        raise AssertionError(f"no long/short ratio is read offline: {event}")

    def wants_history(self, coin: str) -> bool | None:
        raise AssertionError(f"no history is read offline: {coin}")

    def expect_history(self, exchange: str, symbol: str, coin: str) -> None:
        raise AssertionError(f"no history is read offline: {exchange} {symbol} {coin}")

    def record_history(self, history: MarketHistory) -> None:
        raise AssertionError(f"no history is read offline: {history.symbol}")

    def end_history(self, exchange: str, symbol: str) -> None:
        raise AssertionError(f"no history is read offline: {exchange} {symbol}")


class Intake(NamedTuple):
    """An offline intake: take frames with ``taker``, read events from ``sink`` and the
    rejections from ``health`` (see ``invalid_by_reason``)."""

    taker: FrameIntake
    sink: Sink
    health: Health


def make_intake(adapter: VenueAdapter, markets: Mapping[str, Market], now_s: float) -> Intake:
    """The intake of ``adapter``'s venue, wired as the collector wires it, with ``markets`` (by
    the id frames name them by) and the clock stopped at ``now_s``: every frame is received
    then, and the venue's timestamps are judged against it."""

    def clock() -> float:
        return now_s

    sink = Sink()
    health = Health((adapter.name,), clock)
    taker = FrameIntake(
        adapter.name,
        adapter,
        sink,
        health=health,
        warn=RateLimitedLog(clock),
        clock=clock,
        quantity_in_contracts=adapter.quantity_in_contracts,
    )
    taker.use_markets(markets, None)
    return Intake(taker, sink, health)


def invalid_by_reason(health: Health, label: str) -> dict[Reason, int]:
    """The rejected liquidation entries by reason. ``label`` is the exchange label the
    snapshot counts under (``binance`` for binance_coinm, ``bybit`` for bybit_inverse): the
    tests name it, rather than derive it, so that a wrong label fails them."""
    return {
        reason: n
        for (exchange, stream, reason), n in health.snapshot().invalid.items()
        if exchange == label and stream is Stream.LIQUIDATIONS
    }


def ccxt_market(symbol: str, market_id: str, contract_size: float = 1.0, **changes: Any) -> Market:
    """A derivative market in ccxt's unified shape, as far as the adapters and the intake read
    it: base, quote and settle coins (and the expiry of a dated future) come from the unified
    ``symbol`` ``BASE/QUOTE:SETTLE[-YYMMDD]``, inverse where it settles in its base coin;
    ``changes`` overrides any key."""
    base, rest = symbol.split("/")
    quote, _, settle_expiry = rest.partition(":")
    settle, _, expiry = settle_expiry.partition("-")
    inverse = settle == base
    market: dict[str, Any] = {
        "symbol": symbol,
        "id": market_id,
        "base": base,
        "quote": quote,
        "settle": settle,
        "contractSize": contract_size,
        "linear": not inverse,
        "inverse": inverse,
        "swap": not expiry,
        "future": bool(expiry),
        "active": True,
    }
    return market | changes


def by_id(markets: Iterable[Market]) -> dict[str, Market]:
    """Markets by the id the venue's frames name them by: what ``make_intake`` takes."""
    return {str(m["id"]): m for m in markets}


def each_recorded(case: VenueCase) -> pytest.MarkDecorator:
    """Runs a test once per recorded frame of ``case``, named ``file:line``."""
    return pytest.mark.parametrize("recorded", case.recorded, ids=lambda r: f"{r.file}:{r.line}")


def assert_every_line_recorded(case: VenueCase, *files: str) -> None:
    """Every line of each fixture file has a ``Recorded`` in ``case``, in order, and ``case``
    names no other file: no recorded frame goes unasserted."""
    assert {r.file for r in case.recorded} <= set(files)
    for name in files:
        lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
        asserted = [r.line for r in case.recorded if r.file == name]
        assert asserted == list(range(1, len(lines) + 1)), name


def assert_events(
    events: Sequence[Liquidation],
    expected: Sequence[Expected],
    *,
    exchange: str,
    rule: str,
    coin: str | None = None,
) -> None:
    """``events`` are exactly ``expected``, in order: label, symbol, coin (``coin``, else the
    base of the expected symbol), side (failing with ``rule``), price, coins and USD to 1e-12,
    and the venue's timestamp, or the receive time where the venue states none."""
    assert len(events) == len(expected)
    for event, want in zip(events, expected, strict=True):
        assert (event.exchange, event.symbol) == (exchange, want.symbol)
        assert event.coin == (coin or want.symbol.split("/")[0])
        assert event.side == want.side, rule
        assert event.price == pytest.approx(want.price, rel=1e-12)
        assert event.quantity == pytest.approx(want.coins, rel=1e-12)
        assert event.notional_usd == pytest.approx(want.usd, rel=1e-12)
        stated = event.received_ms if want.timestamp_ms is None else want.timestamp_ms
        assert event.timestamp_ms == stated


def assert_recorded_frame(
    adapter: VenueAdapter,
    intake: Intake,
    recorded: Recorded,
    *,
    exchange: str,
    coin: str | None = None,
) -> list[Liquidation]:
    """The recorded data frame, taken by ``intake``, becomes exactly ``recorded.events`` and
    ``recorded.rejected`` (under ``exchange``); returns the events for a venue's own checks."""
    message = json.loads(recorded.text())
    assert adapter.classify_frame(message) is FrameKind.DATA
    taker, sink, health = intake
    taker.take(message)
    assert invalid_by_reason(health, exchange) == dict(recorded.rejected)
    assert_events(sink.events, recorded.events, exchange=exchange, rule=recorded.rule, coin=coin)
    return sink.events


def read_entries(adapter: VenueAdapter, message: object) -> list[RawLiquidation]:
    """The entries of a data frame as ``adapter`` reads them; elements that are no entry are
    left out."""
    items = adapter.split_frame(message)
    return [adapter.parse_entry(item.fields) for item in items if isinstance(item, RawEntry)]


def readings(items: Iterable[OpenInterestItem]) -> dict[str, OpenInterestFields]:
    """Open interest as a poll reads it, by unified symbol; items that are no reading are
    left out."""
    return {
        item.market["symbol"]: item.read() for item in items if isinstance(item, RawOpenInterest)
    }


def assert_junk_is_rejected(fake: VenueProtocol, adapter: VenueAdapter, text: str = "{") -> None:
    """A request the fake cannot take is answered with what ``adapter`` reads as a refusal."""
    junk = fake.parse(text)
    assert isinstance(junk, InvalidRequest)
    (answer,) = fake.invalid(junk, "c0ffee")
    assert adapter.classify_frame(json.loads(answer)) is FrameKind.REJECT
