"""Bybit v5 inverse contracts (ccxt ``bybit``, category ``inverse``): Bybit linear's feed on
coin-margined markets.

``allLiquidation.<ID>`` on ``/v5/public/inverse`` covers inverse contracts too ("Covers: USDT
contract / USDC contract / Inverse contract", https://bybit-exchange.github.io/docs/v5/websocket/
public/all-liquidation) with linear's frames, so the parsers are ``BybitVenue``'s: ``S`` is the
side of the POSITION (Buy: a long was liquidated), one topic per symbol, every liquidation.
What differs is data: ``v`` is in CONTRACTS of 1 USD (``FrameIntake.amounts`` turns USD into
coins at the bankruptcy price ``p``), and a ticker's ``openInterest`` is USD (linear's: coins).
Two older topics are read as well, since the only recorded inverse frames are theirs: the
retired v5 ``liquidation.<ID>`` (``side``, ``size``, ``updatedTime``) and its v2 form (``side``,
``qty``, ``time``).

Funding, index price and the accounts' long/short ratio are read as on linear (``BybitVenue``)
with ``category=inverse``: the tickers row carries ``indexPrice``, ``fundingRate``,
``nextFundingTime`` and ``fundingIntervalHour`` (the docs' example is the inverse BTCUSD row,
https://bybit-exchange.github.io/docs/v5/market/tickers), and ``/v5/market/account-ratio`` takes
``inverse`` ("Product type. linear (USDT Contract), inverse",
https://bybit-exchange.github.io/docs/v5/market/long-short-ratio).

ccxt 4.5.90 takes an inverse market's ``contractSize`` from ``lotSizeFilter.minOrderQty`` (1 on
every inverse market Bybit lists today); a market with a larger minimum would be mis-sized.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from exporter.collectors import fields
from exporter.collectors.bybit import BybitVenue
from exporter.events import InvalidEventError, Reason

if TYPE_CHECKING:
    from collections.abc import Mapping

    from exporter.collectors.ccxt_types import CcxtExchange
    from exporter.collectors.history import HistoryLimits
    from exporter.collectors.venue import NativeFeed, OpenInterestFields
    from exporter.venues import Venue


class BybitInverseVenue(BybitVenue):
    name: ClassVar[Venue] = "bybit_inverse"
    ccxt_class: ClassVar[str] = "bybit"
    quantity_in_contracts: ClassVar[bool] = True
    CATEGORY: ClassVar[str] = "inverse"
    NATIVE: ClassVar[NativeFeed] = replace(BybitVenue.NATIVE, path="/v5/public/inverse")
    # `SIDES` are linear's: the side of the liquidated POSITION in allLiquidation and the
    # retired v5 topic. The v2 `side` was documented as a bare "Side"; Bybit confirmed the same
    # meaning (tardis-node src/mappers/bybit.ts: "from bybit telegram: When "side":"Buy", a
    # long position was liquidated").
    # The entry shapes are BybitVenue's (allLiquidation, v2 `qty`, the retired v5 topic).
    # /v5/market/open-interest states inverse open interest in USD ("BTCUSD(inverse) is USD",
    # https://bybit-exchange.github.io/docs/v5/market/open-interest) and ccxt puts it in
    # `openInterestValue`: no field holds coins, which the backfill needs. None until the
    # backfill converts USD at the candle's price: the heatmap starts from live readings.
    HISTORY: ClassVar[HistoryLimits | None] = None

    @classmethod
    def coin_symbol(cls, coin: str) -> str:
        """A bare coin is its inverse perpetual, e.g. ``BTC/USD:BTC`` (``BTCUSD``)."""
        return f"{coin}/USD:{coin}"

    def listed_markets(self, exchange: CcxtExchange) -> list[str]:
        """``symbols: all``: every active inverse perpetual (not the dated futures)."""
        return [
            symbol
            for symbol, market in (exchange.markets or {}).items()
            if market.get("swap") and market.get("inverse") and market.get("active") is not False
        ]

    @staticmethod
    def ticker_open_interest(info: Mapping[str, Any]) -> OpenInterestFields:
        """An inverse ticker's ``openInterest`` is USD (whole contracts) and ``openInterestValue``
        the same in coins at the mark price, rounded to 2 decimals (the docs' BTCUSD example:
        373504107 USD at mark 16596 is "22505.67", https://bybit-exchange.github.io/docs/v5/
        market/tickers): coins are taken from the exact USD figure. No per-symbol time."""
        usd = fields.number(info, "openInterest")
        mark = fields.number(info, "markPrice")
        if mark <= 0:
            raise InvalidEventError(Reason.NOT_POSITIVE, f"markPrice={mark!r}")
        return usd / mark, usd, mark, None
