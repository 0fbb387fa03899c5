"""Every venue's test case (``case_of(venue)``): one module per venue in this package defines
``CASE``; tests/test_venues.py checks there is one per venue. Loaded on demand, so a venue's
broken case fails only that venue's tests."""

from __future__ import annotations

from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.venues.case import VenueCase


@cache
def case_of(venue: str) -> VenueCase:
    case: VenueCase = import_module(f"tests.venues.{venue}").CASE
    return case
