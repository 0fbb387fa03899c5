"""The venues the exporter knows: the one list that config, collectors, the fake exchanges,
tests and benchmarks share. Adding a venue adds its name here (docs/adding-a-venue.md)."""

from __future__ import annotations

from typing import Final, Literal, TypeGuard, get_args

Venue = Literal[
    "binance",
    "bybit",
    "okx",
    "binance_coinm",
    "bybit_inverse",
    "gate",
    "htx",
    "bitget",
    "deribit",
    "dydx",
    "kraken",
    "bitfinex",
    "bitmex",
]
VENUES: Final[tuple[Venue, ...]] = get_args(Venue)
# How much of a venue's liquidations its public feed carries: every one, or a sample (Binance
# COIN-M and USD-M send the latest per symbol per second, Bitget the largest long and short per
# pair per second), whose totals are lower bounds.
Completeness = Literal["complete", "sampled"]
# What runs with no configuration: fast and light.
DEFAULT_VENUES: Final[tuple[Venue, ...]] = ("binance", "bybit", "okx")
# What ``enabled_exchanges: all`` means.
ALL: Final = "all"


# The ``exchange`` label of each venue: its name, except a second feed of one exchange, which
# shares the exchange's label (the market, e.g. ``BTC/USD:BTC``, is in ``symbol``).
_EXCHANGE_LABELS: Final[dict[Venue, str]] = {"binance_coinm": "binance", "bybit_inverse": "bybit"}
# Venues whose public feed is a sample (VENUES.md); every other one sends every liquidation.
_SAMPLED: Final[frozenset[Venue]] = frozenset({"binance", "binance_coinm", "bitget"})


def is_venue(name: object) -> TypeGuard[Venue]:
    return name in VENUES


def exchange_label(venue: str) -> str:
    """The ``exchange`` label value of a venue's series."""
    return _EXCHANGE_LABELS.get(venue, venue) if is_venue(venue) else venue


def completeness_of(venue: Venue) -> Completeness:
    return "sampled" if venue in _SAMPLED else "complete"


def sampled_exchanges() -> tuple[str, ...]:
    """The ``exchange`` labels with a sampled feed, in venue order (for texts that name them)."""
    return tuple(dict.fromkeys(exchange_label(v) for v in VENUES if v in _SAMPLED))
