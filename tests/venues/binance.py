"""Binance USD-M: ``o.S`` is the side of the forced ORDER (SELL closes a long); quantity ``z``
(filled) in coins, price ``ap`` (average fill)."""

from __future__ import annotations

from typing import Any

from tests.venues.case import Expected, Recorded, VenueCase

FILE = "binance_usdm.jsonl"
RULE = "o.S is the forced order's side: SELL => a long was liquidated (Binance forceOrder docs)"

VENUES_FILE = "binance_usdm.venues.jsonl"


def _event(symbol: str, side: str, price: float, coins: float, ts: int) -> Expected:
    return Expected(symbol, side, price, coins, price * coins, ts)  # type: ignore[arg-type]  # literal sides


def _order(frame: Any) -> Any:
    return frame["data"]["o"] if "data" in frame else frame["o"]


def _spoil(frame: Any) -> None:
    _order(frame)["s"] = "FOOBARUSDT"


CASE = VenueCase(
    recorded=(
        Recorded(
            FILE,
            1,
            "capture",
            (_event("BTC/USDT:USDT", "long", 82651.90, 0.190, 1791565602120),),
            rule=RULE,
        ),
        Recorded(
            FILE,
            2,
            "capture",
            (_event("XRP/USDT:USDT", "short", 1.4912, 127.2, 1791091174219),),
            rule=RULE,
        ),
        # z (filled, 2049.1) not l (last fill, 245.9)
        Recorded(
            FILE,
            3,
            "capture",
            (_event("MANTA/USDT:USDT", "long", 0.0722187, 2049.1, 1791091026103),),
            rule=RULE,
        ),
        Recorded(
            FILE,
            4,
            "capture",
            (_event("BTC/USDT:USDT", "short", 34959.70, 1.437, 1698871323059),),
            rule=RULE,
        ),
        Recorded(
            FILE,
            5,
            "capture",
            (_event("IOTX/USDT:USDT", "long", 0.06669, 3661.0, 1634653599180),),
            rule=RULE,
        ),
        # From ../shared/fixtures/ws/venues/ (tests/fixtures/ws/binance_usdm.venues.md).
        Recorded(
            VENUES_FILE,
            1,
            "capture",
            (_event("BTC/USDT:USDT", "short", 4706.04, 0.014, 1584059031421),),
            rule=RULE,
        ),
        Recorded(
            VENUES_FILE,
            2,
            "unattributed capture",
            (_event("COTI/USDT:USDT", "short", 0.0219120, 288183.0, 1789672235690),),
            rule=RULE,
        ),
    ),
    entry_of=_order,
    fields=("S", "ap", "z", "T"),
    spoil_market=_spoil,
    oi_path="/fapi/v1/openInterest",
)
