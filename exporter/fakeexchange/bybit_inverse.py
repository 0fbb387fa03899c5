"""Bybit v5 inverse wire format (ccxt class `bybit`, category `inverse`).

Bybit linear's protocol (`BybitProtocol`: `{"op":"subscribe"}` requests, acks, errors, the
`{"op":"ping"}` keepalive) on `/v5/public/inverse`, for inverse perpetuals (`BTCUSD`, unified
`BTC/USD:BTC`). What differs is data: sizes are whole USD contracts, so `v` is USD; a ticker's
`openInterest` is USD and its `openInterestValue` coins. No real inverse `allLiquidation` frame
has been recorded (tests/fixtures/ws/bybit_inverse.md): `encode` uses the documented linear
shape, `{"topic","type","ts","data":[{"T","s","S","v","p"}]}`, with USD in `v`. `decode` also
reads the two older topics the recorded inverse frames come from. Funding, index price
(tickers, instruments-info) and `/v5/market/account-ratio?category=inverse` are linear's.

Not served yet: inverse open-interest history and klines (the collector asks for none; see
`BybitInverseVenue.HISTORY`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Final

from exporter.fakeexchange.bybit import BybitProtocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from exporter.fakeexchange.markets import FakeMarket
    from exporter.fakeexchange.protocol import Liquidation, Quote

_TICKS: Final = {"BTC": "0.50", "ETH": "0.05"}
"""Inverse price ticks where they differ from the shared table (BTCUSD prints "45171.00")."""
_MAX_ORDER_USD: Final = "30000000"


def inverse_market(market: FakeMarket) -> FakeMarket:
    """A shared table row as Bybit lists its inverse perpetual: quoted in USD (``market_id``
    is then ``BTCUSD``; sizes on the wire are whole USD contracts, ``qty_step`` stays the coin
    step the tests draw from)."""
    if market.quote == "USD":
        return market
    tick = _TICKS.get(market.base, market.tick_size)
    return replace(market, quote="USD", tick_size=tick)


class BybitInverseProtocol(BybitProtocol):
    """Bybit inverse: one `allLiquidation.<ID>` topic per symbol, sizes in USD."""

    venue: ClassVar[str] = "bybit_inverse"
    ws_paths: ClassVar[tuple[str, ...]] = ("/v5/public/inverse",)
    CATEGORY: ClassVar[str] = "inverse"
    EXTRA_MARKETS: ClassVar[tuple[FakeMarket, ...]] = ()  # linear's recorded markets are not here
    LEVERAGE_CAP: ClassVar[float] = 100
    FUNDING_CAP: ClassVar[str] = "0.00375"
    SERVES_HISTORY: ClassVar[bool] = False
    """Not served yet: the collector asks for none (`BybitInverseVenue.HISTORY`)."""
    LEGACY_FIELDS: ClassVar[tuple[tuple[str, tuple[str, str, str, str, str]], ...]] = (
        ("qty", ("symbol", "side", "price", "qty", "time")),
        ("side", ("symbol", "side", "price", "size", "updatedTime")),
    )
    """The v2 form (`qty`, `time`) of the topic before the retired v5 one (both have `side`)."""

    def __init__(self, markets: Sequence[FakeMarket], *, extra: bool = True) -> None:
        super().__init__([inverse_market(m) for m in markets], extra=extra)

    def unified_symbol(self, market: FakeMarket) -> str:
        """ccxt's ``BTC/USD:BTC``: quoted in USD, settled in the coin."""
        return f"{market.base}/USD:{market.base}"

    def quantize(self, liquidation: Liquidation) -> Liquidation:
        """Whole USD contracts (at least one) at the bankruptcy price: ``coins`` becomes what
        they are worth, so the sent-frame log holds what the wire says."""
        usd = _usd(liquidation.coins, liquidation.price)
        return replace(liquidation, coins=usd / liquidation.price)

    # --- REST ---------------------------------------------------------------------------

    def _instrument(self, quote: Quote) -> dict[str, Any]:
        """An InversePerpetual: settled in the coin, lots of one USD contract (ccxt 4.5.90
        reads ``minOrderQty`` as the contract size of inverse markets)."""
        m = quote.market
        return super()._instrument(quote) | {
            "contractType": "InversePerpetual",
            "lotSizeFilter": {
                "maxOrderQty": _MAX_ORDER_USD,
                "minOrderQty": "1",
                "qtyStep": "1",
                "postOnlyMaxOrderQty": _MAX_ORDER_USD,
                "maxMktOrderQty": "3000000",
            },
            "settleCoin": m.base,
            "copyTrading": "none",
        }

    def _ticker(self, quote: Quote, now_ms: int) -> dict[str, Any]:
        """Open interest in USD contracts, its value in coins (the docs' BTCUSD example:
        "openInterest": "373504107", "openInterestValue": "22505.67"); 24 h volume in USD
        and turnover in coins. Funding and index price as on linear (the docs' example row
        is this inverse one)."""
        state, mark = quote.state, quote.state.mark_price
        open_interest_usd = _usd(state.open_interest_coins, mark, minimum=0)
        return super()._ticker(quote, now_ms) | {
            "openInterest": str(open_interest_usd),
            "openInterestValue": f"{open_interest_usd / mark:.2f}",
            "turnover24h": f"{state.open_interest_coins * 2.5:.8f}",
            "volume24h": str(open_interest_usd * 5 // 2),
            "ask1Size": "1",
            "bid1Size": "1",
        }

    # --- WebSocket ----------------------------------------------------------------------

    def _size(self, m: FakeMarket, liq: Liquidation) -> str:
        """`v` in whole USD contracts (allLiquidation in the documented linear shape)."""
        del m
        return str(_usd(liq.coins, liq.price))

    def _coins(self, size: float, price: float) -> float | None:
        """Sizes are USD, coins at the frame's price."""
        if not price > 0:
            return None
        return size / price


def _usd(coins: float, price: float, *, minimum: int = 1) -> int:
    """``coins`` at ``price`` in whole USD contracts (at least ``minimum``)."""
    return max(minimum, round(coins * price))
