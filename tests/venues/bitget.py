"""Bitget USDT-M (UTA v3 ``liquidation``): ``side`` is the side of the POSITION (buy: a long
was liquidated); ``amount`` in USDT (quote coin), so coins are amount / price."""

from __future__ import annotations

from typing import Any

from tests.venues.case import Expected, Recorded, VenueCase

RULE = (
    "side is the position's side: buy => a long was liquidated; amount in quote coin "
    "(Bitget UTA 'Liquidation Channel')"
)


def _event(symbol: str, side: str, price: float, usdt: float, ts: int) -> Expected:
    return Expected(symbol, side, price, usdt / price, usdt, ts)  # type: ignore[arg-type]  # literal sides


def _entry(frame: Any) -> Any:
    return frame["data"][0]


def _spoil(frame: Any) -> None:
    _entry(frame)["symbol"] = "FOOBARUSDT"


CASE = VenueCase(
    recorded=(
        # 13.70319 USDT at 0.1649 is 83.1 APE, 143.330431857868 at 0.500280739469 is 286.5 IP:
        # whole lot sizes, as a quote-coin amount must give.
        Recorded(
            "bitget.jsonl",
            1,
            "capture",
            (
                _event("APE/USDT:USDT", "long", 0.1649, 13.70319, 1777358886549),
                _event("IP/USDT:USDT", "long", 0.500280739469, 143.330431857868, 1777358876983),
            ),
            rule=RULE,
        ),
        Recorded(
            "bitget.docs.jsonl",
            1,
            "documentation",
            (_event("BTC/USDT:USDT", "long", 89000.0, 37.722858, 1736371332162),),
            rule=RULE,
        ),
    ),
    entry_of=_entry,
    fields=("side", "price", "amount", "ts"),
    spoil_market=_spoil,
    oi_path="/api/v2/mix/market/tickers",
)
