"""HTX USDT swaps: ``direction`` is the forced ORDER's side (sell => a long was liquidated);
``amount`` is in coins. The coin-margined recordings (dated futures, coin swaps) are not USDT
swaps: no market of ours, so each is rejected as an unknown symbol."""

from __future__ import annotations

from typing import Any

from exporter.events import Reason
from tests.venues.case import Expected, Recorded, VenueCase

FILE = "htx.jsonl"
UNATTRIBUTED = "htx.unattributed.jsonl"
RULE = (
    "direction is the liquidation order's side: sell => a long was liquidated (HTX USDT swap "
    "doc 'Subscribe Liquidation Orders'; amount in coins)"
)
COIN_MARGINED = {Reason.UNKNOWN_SYMBOL: 1}


def _event(symbol: str, side: str, price: float, coins: float, ts: int) -> Expected:
    return Expected(symbol, side, price, coins, price * coins, ts)  # type: ignore[arg-type]  # literal sides


def _entry(frame: Any) -> Any:
    return frame["data"][0]


def _spoil(frame: Any) -> None:
    _entry(frame)["contract_code"] = "FOO-USDT"


CASE = VenueCase(
    recorded=(
        # Coin-margined products (BTC200703 and BTC200925 dated futures, ETH-USD and BSV-USD
        # coin swaps) on other HTX endpoints: we list USDT swaps only.
        Recorded(FILE, 1, "capture", rejected=COIN_MARGINED, rule=RULE),
        Recorded(FILE, 2, "capture", rejected=COIN_MARGINED, rule=RULE),
        Recorded(FILE, 3, "capture", rejected=COIN_MARGINED, rule=RULE),
        Recorded(FILE, 4, "capture", rejected=COIN_MARGINED, rule=RULE),
        Recorded(FILE, 5, "capture", rejected=COIN_MARGINED, rule=RULE),
        Recorded(
            FILE,
            6,
            "capture",
            (_event("BTC/USDT:USDT", "long", 23350.5, 0.227, 1608226502284),),
            rule=RULE,
        ),
        Recorded(
            UNATTRIBUTED,
            1,
            "unattributed capture",
            (_event("ETH/USDT:USDT", "short", 2446.26, 5.0, 1789670297212),),
            rule=RULE,
        ),
        Recorded(UNATTRIBUTED, 2, "unattributed capture"),  # the subscription's ack: nothing
    ),
    entry_of=_entry,
    fields=("direction", "amount", "price", "created_at"),
    spoil_market=_spoil,
    oi_path="/linear-swap-api/v1/swap_open_interest",
)
