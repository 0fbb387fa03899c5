"""Binance USD-M futures wire format (ccxt class `binanceusdm`).

REST under /fapi/v1, WebSocket on the raw-stream endpoints (/ws, and /market/ws/<n> that ccxt
rewrites to) with JSON SUBSCRIBE requests. Frames use the raw `/ws` shape `{"e":"forceOrder",...}`.
Keepalive is WebSocket-protocol ping/pong, so there is no application-level ping here.
"""

from __future__ import annotations

from functools import partial
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from exporter.fakeexchange.history import CANDLE_MS
from exporter.fakeexchange.markets import RECORDED_MARKETS, FakeMarket
from exporter.fakeexchange.protocol import (
    ALL_MARKETS,
    BadParameterError,
    Frame,
    Inbound,
    InvalidRequest,
    Liquidation,
    PingRequest,
    Quote,
    RestContext,
    RestHandler,
    RestReply,
    Side,
    SubscribeRequest,
    VenueProtocol,
    compact,
    decimal_str,
    fixed_str,
    floor_to_step,
    int_param,
    json_reply,
    loads_object,
    plain_error,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from exporter.fakeexchange.history import FakeHistory
    from exporter.fakeexchange.markets import MarketState

_ALL_STREAM: Final = "!forceOrder@arr"
_SYMBOL_STREAM_SUFFIX: Final = "@forceOrder"
_PERPETUAL_DELIVERY_MS: Final = 4_133_404_800_000  # Binance's "never" for perpetuals
_ONBOARD_MS: Final = 1_569_398_400_000
_DEFAULT_FUNDING_HOURS: Final = 8
_RATIO_PATHS: Final = {
    "accounts": "globalLongShortAccountRatio",
    "top_accounts": "topLongShortAccountRatio",
    "top_positions": "topLongShortPositionRatio",
}
_OI_HISTORY_MS: Final = 30 * 86_400_000
"""openInterestHist serves the last 30 days; an older `startTime` is refused."""
_OI_PERIODS_MS: Final = {
    name: minutes * 60_000
    for name, minutes in (
        ("5m", 5),
        ("15m", 15),
        ("30m", 30),
        ("1h", 60),
        ("2h", 120),
        ("4h", 240),
        ("6h", 360),
        ("12h", 720),
        ("1d", 1440),
    )
}
"""Open interest is a level: a longer period's rows are the 5-minute rows on its grid."""
_EVENT_LAG_MS: Final = 950
"""E - T in recorded frames is ~1 s (the stream is a 1 s snapshot), so keying on E is caught."""
_LAST_FILL_FRACTION: Final = 0.12
"""`l` is the last partial fill, not the liquidated size: a collector reading ccxt's `contracts`
(which is `l`) instead of `z` under-counts, as it would on the real stream."""
_LIMIT_PRICE_OFFSET: Final = 0.004
"""`p` is the IOC limit price, worse than the average fill `ap` that the notional uses."""


class BinanceProtocol(VenueProtocol):
    """Binance USD-M: `<symbol>@forceOrder` and `!forceOrder@arr` raw streams."""

    venue: ClassVar[str] = "binance"
    # Markets of its recorded frames only (markets.py).
    EXTRA_MARKETS: ClassVar[tuple[FakeMarket, ...]] = (RECORDED_MARKETS["COTI"],)
    ccxt_id: ClassVar[str] = "binanceusdm"
    ws_paths: ClassVar[tuple[str, ...]] = (
        "/ws",
        "/ws/{stream:.*}",
        "/market/ws",
        "/market/ws/{stream:.*}",
    )
    API: ClassVar[str] = "fapi"
    """The REST family: ccxt's `<API>Public`/`<API>Private` roots, served under `/<API>/v1`."""
    WS_API: ClassVar[str] = "linear"
    """ccxt's `urls.api.ws` key of this venue's contracts."""
    FUTURES_TYPE: ClassVar[str | None] = "U_MARGINED"
    """exchangeInfo's `futuresType`; None: the key is absent."""
    RATE_LIMITS: ClassVar[tuple[tuple[str, str, int, int], ...]] = (
        ("REQUEST_WEIGHT", "MINUTE", 1, 2400),
        ("ORDERS", "MINUTE", 1, 1200),
        ("ORDERS", "SECOND", 10, 300),
    )
    """exchangeInfo's `rateLimits`: (type, interval, intervalNum, limit)."""
    ASSETS: ClassVar[tuple[Mapping[str, Any], ...] | None] = (
        {"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"},
    )
    """exchangeInfo's `assets`; None: the key is absent."""

    def market_id(self, market: FakeMarket) -> str:
        """Binance ids are base+quote, e.g. BTCUSDT."""
        return f"{market.base}{market.quote}"

    def ccxt_config(self, rest_url: str, ws_url: str) -> dict[str, Any]:
        """Overrides from EXCHANGES.md: the `API` roots, the stream and `_ccxt_options`."""
        return {
            "urls": {
                "api": {
                    f"{self.API}Public": f"{rest_url}/{self.API}/v1",
                    f"{self.API}Private": f"{rest_url}/{self.API}/v1",
                    f"{self.API}Data": f"{rest_url}/futures/data",
                    "ws": {self.WS_API: f"{ws_url}/ws"},
                },
            },
            "options": self._ccxt_options(),
        }

    def _ccxt_options(self) -> dict[str, Any]:
        """fetchCurrencies off because it needs signed sapi."""
        return {"fetchCurrencies": False}

    # --- REST ---------------------------------------------------------------------------

    def rest_routes(self) -> Mapping[str, RestHandler]:
        """The public `API` endpoints ccxt uses for markets, open interest, mark price and the
        backfill (klines, open-interest statistics)."""
        root = f"/{self.API}/v1"
        return {
            f"{root}/exchangeInfo": self._exchange_info,
            f"{root}/openInterest": self._open_interest,
            f"{root}/premiumIndex": self._premium_index,
            f"{root}/fundingInfo": self._funding_info,
            f"{root}/time": _server_time,
            f"{root}/ping": _ping,
            f"{root}/klines": self._klines,
            "/futures/data/openInterestHist": self._open_interest_hist,
            **{
                f"/futures/data/{path}": partial(self._long_short_ratio, source)
                for source, path in _RATIO_PATHS.items()
            },
        }

    def rest_error(self, status: int) -> RestReply:
        """-1003 JSON for rate limits (429) and bans (418); plain text otherwise, like the CDN."""
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            return json_reply({"code": -1003, "msg": _TOO_MANY}, status)
        if status == HTTPStatus.IM_A_TEAPOT:
            return json_reply({"code": -1003, "msg": _BANNED}, status)
        return plain_error(status)

    def _exchange_info(self, ctx: RestContext) -> RestReply:
        info = {
            "timezone": "UTC",
            "serverTime": ctx.now_ms,
            "futuresType": self.FUTURES_TYPE,
            "rateLimits": [_rate_limit(*limit) for limit in self.RATE_LIMITS],
            "exchangeFilters": [],
            "assets": None if self.ASSETS is None else list(self.ASSETS),
            "symbols": [self._symbol_info(q.market) for q in ctx.quotes],
        }
        return json_reply({key: value for key, value in info.items() if value is not None})

    def _symbol_info(self, m: FakeMarket) -> dict[str, Any]:
        market_id = self.market_id(m)
        max_qty = floor_to_step(50_000_000 / m.mark_price, m.qty_step)
        min_notional = "100" if m.base == "BTC" else "5"
        return {
            "symbol": market_id,
            "pair": market_id,
            "contractType": "PERPETUAL",
            "deliveryDate": _PERPETUAL_DELIVERY_MS,
            "onboardDate": _ONBOARD_MS,
            "status": "TRADING",
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": m.base,
            "quoteAsset": m.quote,
            "marginAsset": m.quote,
            "pricePrecision": m.price_decimals,
            "quantityPrecision": m.qty_decimals,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "triggerProtect": "0.0500",
            "liquidationFee": "0.012500",
            "marketTakeBound": "0.05",
            "maxMoveOrderLimit": 10000,
            "filters": [
                price_filter(m),
                lot_size("LOT_SIZE", m.qty_step, max_qty, m.qty_step),
                lot_size("MARKET_LOT_SIZE", m.qty_step, max_qty, m.qty_step),
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                {"filterType": "MIN_NOTIONAL", "notional": min_notional},
                dict(PERCENT_PRICE_FILTER),
            ],
            "orderTypes": list(ORDER_TYPES),
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
            "permissionSet": ["GRID", "COPY"],
        }

    def _open_interest(self, ctx: RestContext) -> RestReply:
        quote = self._one_quote(ctx)
        if isinstance(quote, RestReply):
            return quote
        return json_reply(self._open_interest_row(quote, ctx.now_ms))

    def _open_interest_row(self, quote: Quote, now_ms: int) -> dict[str, Any]:
        """Open interest in coins."""
        m, state = quote.market, quote.state
        return {
            "symbol": self.market_id(m),
            "openInterest": fixed_str(state.open_interest_coins, m.qty_decimals),
            "time": now_ms,
        }

    def _premium_index(self, ctx: RestContext) -> RestReply:
        if "symbol" not in ctx.query:
            return json_reply(
                [self._premium_row(q.market, q.state, ctx.now_ms) for q in ctx.quotes]
            )
        quote = self._one_quote(ctx)
        if isinstance(quote, RestReply):
            return quote
        return json_reply(self._premium_row(quote.market, quote.state, ctx.now_ms))

    def _premium_row(self, m: FakeMarket, state: MarketState, now_ms: int) -> dict[str, Any]:
        """Mark and index price, the running interval's funding rate and its settlement time
        (https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/
        rest-api/Mark-Price)."""
        mark = state.mark_price
        return {
            "symbol": self.market_id(m),
            "markPrice": f"{mark:.8f}",
            "indexPrice": f"{state.index_price:.8f}",
            "estimatedSettlePrice": f"{mark * 0.9999:.8f}",
            "lastFundingRate": f"{state.funding_rate:.8f}",
            "interestRate": "0.00010000",
            "nextFundingTime": state.next_funding_ms(now_ms),
            "time": now_ms,
        }

    def _funding_info(self, ctx: RestContext) -> RestReply:
        """Only the markets whose funding interval (or rate cap) was adjusted: here, those not
        on 8 h (https://developers.binance.com/docs/derivatives/usds-margined-futures/
        market-data/rest-api/Get-Funding-Rate-Info)."""
        return json_reply(
            [
                {
                    "symbol": self.market_id(q.market),
                    "adjustedFundingRateCap": "0.02000000",
                    "adjustedFundingRateFloor": "-0.02000000",
                    "fundingIntervalHours": q.state.funding_interval_hours,
                    "disclaimer": False,
                }
                for q in ctx.quotes
                if q.state.funding_interval_hours != _DEFAULT_FUNDING_HOURS
            ]
        )

    def _long_short_ratio(self, source: str, ctx: RestContext) -> RestReply:
        """The newest `limit` 5-minute rows of one ratio, oldest first: the long share, the
        short share and their ratio to 4 decimals (https://developers.binance.com/docs/
        derivatives/usds-margined-futures/market-data/rest-api/Long-Short-Ratio, and the
        Top-Trader pages)."""
        quote = self._ratio_quote(ctx, source)
        if isinstance(quote, RestReply):
            return quote
        period = _OI_PERIODS_MS.get(ctx.query.get("period", ""))
        if period is None:
            return _invalid_parameter("period")
        try:
            limit = int_param(ctx.query, "limit", 30, 500) or 30
        except BadParameterError as exc:
            return _invalid_parameter(exc.name)
        ratio = quote.state.long_short[source]
        newest = ctx.now_ms // period * period
        return json_reply(
            [
                self._ratio_row(quote.market, ratio, newest - i * period)
                for i in reversed(range(limit))
            ]
        )

    def _ratio_row(self, m: FakeMarket, ratio: float, ts_ms: int) -> dict[str, Any]:
        return {
            "symbol": self.market_id(m),
            "longShortRatio": f"{ratio:.4f}",
            "longAccount": f"{ratio / (1 + ratio):.4f}",
            "shortAccount": f"{1 / (1 + ratio):.4f}",
            "timestamp": str(ts_ms),
        }

    def _ratio_quote(self, ctx: RestContext, source: str) -> Quote | RestReply:
        """USD-M's ratios are asked for by ?symbol=."""
        del source  # every one alike
        return self._one_quote(ctx)

    def _open_interest_hist(self, ctx: RestContext) -> RestReply:
        """Open-interest statistics of the market `_history_quote` names: ascending rows
        (`_history_row`), at most `limit` (default 30, max 500) of the last 30 days. A page is
        anchored at `endTime` when given (the newest rows up to it), else at `startTime`."""
        quote = self._history_quote(ctx)
        if isinstance(quote, RestReply):
            return quote
        period = _OI_PERIODS_MS.get(ctx.query.get("period", ""))
        if period is None:
            return _invalid_parameter("period")
        try:
            limit = int_param(ctx.query, "limit", 30, 500) or 30
            start = int_param(ctx.query, "startTime")
            end = int_param(ctx.query, "endTime")
        except BadParameterError as exc:
            return _invalid_parameter(exc.name)
        if start is not None and start < ctx.now_ms - _OI_HISTORY_MS:
            return json_reply(
                {"code": -1130, "msg": "parameter 'startTime' is invalid."},
                HTTPStatus.BAD_REQUEST,
            )
        m = quote.market
        history = ctx.history(self.unified_symbol(m))
        newest = end is not None or start is None
        rows = history.pick(start, end, limit, newest=newest, period_ms=period)
        return json_reply([self._history_row(m, history, i) for i in rows])

    def _history_quote(self, ctx: RestContext) -> Quote | RestReply:
        """The market of an openInterestHist request: ?symbol=."""
        return self._one_quote(ctx)

    def _history_row(self, m: FakeMarket, history: FakeHistory, i: int) -> dict[str, Any]:
        """Coins in `sumOpenInterest`, USD in `sumOpenInterestValue`."""
        return {
            "symbol": self.market_id(m),
            "sumOpenInterest": f"{history.open_interest_coins[i]:.8f}",
            "sumOpenInterestValue": f"{history.open_interest_coins[i] * history.open[i]:.8f}",
            "timestamp": int(history.ts_ms[i]),
        }

    def _klines(self, ctx: RestContext) -> RestReply:
        """5-minute klines, ascending: the first `limit` (default 500, max 1500) from
        `startTime`, else the last ones up to `endTime` or now."""
        quote = self._one_quote(ctx)
        if isinstance(quote, RestReply):
            return quote
        if ctx.query.get("interval") != "5m":  # the only interval the fake keeps
            return json_reply({"code": -1120, "msg": "Invalid interval."}, HTTPStatus.BAD_REQUEST)
        try:
            limit = int_param(ctx.query, "limit", 500, 1500) or 500
            start = int_param(ctx.query, "startTime")
            end = int_param(ctx.query, "endTime")
        except BadParameterError as exc:
            return _invalid_parameter(exc.name)
        m = quote.market
        history = ctx.history(self.unified_symbol(m))
        rows = history.pick(start, end, limit, newest=start is None)
        return json_reply([self._kline(m, history, i) for i in rows])

    def _kline(self, m: FakeMarket, history: FakeHistory, i: int) -> list[Any]:
        def price(values: Any) -> str:
            return fixed_str(float(values[i]), m.price_decimals)

        volume, quote_volume, trades, taker_volume, taker_quote = self._kline_volumes(m, history, i)
        ts = int(history.ts_ms[i])
        return [
            ts,
            price(history.open),
            price(history.high),
            price(history.low),
            price(history.close),
            volume,
            ts + CANDLE_MS - 1,
            quote_volume,
            trades,
            taker_volume,
            taker_quote,
            "0",
        ]

    def _kline_volumes(
        self, m: FakeMarket, history: FakeHistory, i: int
    ) -> tuple[str, str, int, str, str]:
        """A kline's volume, quote volume, trade count, taker volume and taker quote volume:
        coins and USDT here."""
        volume = history.volume_coins(i)
        quote_volume = volume * float(history.close[i])
        return (
            fixed_str(volume, m.qty_decimals),
            f"{quote_volume:.5f}",
            max(1, int(volume)),
            fixed_str(volume / 2, m.qty_decimals),
            f"{quote_volume / 2:.5f}",
        )

    def _one_quote(self, ctx: RestContext) -> Quote | RestReply:
        """The quote named by ?symbol=, or Binance's error reply for a missing/unknown one."""
        market_id = ctx.query.get("symbol", "")
        if not market_id:
            return json_reply({"code": -1102, "msg": _MANDATORY_SYMBOL}, HTTPStatus.BAD_REQUEST)
        found = ctx.quote(market_id, self.market_id)
        if found is None:
            return json_reply({"code": -1121, "msg": "Invalid symbol."}, HTTPStatus.BAD_REQUEST)
        return found

    # --- WebSocket ----------------------------------------------------------------------

    def parse(self, text: str) -> Inbound:
        """SUBSCRIBE/UNSUBSCRIBE with a list of stream names and an unsigned integer id."""
        message = loads_object(text)
        if message is None:
            return InvalidRequest(text)
        method = message.get("method")
        params = message.get("params")
        if method not in {"SUBSCRIBE", "UNSUBSCRIBE"} or not isinstance(params, list):
            return InvalidRequest(text)
        if not all(isinstance(p, str) for p in params):
            return InvalidRequest(text)
        keys = frozenset(k for k in (self._stream_key(p) for p in params) if k is not None)
        op: Literal["subscribe", "unsubscribe"] = (
            "subscribe" if method == "SUBSCRIBE" else "unsubscribe"
        )
        # Binance accepts well-formed streams it has no data for and simply never pushes.
        return SubscribeRequest(op, keys, (), message, text)

    def _stream_key(self, stream: str) -> str | None:
        if stream == _ALL_STREAM:
            return ALL_MARKETS
        if stream.endswith(_SYMBOL_STREAM_SUFFIX):
            market = self.by_id.get(stream.removesuffix(_SYMBOL_STREAM_SUFFIX).upper())
            return self.unified_symbol(market) if market is not None else None
        return None

    def ack(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """`{"result":null,"id":N}` for both SUBSCRIBE and UNSUBSCRIBE."""
        del conn_id  # Binance frames carry no connection id
        return [compact({"result": None, "id": request.message.get("id")})]

    def reject(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """The error ccxt documents; it rejects only the stream hash, so the watch hangs."""
        del conn_id
        error = {"code": 2, "msg": "Invalid request: invalid stream"}
        return [compact({"error": error, "id": request.message.get("id")})]

    def invalid(self, request: InvalidRequest, conn_id: str) -> list[str]:
        """Code 3 for unparsable JSON, code 2 for a request Binance cannot interpret."""
        del conn_id
        message = loads_object(request.text)
        if message is None:
            error = {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}
            return [compact({"error": error})]
        error = {"code": 2, "msg": "Invalid request: unknown variable"}
        return [compact({"error": error, "id": message.get("id")})]

    def pong(self, ping: PingRequest, conn_id: str) -> str:
        """Never called: Binance keepalive is protocol-level ping/pong."""
        raise NotImplementedError

    def encode(self, liquidations: Sequence[Liquidation]) -> list[Frame]:
        """One forceOrder event per liquidation, as the raw stream delivers them."""
        return [Frame(self._force_order(liq), liq.symbol, (liq,)) for liq in liquidations]

    def _force_order(self, liq: Liquidation) -> str:
        m = self.market(liq.symbol)
        filled, last = self._fill_sizes(m, liq)
        offset = -_LIMIT_PRICE_OFFSET if liq.side == "long" else _LIMIT_PRICE_OFFSET
        order = {
            "s": self.market_id(m),
            "S": "SELL" if liq.side == "long" else "BUY",
            "o": "LIMIT",
            "f": "IOC",
            "q": filled,
            "p": fixed_str(round(liq.price * (1 + offset), m.price_decimals), m.price_decimals),
            "ap": fixed_str(liq.price, m.price_decimals),
            "X": "FILLED",
            "l": last,
            "z": filled,
            "T": liq.ts_ms,
        }
        event = {"e": "forceOrder", "E": liq.ts_ms + _EVENT_LAG_MS, "o": self._order(m, order)}
        return compact(event)

    def _fill_sizes(self, m: FakeMarket, liq: Liquidation) -> tuple[str, str]:
        """The order's accumulated (`q`, `z`) and last (`l`) fill: coins here."""
        return fixed_str(liq.coins, m.qty_decimals), _last_fill(liq.coins, m.qty_step)

    def _order(self, m: FakeMarket, order: dict[str, Any]) -> dict[str, Any]:
        """The forceOrder `o` in the venue's key order: USD-M's ends with `ps` and `st`."""
        return order | {"ps": self.market_id(m), "st": 1}

    def decode(self, text: str) -> list[Liquidation]:
        """forceOrder events, raw or wrapped in a combined-stream envelope."""
        message = loads_object(text)
        if message is None:
            return []
        if isinstance(message.get("data"), dict):
            message = message["data"]
        order = message.get("o")
        if message.get("e") != "forceOrder" or not isinstance(order, dict):
            return []
        market = self.by_id.get(str(order.get("s")))
        if market is None:
            return []
        price = float(order["ap"])
        coins = self._filled_coins(market, float(order["z"]), price)
        if coins is None:
            return []
        side: Side = "long" if order.get("S") == "SELL" else "short"
        return [Liquidation(self.unified_symbol(market), side, price, coins, int(order["T"]))]

    def _filled_coins(self, market: FakeMarket, filled: float, price: float) -> float | None:
        """Coins of a forceOrder's `z` at its fill price (None: no liquidation to log); USD-M's
        `z` is coins."""
        del market, price
        return filled


ORDER_TYPES: Final = (
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
)
"""exchangeInfo's `orderTypes` of every futures symbol (USD-M and COIN-M)."""
PERCENT_PRICE_FILTER: Final = {
    "filterType": "PERCENT_PRICE",
    "multiplierUp": "1.0500",
    "multiplierDown": "0.9500",
    "multiplierDecimal": "4",
}


def price_filter(m: FakeMarket) -> dict[str, Any]:
    """A symbol's PRICE_FILTER: its tick, up to 50 times the mark price."""
    return {
        "filterType": "PRICE_FILTER",
        "minPrice": m.tick_size,
        "maxPrice": fixed_str(m.mark_price * 50, m.price_decimals),
        "tickSize": m.tick_size,
    }


def lot_size(kind: str, min_qty: str, max_qty: str, step: str) -> dict[str, Any]:
    """A LOT_SIZE or MARKET_LOT_SIZE filter."""
    return {"filterType": kind, "minQty": min_qty, "maxQty": max_qty, "stepSize": step}


def _last_fill(coins: float, step: str) -> str:
    """A last-fill size strictly below the accumulated one (see `_LAST_FILL_FRACTION`)."""
    last = floor_to_step(coins * _LAST_FILL_FRACTION, step)
    if float(last) > 0:
        return last
    return decimal_str(coins * _LAST_FILL_FRACTION)


def _invalid_parameter(name: str) -> RestReply:
    return json_reply(
        {"code": -1130, "msg": f"Data sent for parameter '{name}' is not valid."},
        HTTPStatus.BAD_REQUEST,
    )


def _rate_limit(kind: str, interval: str, num: int, limit: int) -> dict[str, Any]:
    return {"rateLimitType": kind, "interval": interval, "intervalNum": num, "limit": limit}


def _server_time(ctx: RestContext) -> RestReply:
    return json_reply({"serverTime": ctx.now_ms})


def _ping(ctx: RestContext) -> RestReply:
    del ctx
    return json_reply({})


_TOO_MANY: Final = (
    "Too many requests; current limit of IP(127.0.0.1) is 2400 requests per minute. "
    "Please use the websocket for live updates to avoid polling the API."
)
_BANNED: Final = (
    "Way too many requests; IP(127.0.0.1) banned until 4102444800000. "
    "Please use the websocket for live updates to avoid bans."
)
_MANDATORY_SYMBOL: Final = (
    "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
)
