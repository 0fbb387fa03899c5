"""dYdX v4: liquidations are ``v4_trades`` trades of type LIQUIDATED; ``side`` is the forced
order's (SELL => a long was liquidated); ``size`` in the base coin; ``createdAt`` ISO-8601."""

from __future__ import annotations

from typing import Any

from tests.venues.case import Expected, Recorded, VenueCase

RULE = (
    "type LIQUIDATED: the taker is the liquidation order and side is the taker's order side: "
    "SELL => a long (v4-chain indexer trade-types.ts, docs.dydx.xyz websockets); size in coins"
)


def _event(price: float, coins: float, ts: int) -> Expected:
    return Expected("BTC/USDC:USDC", "long", price, coins, price * coins, ts)


def _trade(frame: Any) -> Any:
    return frame["contents"]["trades"][0]


def _spoil(frame: Any) -> None:
    frame["id"] = "FOO-USD"


CASE = VenueCase(
    recorded=(
        # A LIMIT trade (not an entry) and a LIQUIDATED one.
        Recorded("dydx_v4.jsonl", 1, "capture", (_event(22.87, 3.9, 1722756890628),), rule=RULE),
        Recorded(
            "dydx_v4.unattributed.jsonl",
            1,
            "unattributed capture",
            (_event(75974.0, 0.0004, 1789652387542),),
            rule=RULE,
        ),
    ),
    entry_of=_trade,
    # Not `type`: a trade of another type is an ordinary trade, not a bad entry.
    fields=("side", "size", "price", "createdAt"),
    spoil_market=_spoil,
    oi_path="/v4/perpetualMarkets",
)
