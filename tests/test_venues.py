"""One venue list: every venue of ``exporter.venues`` has a collector adapter, a fake exchange
speaking its wire format, and recorded frames with expected events (and nothing else does)."""

from __future__ import annotations

from exporter.collectors import ADAPTERS
from exporter.collectors.history import HistoryLimits
from exporter.collectors.venue import NativeFeed
from exporter.fakeexchange.server import PROTOCOLS
from exporter.venues import DEFAULT_VENUES, VENUES
from tests.test_collectors_frames import EXPECTED, FILES, FIXTURES


def test_every_venue_has_an_adapter_a_fake_and_fixtures() -> None:
    venues = set(VENUES)
    assert set(ADAPTERS) == venues
    assert set(PROTOCOLS) == venues
    assert set(FILES) == venues
    assert set(EXPECTED) == venues
    assert set(DEFAULT_VENUES) <= venues
    for venue in VENUES:
        adapter = ADAPTERS[venue]
        assert adapter.name == venue
        assert isinstance(adapter.HISTORY, HistoryLimits)
        assert isinstance(adapter.NATIVE, NativeFeed)
        fixture = FIXTURES / FILES[venue]
        assert fixture.is_file(), fixture
        assert EXPECTED[venue], f"{venue}: no expected events for {fixture.name}"
