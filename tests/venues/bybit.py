"""Bybit linear: ``S`` is the side of the POSITION (Buy => a long was liquidated); ``v`` coins."""

from __future__ import annotations

from typing import Any

from tests.venues.case import Expected, Recorded, VenueCase

FILE = "bybit_linear.jsonl"
RULE = "S is the position's side: Buy => a long was liquidated (Bybit v5 'All Liquidation')"

VENUES_FILE = "bybit_linear.venues.jsonl"


def _event(symbol: str, side: str, price: float, coins: float, ts: int) -> Expected:
    return Expected(symbol, side, price, coins, price * coins, ts)  # type: ignore[arg-type]  # literal sides


def _entry(frame: Any) -> Any:
    return frame["data"][0]


def _spoil(frame: Any) -> None:
    _entry(frame)["s"] = "FOOBARUSDT"


CASE = VenueCase(
    recorded=(
        Recorded(
            FILE,
            1,
            "capture",
            (
                _event("BTC/USDT:USDT", "long", 82396.90, 0.006, 1791565600992),
                _event("BTC/USDT:USDT", "long", 82394.30, 0.038, 1791565601058),
            ),
            rule=RULE,
        ),
        Recorded(
            FILE,
            2,
            "capture",
            (_event("STRK/USDT:USDT", "long", 0.05165, 2084.9, 1791091285156),),
            rule=RULE,
        ),
        Recorded(
            FILE,
            3,
            "capture",
            (_event("ROSE/USDT:USDT", "short", 0.04499, 20000.0, 1739502302929),),
            rule=RULE,
        ),
        # The older liquidation.* topic: one entry, `side` with the same meaning.
        Recorded(
            FILE,
            4,
            "capture",
            (_event("BTC/USDT:USDT", "short", 43511.70, 0.003, 1703485237953),),
            rule=RULE,
        ),
        Recorded(FILE, 5, "capture"),  # the answer to a ping: nothing
        # From ../shared/fixtures/ws/venues/ (tests/fixtures/ws/bybit_linear.venues.md).
        Recorded(  # the v2 liquidation.* topic: `side`, `qty`, `time`
            VENUES_FILE,
            1,
            "capture",
            (_event("BTC/USDT:USDT", "short", 45212.50, 0.009, 1632123952732),),
            rule=RULE,
        ),
        Recorded(
            VENUES_FILE,
            2,
            "documentation",
            (_event("GALA/USDT:USDT", "long", 0.03803, 1637.0, 1673251091822),),
            rule=RULE,
        ),
        Recorded(
            VENUES_FILE,
            3,
            "capture",
            (_event("PIPPIN/USDT:USDT", "short", 0.02456, 2846.0, 1740480207110),),
            rule=RULE,
        ),
        Recorded(
            VENUES_FILE,
            4,
            "unattributed capture",
            (_event("ICP/USDT:USDT", "long", 2.585, 19.7, 1789670094099),),
            rule=RULE,
        ),
        Recorded(
            VENUES_FILE,
            5,
            "unattributed capture",
            (_event("MARSCOIN/USDT:USDT", "short", 0.12734, 2380.0, 1789670278053),),
            rule=RULE,
        ),
    ),
    entry_of=_entry,
    fields=("S", "v", "p", "T"),
    spoil_market=_spoil,
    oi_path="/v5/market/tickers",
)
