"""Bybit inverse: ``S`` / ``side`` is the side of the POSITION (Buy => a long was liquidated);
sizes in USD contracts, coins at the bankruptcy price. The recorded frames are the older
``liquidation.<ID>`` topic (tests/fixtures/ws/bybit_inverse.md): no real inverse
``allLiquidation`` frame exists; the fake sends that topic in the documented linear shape."""

from __future__ import annotations

from typing import Any

from tests.venues.case import Expected, Recorded, VenueCase

FILE = "bybit_inverse.jsonl"
RULE = (
    "side is the position's side: Buy => a long was liquidated (Bybit v5 'Liquidation'; v2 "
    "confirmed by Bybit per tardis-node); size in USD contracts"
)


def _event(symbol: str, price: float, usd: float, ts: int) -> Expected:
    """A short liquidated (every recorded frame says Sell) of ``usd`` USD at ``price``."""
    return Expected(symbol, "short", price, usd / price, usd, ts)


def _entry(frame: Any) -> Any:
    return frame["data"][0]


def _spoil(frame: Any) -> None:
    _entry(frame)["s"] = "FOOUSD"


CASE = VenueCase(
    recorded=(
        # v2 shape: side, price, qty (USD), time
        Recorded(
            FILE, 1, "capture", (_event("ETH/USD:ETH", 3384.15, 3655.0, 1631608881954),), rule=RULE
        ),
        Recorded(
            FILE, 2, "capture", (_event("BTC/USD:BTC", 45171.00, 2329.0, 1632123949005),), rule=RULE
        ),
        # v5 snapshot shape: updatedTime, symbol, side, size (USD), price
        Recorded(
            FILE, 3, "capture", (_event("XRP/USD:XRP", 0.5149, 6949.0, 1680673944093),), rule=RULE
        ),
    ),
    entry_of=_entry,
    fields=("S", "v", "p", "T"),
    spoil_market=_spoil,
    oi_path="/v5/market/tickers",
)
