"""Gate USDT futures: the sign of ``size`` is the forced ORDER's side (negative: a sell, so a
long was liquidated); ``|size|`` contracts x ``quanto_multiplier`` coins (0.0001 for BTC_USDT,
as the fake lists it). Only documentation examples exist: no capture was found."""

from __future__ import annotations

from typing import Any

from tests.venues.case import Expected, Recorded, VenueCase

FILE = "gate.docs.jsonl"
RULE = (
    "size is the liquidation order's signed size: negative (ask) => a long was liquidated "
    "(Gate futures WS 'public liquidates order API'; order size sign per Gate APIv4)"
)
BTC_QUANTO = 0.0001


def _event(price: float, contracts: float, ts: int) -> Expected:
    coins = contracts * BTC_QUANTO
    return Expected("BTC/USDT:USDT", "long", price, coins, price * coins, ts)


def _entry(frame: Any) -> Any:
    return frame["result"][0]


def _spoil(frame: Any) -> None:
    _entry(frame)["contract"] = "FOO_USDT"


CASE = VenueCase(
    recorded=(
        # Since 2026-08-20: every order of the contract in the ~1 s cycle, `time` in ms.
        Recorded(
            FILE,
            1,
            "documentation",
            (_event(215.1, 124.5, 1541486601123), _event(215.2, 10.5, 1541486601456)),
            rule=RULE,
        ),
        # Before: one order, `time` in seconds (1541486601 s read as 1541486601000 ms).
        Recorded(FILE, 2, "documentation", (_event(215.1, 124.5, 1541486601000),), rule=RULE),
    ),
    entry_of=_entry,
    # Not `size`: it is signed, so the fuzz's bad values "-1" and -5 are valid sizes there (a
    # long of 1 or 5 contracts); tests/test_venue_gate.py covers bad sizes.
    fields=("price", "time"),
    spoil_market=_spoil,
    oi_path="/api/v4/futures/usdt/tickers",
)
