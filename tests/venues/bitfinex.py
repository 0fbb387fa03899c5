"""Bitfinex: ``liq:global`` rows by position; a trigger row (IS_MATCH 0) is one liquidation,
AMOUNT > 0 a LONG position, in coins; price LIQUIDATION_PRICE, else BASE_PRICE."""

from __future__ import annotations

from typing import Any

from tests.venues.case import Expected, Recorded, VenueCase

FILE = "bitfinex.jsonl"
DOCS = "bitfinex.docs.jsonl"
RULE = (
    "AMOUNT > 0 is a long position (Bitfinex 'Liquidations'); only IS_MATCH 0 (the initial "
    "trigger) counts; price LIQUIDATION_PRICE, or BASE_PRICE where that is null"
)


def _event(symbol: str, side: str, price: float, coins: float, ts: int) -> Expected:
    return Expected(symbol, side, price, coins, price * coins, ts)  # type: ignore[arg-type]  # literal sides


def _row(frame: Any) -> Any:
    return frame[1][0]


def _spoil(frame: Any) -> None:
    _row(frame)[4] = "tFOOF0:USTF0"


CASE = VenueCase(
    recorded=(
        # A trigger with its LIQUIDATION_PRICE (9080); BASE_PRICE 9135.97 is the entry price.
        Recorded(
            FILE,
            1,
            "capture",
            (_event("BTC/USDT:USDT", "long", 9080.0, 0.00268657, 1593522802742),),
            rule=RULE,
        ),
        Recorded(FILE, 2, "capture"),  # a heartbeat: nothing
        Recorded(FILE, 3, "capture"),  # a market execution (IS_MATCH 1): not counted
        # The trigger of line 3's position; LIQUIDATION_PRICE null, so BASE_PRICE.
        Recorded(
            FILE,
            4,
            "capture",
            (_event("ETH/USDT:USDT", "short", 222.248906484356, 8.6007, 1594036710534),),
            rule=RULE,
        ),
        Recorded(DOCS, 1, "documentation"),  # a market execution of a margin pair: nothing
    ),
    entry_of=_row,
    # MTS, BASE_PRICE (the price the fake's trigger rows carry) and IS_MATCH. AMOUNT is read
    # too but left out: any signed number is valid there (-5 is a short of 5 coins).
    fields=(2, 6, 8),
    spoil_market=_spoil,
    oi_path="/v2/status/deriv",
)
