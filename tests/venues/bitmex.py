"""BitMEX: an order's ``insert`` is one liquidation; ``side`` is the ORDER's (Buy => a short
was liquidated); ``leavesQty`` contracts (XBTUSD: 1 USD each; XBTUSDT: 1e-6 BTC); no time."""

from __future__ import annotations

from typing import Any

from exporter.events import Reason
from tests.venues.case import Expected, Recorded, VenueCase

FILE = "bitmex.jsonl"
LIVE = "bitmex.unattributed.jsonl"
RULE = (
    "side is the liquidation order's (BitMEX '/liquidation field definitions'): Buy => a short "
    "was liquidated; counted once, at insert"
)
XBTUSD = "BTC/USD:BTC"
XBTUSDT = "BTC/USDT:USDT"
XBTUSDT_COINS = 1e-6  # 1 / underlyingToPositionMultiplier


def _inverse(side: str, price: float, usd: float) -> Expected:
    """XBTUSD: contracts are USD."""
    return Expected(XBTUSD, side, price, usd / price, usd, None)  # type: ignore[arg-type]  # literal sides


def _linear(side: str, price: float, contracts: int) -> Expected:
    coins = contracts * XBTUSDT_COINS
    return Expected(XBTUSDT, side, price, coins, coins * price, None)  # type: ignore[arg-type]  # literal sides


def _order(frame: Any) -> Any:
    return frame["data"][0]


def _spoil(frame: Any) -> None:
    _order(frame)["symbol"] = "FOOUSD"


def _nothing(line: int) -> Recorded:
    """A partial, update or delete: never counted."""
    return Recorded(LIVE, line, "unattributed capture")


def _insert(line: int, event: Expected) -> Recorded:
    return Recorded(LIVE, line, "unattributed capture", (event,), rule=RULE)


CASE = VenueCase(
    recorded=(
        Recorded(FILE, 1, "capture", (_inverse("short", 10106.0, 9214.0),), rule=RULE),
        Recorded(FILE, 2, "capture"),  # its delete
        _nothing(1),  # the partial after subscribing
        _insert(2, _linear("short", 87785.3, 39700)),
        _nothing(3),
        _insert(4, _inverse("short", 88051.8, 1500.0)),
        _nothing(5),
        _insert(6, _inverse("short", 88225.6, 15800.0)),
        _nothing(7),  # a new price
        _nothing(8),
        _insert(9, _inverse("short", 88303.7, 50900.0)),
        _nothing(10),  # partly filled: leavesQty 50700
        _nothing(11),
        _nothing(12),
        # ETHUSD is a quanto contract, not listed: its insert names an unknown market.
        Recorded(LIVE, 13, "unattributed capture", rejected={Reason.UNKNOWN_SYMBOL: 1}),
        _nothing(14),
        _nothing(15),
        _nothing(16),
        _insert(17, _inverse("long", 90396.3, 891800.0)),
        _nothing(18),
        _nothing(19),
        _insert(20, _linear("short", 90748.8, 10800)),
        _nothing(21),
        _nothing(22),
        _insert(23, _linear("long", 89440.2, 100)),
        _nothing(24),
    ),
    entry_of=_order,
    fields=("side", "price", "leavesQty"),
    spoil_market=_spoil,
    oi_path="/api/v1/instrument/active",
    # After a reconnect BitMEX sends the open orders (the partial, not counted), not past inserts.
    replays_after_reconnect=False,
)
