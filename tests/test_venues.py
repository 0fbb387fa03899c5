"""One venue list: every venue of ``exporter.venues`` has a collector adapter, a fake exchange
speaking its wire format, and recorded frames with expected events (and nothing else does)."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.collectors import ADAPTERS
from exporter.collectors.history import HistoryLimits
from exporter.collectors.venue import NativeFeed
from exporter.fakeexchange.server import PROTOCOLS
from exporter.venues import DEFAULT_VENUES, VENUES, exchange_label
from tests.venues import case_of
from tests.venues.case import FIXTURES

CASE_MODULES = {p.stem for p in Path(__file__).parent.joinpath("venues").glob("*.py")}


def test_every_venue_has_an_adapter_a_fake_and_a_case() -> None:
    venues = set(VENUES)
    assert set(ADAPTERS) == venues
    assert set(PROTOCOLS) == venues
    assert CASE_MODULES - {"__init__", "case", "offline"} == venues
    assert set(DEFAULT_VENUES) <= venues


@pytest.mark.parametrize("venue", VENUES)
def test_each_venue_is_described_once(venue: str) -> None:
    adapter = ADAPTERS[venue]  # type: ignore[index]  # parametrized over VENUES
    assert adapter.name == venue
    assert adapter.exchange == exchange_label(venue)
    assert adapter.HISTORY is None or isinstance(adapter.HISTORY, HistoryLimits)
    assert isinstance(adapter.NATIVE, NativeFeed)
    case = case_of(venue)
    assert any(r.events for r in case.recorded), f"{venue}: no recorded liquidation"
    for recorded in case.recorded:
        assert (FIXTURES / recorded.file).is_file(), recorded.file
        assert recorded.text(), f"{recorded.file}:{recorded.line} is empty"
        assert not recorded.events or recorded.rule, f"{recorded.file}:{recorded.line}: no rule"


def test_every_recorded_line_is_a_case_of_some_venue() -> None:
    """No recorded frame sits in tests/fixtures/ws/ unasserted, and each has its origin note."""
    covered = {(r.file, r.line) for venue in VENUES for r in case_of(venue).recorded}
    for path in sorted(FIXTURES.glob("*.jsonl")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert {(path.name, n) for n in range(1, lines + 1)} <= covered, path.name
    notes = "\n".join(p.read_text(encoding="utf-8") for p in FIXTURES.glob("*.md"))
    for path in FIXTURES.glob("*.jsonl"):
        assert path.name in notes or path.name in EARLIER, f"{path.name}: no origin note"


# Copied from ../shared/fixtures/ws/ before origin notes were kept (the notes beside the newer
# files say where those came from).
EARLIER = {"binance_usdm.jsonl", "bybit_linear.jsonl", "okx_swap.jsonl"}
