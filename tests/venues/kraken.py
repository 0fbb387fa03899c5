"""Kraken Futures: ``side`` is the taker's side, and a liquidation is an IOC order for the
liquidated account, so sell => a long was liquidated. The recordings are inverse ``PI_``
perpetuals: ``qty`` is USD (coins = USD / price)."""

from __future__ import annotations

from typing import Any

from tests.venues.case import Expected, Recorded, VenueCase

FILE = "kraken_futures.jsonl"
RULE = (
    "side is the taker's side and the liquidation is the taker (an IOC order): sell => a long "
    "was liquidated (Kraken Futures WS 'trade'; Equity Protection Process); PI_ qty in USD"
)


def _inverse(symbol: str, side: str, price: float, usd: float, ts: int) -> Expected:
    return Expected(symbol, side, price, usd / price, usd, ts)  # type: ignore[arg-type]  # literal sides


def _spoil(frame: Any) -> None:
    frame["product_id"] = "PF_FOOUSD"


CASE = VenueCase(
    recorded=(
        Recorded(
            FILE,
            1,
            "capture",
            (_inverse("XRP/USD:XRP", "long", 0.1736, 12000.0, 1593561965283),),
            rule=RULE,
        ),
        Recorded(
            FILE,
            2,
            "capture",
            (_inverse("ETH/USD:ETH", "short", 231.6, 250.0, 1593620853613),),
            rule=RULE,
        ),
    ),
    entry_of=lambda frame: frame,  # a trade message is its own entry
    # Not `type`: a trade of another type is not a liquidation, so it is skipped, not invalid.
    fields=("side", "qty", "price", "time"),
    spoil_market=_spoil,
    oi_path="/derivatives/api/v3/tickers",
)
