"""Binance COIN-M futures wire format (ccxt class `binancecoinm`).

Binance USD-M's protocol (`BinanceProtocol`: SUBSCRIBE requests, acks, errors, keepalive) on
the COIN-M roots: REST under /dapi/v1 and /futures/data, streams on `dstream`'s /ws (ccxt
connects to /ws/<n>). What differs is data: markets are inverse (`BTCUSD_PERP`, unified
`BTC/USD:BTC`), sizes are whole CONTRACTS of 100 USD (BTC) or 10 USD (the others), open
interest is in contracts, the open-interest history is asked for by pair and contract type and
states coins in `sumOpenInterestValue`, and `forceOrder` carries the pair (`ps`) second, as in
the recorded frame. The dated BTC future of that recording (`BTCUSD_200925`) is listed too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, Final

from exporter.fakeexchange.binance import (
    _LAST_FILL_FRACTION,
    _PERPETUAL_DELIVERY_MS,
    ORDER_TYPES,
    PERCENT_PRICE_FILTER,
    BinanceProtocol,
    lot_size,
    price_filter,
)
from exporter.fakeexchange.markets import FakeMarket
from exporter.fakeexchange.protocol import (
    Liquidation,
    Quote,
    RestContext,
    RestReply,
    json_reply,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from exporter.fakeexchange.history import FakeHistory

_BTC_CONTRACT_USD: Final = 100
_ALT_CONTRACT_USD: Final = 10
"""A contract's face value in USD: 100 for BTC, 10 for every other coin (COIN-M contract specs)."""
_TICKS: Final = {"BTC": "0.1", "ETH": "0.01"}
"""COIN-M price ticks where they differ from the shared table (BTCUSD_PERP prints "9352.7")."""
_ONBOARD_MS: Final = 1_596_006_000_000


@dataclass(frozen=True)
class CoinmMarket(FakeMarket):
    """A COIN-M contract: ``contract_usd`` USD per contract; ``delivery_ms`` None for the
    perpetual, else the delivery time of a dated future (``BTCUSD_200925``)."""

    contract_usd: int = _ALT_CONTRACT_USD
    delivery_ms: int | None = None

    @property
    def delivery(self) -> str:
        """The id's suffix: ``PERP`` or the delivery date as yymmdd."""
        if self.delivery_ms is None:
            return "PERP"
        return datetime.fromtimestamp(self.delivery_ms / 1000, UTC).strftime("%y%m%d")


def coinm_market(market: FakeMarket) -> CoinmMarket:
    """A shared table row as COIN-M lists that coin: its perpetual, quoted in USD (sizes on
    the wire are whole contracts; ``qty_step`` stays the coin step the tests draw from)."""
    if isinstance(market, CoinmMarket):
        return market
    return CoinmMarket(
        market.base,
        _TICKS.get(market.base, market.tick_size),
        market.qty_step,
        market.contract_size,
        market.okx_lot_size,
        min(market.max_leverage, 125),
        market.mark_price,
        market.open_interest_coins,
        quote="USD",
        contract_usd=_BTC_CONTRACT_USD if market.base == "BTC" else _ALT_CONTRACT_USD,
    )


# The quarter of tests/fixtures/ws/binance_coinm.jsonl (July 2020), delivered 2020-09-25 08:00
# UTC; listed at that era's price so the recorded frame replays to `BTC/USD:BTC-200925`.
BTCUSD_200925: Final = CoinmMarket(
    "BTC",
    "0.1",
    "0.001",
    "0.01",
    "0.01",
    125,
    9_350.0,
    2_000.0,
    quote="USD",
    contract_usd=_BTC_CONTRACT_USD,
    delivery_ms=1_601_020_800_000,
)


