"""Market metadata the fake venues serve: one table, rendered by each venue in its own REST shape.

The table holds what ccxt reads when it loads markets (ids, tick and lot sizes, OKX contract
sizes) plus a starting mark price and open interest, so a freshly started fake answers every
REST call with plausible numbers before a test or the simulation sets its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True)
class FakeMarket:
    """One USDT-margined linear perpetual, listed on every fake venue.

    Sizes are strings because the venues print them that way and their decimals are the
    wire precision; `contract_size` is OKX's `ctVal` (coins per contract; Binance and Bybit
    quote sizes in coins directly).
    """

    base: str
    tick_size: str
    qty_step: str
    contract_size: str
    okx_lot_size: str
    max_leverage: int
    mark_price: float
    open_interest_coins: float
    quote: str = "USDT"

    @property
    def symbol(self) -> str:
        """ccxt's unified symbol, e.g. ``BTC/USDT:USDT``."""
        return f"{self.base}/{self.quote}:{self.quote}"

    @property
    def price_decimals(self) -> int:
        """Decimals the venues print prices with."""
        return _decimals(self.tick_size)

    @property
    def tick_plain(self) -> str:
        """The tick without padding ("0.1" for "0.10"), as OKX prints it."""
        return format(Decimal(self.tick_size).normalize(), "f")

    @property
    def tick_decimals(self) -> int:
        """Decimals of the tick itself: OKX prints "82655.7" where Binance prints "82655.70"."""
        return _decimals(self.tick_plain)

    @property
    def qty_decimals(self) -> int:
        """Decimals the venues print coin quantities with."""
        return _decimals(self.qty_step)

    @property
    def contract_coins(self) -> float:
        """OKX contract size in coins, as a number."""
        return float(self.contract_size)


# What a fresh fake reports beside its mark price until a test or the simulation says otherwise:
# the venues' baseline funding (0.01 % per 8 h), an index 0.02 % under the mark, and crowds
# leaning long (Binance's BTC account ratio sits around 1-2).
DEFAULT_FUNDING_RATE: Final = 0.0001
DEFAULT_FUNDING_INTERVAL_HOURS: Final = 8
DEFAULT_INDEX_DISCOUNT: Final = 0.0002
DEFAULT_LONG_SHORT: Final[Mapping[str, float]] = MappingProxyType(
    {"accounts": 1.5, "top_accounts": 1.25, "top_positions": 1.1}
)


def default_index(mark_price: float) -> float:
    return mark_price * (1 - DEFAULT_INDEX_DISCOUNT)


@dataclass(frozen=True)
class MarketState:
    """What the REST endpoints report for a market right now.

    Rates are fractions per funding interval; ``long_short`` maps a ratio's kind (``accounts``,
    ``top_accounts``, ``top_positions``) to its value, each venue serving those it publishes.
    """

    mark_price: float
    open_interest_coins: float
    ts_ms: int
    index_price: float
    funding_rate: float = DEFAULT_FUNDING_RATE
    predicted_funding_rate: float = DEFAULT_FUNDING_RATE
    funding_interval_hours: int = DEFAULT_FUNDING_INTERVAL_HOURS
    long_short: Mapping[str, float] = field(default_factory=lambda: DEFAULT_LONG_SHORT)

    @classmethod
    def at(cls, mark_price: float, open_interest_coins: float, ts_ms: int) -> MarketState:
        """The default state around a mark price."""
        return cls(
            mark_price, open_interest_coins, ts_ms, mark_price * (1 - DEFAULT_INDEX_DISCOUNT)
        )

    @property
    def funding_interval_ms(self) -> int:
        return self.funding_interval_hours * 3_600_000

    def next_funding_ms(self, now_ms: int) -> int:
        """The next funding time after ``now_ms``: intervals run from midnight UTC."""
        interval = self.funding_interval_ms
        return (now_ms // interval + 1) * interval


def _decimals(step: str) -> int:
    """Printed decimals of a size string: Binance prints "0.0000100" and 7-decimal prices."""
    _, _, fraction = step.partition(".")
    return len(fraction)


# Why these: BTC/ETH/SOL/XRP are the majors the dashboards chart; MANTA, IOTX, STRK, ROSE and
# CELO appear in the recorded frames under tests/fixtures/ws, so replayed frames land on known
# markets on every venue. Tick/lot sizes, OKX ctVal/lotSz and leverage caps follow the venues'
# listings (where they differ between venues, the Binance value is used for tick/qty step);
# mark prices sit near the fixture era (BTC ~82k) and open interest near the venues' order of
# magnitude, in coins.
DEFAULT_MARKETS: Final[tuple[FakeMarket, ...]] = (
    FakeMarket("BTC", "0.10", "0.001", "0.01", "0.01", 125, 82_000.0, 85_000.0),
    FakeMarket("ETH", "0.01", "0.001", "0.1", "0.01", 100, 2_900.0, 2_000_000.0),
    FakeMarket("SOL", "0.0100", "0.01", "1", "0.01", 100, 180.0, 9_000_000.0),
    FakeMarket("XRP", "0.0001", "0.1", "100", "0.01", 75, 1.5, 300_000_000.0),
    FakeMarket("MANTA", "0.0000100", "0.1", "1", "1", 50, 0.0722, 60_000_000.0),
    FakeMarket("IOTX", "0.00001", "1", "10", "1", 50, 0.0667, 400_000_000.0),
    FakeMarket("STRK", "0.00001", "0.1", "1", "1", 50, 0.0517, 150_000_000.0),
    FakeMarket("ROSE", "0.00001", "1", "10", "1", 50, 0.045, 500_000_000.0),
    FakeMarket("CELO", "0.00001", "1", "10", "1", 50, 0.0958, 25_000_000.0),
)


# Markets that appear in one venue's recorded frames only (../shared/fixtures/ws/venues/): listed
# by that venue's fake (``VenueProtocol.EXTRA_MARKETS``), so its recordings replay to events.
# Sizes follow the pattern of the markets above (tick and lot of the recorded prices and sizes);
# the OKX contract value of CNPY is the fake's (1 coin), not checked against OKX's listing.
RECORDED_MARKETS: Final[dict[str, FakeMarket]] = {
    m.base: m
    for m in (
        FakeMarket("COTI", "0.0000010", "1", "1", "1", 50, 0.022, 500_000_000.0),
        FakeMarket("GALA", "0.00001", "1", "10", "1", 50, 0.038, 2_000_000_000.0),
        FakeMarket("PIPPIN", "0.00001", "1", "1", "1", 50, 0.0246, 300_000_000.0),
        FakeMarket("ICP", "0.001", "0.1", "0.01", "1", 50, 2.585, 10_000_000.0),
        FakeMarket("MARSCOIN", "0.00001", "1", "1", "1", 50, 0.127, 50_000_000.0),
        FakeMarket("CNPY", "0.0001", "1", "1", "1", 50, 0.416, 20_000_000.0),
    )
}
