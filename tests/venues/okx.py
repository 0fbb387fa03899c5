"""OKX swaps: ``posSide`` is the side of the POSITION; ``sz`` in contracts x ``ctVal`` coins."""

from __future__ import annotations

from typing import Any

from exporter.events import Reason
from tests.venues.case import Expected, Recorded, VenueCase

FILE = "okx_swap.jsonl"
RULE = "posSide is the position's side (OKX 'Liquidation orders channel'); sz contracts x ctVal"

VENUES_FILE = "okx.venues.jsonl"


def _event(symbol: str, side: str, price: float, coins: float, ts: int) -> Expected:
    return Expected(symbol, side, price, coins, price * coins, ts)  # type: ignore[arg-type]  # literal sides


def _detail(frame: Any) -> Any:
    return frame["data"][0]["details"][0]


def _spoil(frame: Any) -> None:
    frame["data"][0]["instId"] = "FOO-USDT-SWAP"


CASE = VenueCase(
    recorded=(
        Recorded(
            FILE,
            1,
            "capture",
            (_event("BTC/USDT:USDT", "long", 82655.7, 8.55 * 0.01, 1791565600771),),
            rule=RULE,
        ),
        Recorded(
            FILE,
            2,
            "capture",
            (_event("CELO/USDT:USDT", "short", 0.09583, 19979 * 10.0, 1791565462608),),
            rule=RULE,
        ),
        # From ../shared/fixtures/ws/venues/ (tests/fixtures/ws/okx.venues.md).
        # An inverse dated future (instType FUTURES): not a market of this venue.
        Recorded(VENUES_FILE, 1, "capture", rejected={Reason.UNKNOWN_SYMBOL: 1}),
        Recorded(
            VENUES_FILE,
            2,
            "unattributed capture",
            # ctVal 1 as the fake lists CNPY
            (_event("CNPY/USDT:USDT", "short", 0.4162, 2137 * 1.0, 1789669898955),),
            rule=RULE,
        ),
    ),
    entry_of=_detail,
    fields=("posSide", "sz", "bkPx", "ts"),
    spoil_market=_spoil,
    oi_path="/api/v5/public/open-interest",
)
