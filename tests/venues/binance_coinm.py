"""Binance COIN-M: ``o.S`` is the side of the forced ORDER (SELL closes a long), as on USD-M;
``z`` (filled) in CONTRACTS of 100 USD (BTC) or 10 USD, at the average fill price ``ap``."""

from __future__ import annotations

from typing import Any

from tests.venues.case import Expected, Recorded, VenueCase

FILE = "binance_coinm.jsonl"
RULE = (
    "o.S is the forced order's side: SELL => a long was liquidated (Binance COIN-M "
    "'Liquidation Order Streams'); z contracts x contractSize USD"
)


def _order(frame: Any) -> Any:
    return frame["data"]["o"] if "data" in frame else frame["o"]


def _spoil(frame: Any) -> None:
    _order(frame)["s"] = "FOOUSD_PERP"


CASE = VenueCase(
    recorded=(
        # The dated quarter BTCUSD_200925: 3 contracts x 100 USD at 9352.7.
        Recorded(
            FILE,
            1,
            "capture",
            (Expected("BTC/USD:BTC-200925", "long", 9352.7, 300.0 / 9352.7, 300.0, 1594622954021),),
            rule=RULE,
        ),
    ),
    entry_of=_order,
    fields=("S", "ap", "z", "T"),
    spoil_market=_spoil,
    oi_path="/dapi/v1/openInterest",
)
