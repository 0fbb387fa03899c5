"""The venues the exporter knows: the one list that config, collectors, the fake exchanges,
tests and benchmarks share. Adding a venue adds its name here (docs/adding-a-venue.md)."""

from __future__ import annotations

from typing import Final, Literal, TypeGuard, get_args

Venue = Literal["binance", "bybit", "okx"]
VENUES: Final[tuple[Venue, ...]] = get_args(Venue)
# What runs with no configuration: fast and light.
DEFAULT_VENUES: Final[tuple[Venue, ...]] = ("binance", "bybit", "okx")


def is_venue(name: object) -> TypeGuard[Venue]:
    return name in VENUES