class BinanceCoinmProtocol(BinanceProtocol):
    """Binance COIN-M: `<symbol>@forceOrder` and `!forceOrder@arr` on inverse contracts."""

    venue: ClassVar[str] = "binance_coinm"
    ccxt_id: ClassVar[str] = "binancecoinm"
    ws_paths: ClassVar[tuple[str, ...]] = ("/ws", "/ws/{stream:.*}")
    API: ClassVar[str] = "dapi"
    WS_API: ClassVar[str] = "inverse"
    FUTURES_TYPE: ClassVar[str | None] = None
    RATE_LIMITS: ClassVar[tuple[tuple[str, str, int, int], ...]] = (
        ("REQUEST_WEIGHT", "MINUTE", 1, 2400),
        ("ORDERS", "MINUTE", 1, 1200),
    )
    ASSETS: ClassVar[tuple[Mapping[str, Any], ...] | None] = None
    EXTRA_MARKETS: ClassVar[tuple[FakeMarket, ...]] = (BTCUSD_200925,)

    def __init__(self, markets: Sequence[FakeMarket], *, extra: bool = True) -> None:
        super().__init__([coinm_market(m) for m in markets], extra=extra)

    def market_id(self, market: FakeMarket) -> str:
        """``BTCUSD_PERP``, or ``BTCUSD_200925`` for a dated future."""
        return f"{market.base}USD_{coinm_market(market).delivery}"

    def unified_symbol(self, market: FakeMarket) -> str:
        """ccxt's ``BTC/USD:BTC`` (settled in the coin), ``BTC/USD:BTC-200925`` when dated."""
        m = coinm_market(market)
        symbol = f"{m.base}/USD:{m.base}"
        return symbol if m.delivery_ms is None else f"{symbol}-{m.delivery}"

    def _ccxt_options(self) -> dict[str, Any]:
        """Inverse markets only (one exchangeInfo call), no signed currencies."""
        return super()._ccxt_options() | {"fetchMarkets": {"types": ["inverse"]}}

    def quantize(self, liquidation: Liquidation) -> Liquidation:
        """Whole contracts (at least one) at the fill price: ``coins`` becomes what they are
        worth, so the sent-frame log holds what the wire says."""
        m = coinm_market(self.market(liquidation.symbol))
        contracts = _contracts(liquidation.coins, liquidation.price, m.contract_usd)
        coins = contracts * m.contract_usd / liquidation.price
        return Liquidation(
            liquidation.symbol, liquidation.side, liquidation.price, coins, liquidation.ts_ms
        )

    # --- REST ---------------------------------------------------------------------------

    def _symbol_info(self, market: FakeMarket) -> dict[str, Any]:
        m = coinm_market(market)
        return {
            "symbol": self.market_id(m),
            "pair": f"{m.base}USD",
            "contractType": _contract_type(m),
            "deliveryDate": _PERPETUAL_DELIVERY_MS if m.delivery_ms is None else m.delivery_ms,
            "onboardDate": _ONBOARD_MS,
            "contractStatus": "TRADING",
            "contractSize": m.contract_usd,
            "marginAsset": m.base,
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": m.base,
            "quoteAsset": "USD",
            "pricePrecision": m.price_decimals,
            "quantityPrecision": 0,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "equalQtyPrecision": 4,
            "maxMoveOrderLimit": 10000,
            "triggerProtect": "0.0500",
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "filters": [
                price_filter(m),
                lot_size("LOT_SIZE", "1", "1000000", "1"),
                lot_size("MARKET_LOT_SIZE", "1", "60000", "1"),
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                dict(PERCENT_PRICE_FILTER),
            ],
            "orderTypes": list(ORDER_TYPES),
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            "liquidationFee": "0.015000",
            "marketTakeBound": "0.05",
        }

    def _open_interest_row(self, quote: Quote, now_ms: int) -> dict[str, Any]:
        """Open interest in whole contracts, with the pair and contract type."""
        m = coinm_market(quote.market)
        contracts = _contracts(
            quote.state.open_interest_coins, quote.state.mark_price, m.contract_usd, minimum=0
        )
        return {
            "symbol": self.market_id(m),
            "pair": f"{m.base}USD",
            "openInterest": str(contracts),
            "contractType": _contract_type(m),
            "time": now_ms,
        }

    def _premium_index(self, ctx: RestContext) -> RestReply:
        """Always a list (COIN-M's answer), narrowed by ?symbol= or ?pair=."""
        wanted_symbol = ctx.query.get("symbol")
        wanted_pair = ctx.query.get("pair")
        rows = [
            self._coinm_premium_row(q, ctx.now_ms)
            for q in ctx.quotes
            if wanted_symbol in {None, self.market_id(q.market)}
            and wanted_pair in {None, f"{q.market.base}USD"}
        ]
        if wanted_symbol and not rows:
            return json_reply({"code": -1121, "msg": "Invalid symbol."}, HTTPStatus.BAD_REQUEST)
        return json_reply(rows)

    def _coinm_premium_row(self, quote: Quote, now_ms: int) -> dict[str, Any]:
        m = coinm_market(quote.market)
        row = self._premium_row(m, quote.state, now_ms)
        row["pair"] = f"{m.base}USD"
        if m.delivery_ms is not None:  # a dated future pays no funding
            row |= {"lastFundingRate": "", "interestRate": "", "nextFundingTime": 0}
        # the USD-M row's keys, with the pair second as COIN-M sends it
        return {"symbol": row.pop("symbol"), "pair": row.pop("pair"), **row}

    def _ratio_row(self, m: FakeMarket, ratio: float, ts_ms: int) -> dict[str, Any]:
        """COIN-M names the pair and sends the time as a number (https://developers.binance.com/
        docs/derivatives/coin-margined-futures/market-data/Long-Short-Ratio)."""
        row = super()._ratio_row(m, ratio, ts_ms)
        del row["symbol"]
        return {"pair": f"{m.base}USD", **row, "timestamp": ts_ms}

    def _ratio_quote(self, ctx: RestContext, source: str) -> Quote | RestReply:
        """COIN-M's ratios are asked for by the pair: ?pair=, but ?symbol= for the top traders'
        account ratio (its documented parameter); the pair's perpetual."""
        name = "symbol" if source == "top_accounts" else "pair"
        pair = ctx.query.get(name, "")
        if not pair:
            msg = f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
            return json_reply({"code": -1102, "msg": msg}, HTTPStatus.BAD_REQUEST)
        quote = next(
            (
                q
                for q in ctx.quotes
                if f"{q.market.base}USD" == pair and coinm_market(q.market).delivery_ms is None
            ),
            None,
        )
        if quote is None:
            return json_reply({"code": -1121, "msg": "Invalid symbol."}, HTTPStatus.BAD_REQUEST)
        return quote

    def _history_quote(self, ctx: RestContext) -> Quote | RestReply:
        """COIN-M's statistics are asked for by ?pair= and ?contractType=, both mandatory."""
        pair = ctx.query.get("pair", "")
        contract_type = ctx.query.get("contractType", "")
        if not pair or not contract_type:
            name = "pair" if not pair else "contractType"
            msg = f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
            return json_reply({"code": -1102, "msg": msg}, HTTPStatus.BAD_REQUEST)
        quote = next(
            (
                q
                for q in ctx.quotes
                if f"{q.market.base}USD" == pair and _contract_type(q.market) == contract_type
            ),
            None,
        )
        if quote is None:
            return json_reply({"code": -1121, "msg": "Invalid symbol."}, HTTPStatus.BAD_REQUEST)
        return quote

    def _history_row(self, market: FakeMarket, history: FakeHistory, i: int) -> dict[str, Any]:
        """The pair and contract type; contracts in `sumOpenInterest`, coins in
        `sumOpenInterestValue`."""
        m = coinm_market(market)
        return {
            "pair": f"{m.base}USD",
            "contractType": _contract_type(m),
            "sumOpenInterest": f"{self._history_contracts(m, history, i)}.00000000",
            "sumOpenInterestValue": f"{history.open_interest_coins[i]:.8f}",
            "timestamp": int(history.ts_ms[i]),
        }

    @staticmethod
    def _history_contracts(m: CoinmMarket, history: FakeHistory, i: int) -> int:
        """Open interest of row ``i`` in contracts (its coins at the candle's close)."""
        coins = float(history.open_interest_coins[i])
        return _contracts(coins, float(history.close[i]), m.contract_usd, minimum=0)

    def _kline_volumes(
        self, market: FakeMarket, history: FakeHistory, i: int
    ) -> tuple[str, str, int, str, str]:
        """COIN-M klines: volume in contracts, then the same in coins ("base asset volume")."""
        coins = history.volume_coins(i)
        contracts = _contracts(
            coins, float(history.close[i]), coinm_market(market).contract_usd, minimum=0
        )
        return (
            str(contracts),
            f"{coins:.8f}",
            max(1, contracts // 10),
            str(contracts // 2),
            f"{coins / 2:.8f}",
        )

    # --- WebSocket ----------------------------------------------------------------------

    def _fill_sizes(self, m: FakeMarket, liq: Liquidation) -> tuple[str, str]:
        """Whole contracts (`quantize` made `coins` a whole number of them)."""
        contracts = _contracts(liq.coins, liq.price, coinm_market(m).contract_usd)
        return str(contracts), str(max(1, int(contracts * _LAST_FILL_FRACTION)))

    def _order(self, m: FakeMarket, order: dict[str, Any]) -> dict[str, Any]:
        """The keys in the recorded frame's order: the pair (`ps`) second."""
        return {"s": order.pop("s"), "ps": f"{m.base}USD", **order}

    def _filled_coins(self, market: FakeMarket, filled: float, price: float) -> float | None:
        """`z` contracts of `contractSize` USD, in coins at the fill price."""
        if not price > 0:  # a fuzzed frame: no liquidation to log
            return None
        return filled * coinm_market(market).contract_usd / price


def _contracts(coins: float, price: float, contract_usd: int, *, minimum: int = 1) -> int:
    """``coins`` at ``price`` in whole contracts of ``contract_usd`` USD (at least ``minimum``)."""
    return max(minimum, round(coins * price / contract_usd))


def _contract_type(market: FakeMarket) -> str:
    return "PERPETUAL" if coinm_market(market).delivery_ms is None else "CURRENT_QUARTER"
