"""Binance COIN-M futures (ccxt ``binancecoinm``): Binance USD-M's feed on inverse contracts.

The liquidation stream is USD-M's ``forceOrder`` (same frames, same rules: sampled, the latest
per symbol per second; ``S`` is the FORCED order's side; ``z`` the accumulated fill) on
``dstream.binance.com``, so the parsers are ``BinanceVenue``'s. What differs is data: sizes are
CONTRACTS of ``contractSize`` USD (100 for BTC, 10 for the others), margined in the coin
(``FrameIntake.amounts`` turns them into coins at the fill price); open interest is in
contracts too; the open-interest history is asked for by pair and contract type and holds the
coins in ``sumOpenInterestValue``. ``!forceOrder@arr`` also carries the dated futures
(``BTCUSD_200925``): configured by symbol (``BTC/USD:BTC-200925``) they count under it;
``symbols: all`` means the perpetuals, as on USD-M.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from exporter.collectors.binance import BinanceVenue
from exporter.events import InvalidEventError, Reason

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping, Sequence

    from exporter.collectors.ccxt_types import CcxtExchange, Market
    from exporter.collectors.history import HistoryLimits
    from exporter.collectors.venue import NativeFeed, OpenInterestFields, OpenInterestItem
    from exporter.events import PositioningSource
    from exporter.venues import Venue


def _inverse_open_interest(
    market: Market, read: Callable[[], OpenInterestFields]
) -> OpenInterestFields:
    """``/dapi/v1/openInterest`` states CONTRACTS (``BinanceVenue`` reads them where USD-M
    states coins): ``contractSize`` USD each, coins at the mark price."""
    contracts, _, mark, timestamp_ms = read()
    size = market.get("contractSize")
    if not isinstance(size, int | float) or size <= 0:
        raise InvalidEventError(Reason.MISSING_FIELD, f"contractSize of {market.get('symbol')}")
    usd = contracts * size
    return usd / mark, usd, mark, timestamp_ms


class BinanceCoinmVenue(BinanceVenue):
    name: ClassVar[Venue] = "binance_coinm"
    ccxt_class: ClassVar[str] = "binancecoinm"
    quantity_in_contracts: ClassVar[bool] = True
    # ccxt 4.5.90 rewrites only the linear root to /market/ws; COIN-M streams stay on /ws.
    NATIVE: ClassVar[NativeFeed] = replace(
        BinanceVenue.NATIVE, default_root="wss://dstream.binance.com", path="/ws"
    )
    # /futures/data/openInterestHist?pair=&contractType=: <= 500 rows, the last 30 days,
    # `sumOpenInterest` in contracts and `sumOpenInterestValue` in the base coin ("unit: base
    # asset", https://developers.binance.com/docs/derivatives/coin-margined-futures/market-data/
    # Open-Interest-Statistics), which ccxt puts in `openInterestValue`. USD-M's budget of that
    # endpoint family (1000 / 5 min per IP, we take half) is assumed. /dapi/v1/klines: 499 rows
    # cost weight 2 where 500-1000 cost 5.
    HISTORY: ClassVar[HistoryLimits] = replace(
        BinanceVenue.HISTORY, open_interest_coins="openInterestValue"
    )
    API: ClassVar[str] = "dapi"
    API_VERSIONS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("Public", "v1"),
        ("Private", "v1"),
        ("PrivateV2", "v2"),
    )
    WS_API: ClassVar[str] = "inverse"
    # /dapi/v1/premiumIndex (every symbol) weighs 10, /dapi/v1/openInterest 1 per symbol
    # (ccxt 4.5.90's cost table; COIN-M's is heavier than USD-M's).
    MARK_PRICE_WEIGHT: ClassVar[int] = 10
    # COIN-M's ratio endpoints name the pair (BTCUSD), not the contract: as ``pair``, except
    # the top traders' account ratio, which calls it ``symbol`` (https://developers.binance.com/
    # docs/derivatives/coin-margined-futures/market-data/rest-api/Top-Long-Short-Account-Ratio).
    RATIO_PARAMS: ClassVar[Mapping[PositioningSource, str]] = {
        "accounts": "pair",
        "top_accounts": "symbol",
        "top_positions": "pair",
    }

    @classmethod
    def ccxt_options(cls) -> dict[str, Any]:
        # The inverse markets (one exchangeInfo call) are what we need.
        return super().ccxt_options() | {"fetchMarkets": {"types": ["inverse"]}}

    @staticmethod
    def ratio_market(market: Market) -> str:
        """The market's pair (``BTCUSD`` for ``BTCUSD_PERP``)."""
        return str(market["info"]["pair"])

    @classmethod
    def coin_symbol(cls, coin: str) -> str:
        """A bare coin is its inverse perpetual, e.g. ``BTC/USD:BTC`` (``BTCUSD_PERP``)."""
        return f"{coin}/USD:{coin}"

    def listed_markets(self, exchange: CcxtExchange) -> list[str]:
        """``symbols: all``: every active inverse perpetual (not the dated futures)."""
        return [
            symbol
            for symbol, market in (exchange.markets or {}).items()
            if market.get("swap") and market.get("inverse") and market.get("active") is not False
        ]

    def watch_calls(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[Callable[[], Coroutine[Any, Any, object]]]:
        """USD-M's call, once per kind of contract: ccxt.pro refuses perpetuals and dated
        futures in one ``watch_liquidations_for_symbols`` ("symbols must be of the same
        type"). None subscribes ``!forceOrder@arr``."""
        if not symbols:
            return super().watch_calls(exchange, symbols)
        return [
            partial(exchange.watch_liquidations_for_symbols, kind) for kind in _by_kind(symbols)
        ]

    def expected_acks(self, symbols: Sequence[str] | None) -> int:
        return len(_by_kind(symbols)) if symbols else 1

    async def read_open_interest(
        self, exchange: CcxtExchange, symbols: Sequence[str] | None
    ) -> list[OpenInterestItem]:
        """USD-M's calls (one ``openInterest`` per symbol, one ``premiumIndex`` for all, per
        kind of contract as ccxt wants) on ``/dapi``; each reading converted from contracts."""
        items: list[OpenInterestItem] = []
        for kind in _by_kind(symbols) if symbols is not None else [None]:
            items += await super().read_open_interest(exchange, kind)
        return [
            item
            if isinstance(item, InvalidEventError)
            else replace(item, read=partial(_inverse_open_interest, item.market, item.read))
            for item in items
        ]


def _by_kind(symbols: Sequence[str]) -> list[list[str]]:
    """The symbols split into perpetuals and dated futures (``BTC/USD:BTC-200925``), the
    non-empty groups only."""
    dated = [s for s in symbols if "-" in s.partition(":")[2]]
    perpetual = [s for s in symbols if s not in dated]
    return [kind for kind in (perpetual, dated) if kind]
