"""Deribit: liquidations are trades flagged ``liquidation`` ("T": the taker was liquidated, "M":
the maker); ``direction`` is the taker's side; ``amount`` is USD on inverse perpetuals."""

from __future__ import annotations

from typing import Any

from tests.venues.case import Expected, Recorded, VenueCase

FILE = "deribit.jsonl"
TAKER = (
    "liquidation T: the taker was liquidated, direction is its order side: sell => a long "
    "(Deribit 'trades.(instrument_name).(interval)'); amount USD on BTC-PERPETUAL"
)
MAKER = (
    "liquidation M: the maker was liquidated, its order is opposite the taker's direction: "
    "buy => the maker sold => a long (Deribit 'trades.(instrument_name).(interval)'); amount USD"
)


def _inverse(side: str, price: float, usd: float, ts: int) -> Expected:
    """A BTC-PERPETUAL liquidation: ``amount`` is USD, coins = USD / price."""
    return Expected("BTC/USD:BTC", side, price, usd / price, usd, ts)  # type: ignore[arg-type]  # literal sides


def _trade(frame: Any) -> Any:
    return frame["params"]["data"][0]


def _spoil(frame: Any) -> None:
    _trade(frame)["instrument_name"] = "FOO-PERPETUAL"


CASE = VenueCase(
    recorded=(
        Recorded(FILE, 1, "capture", (_inverse("long", 4469.5, 1120, 1584058044032),), rule=TAKER),
        Recorded(FILE, 2, "capture", (_inverse("long", 4458.5, 2500, 1584058067675),), rule=MAKER),
    ),
    entry_of=_trade,
    # Not `liquidation`: a trade without the flag is an ordinary trade, not a bad entry.
    fields=("direction", "price", "amount", "timestamp"),
    spoil_market=_spoil,
    oi_path="/api/v2/public/get_book_summary_by_currency",
)
