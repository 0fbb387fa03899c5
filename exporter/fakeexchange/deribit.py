"""Deribit wire format (ccxt class `deribit` for REST; liquidations only on the native client).

REST under /api/v2/public with the JSON-RPC envelope `{"jsonrpc":"2.0","result":...,"usIn",...}`;
WebSocket /ws/api/v2 speaking JSON-RPC 2.0: `public/subscribe` to `trades.<instrument>.100ms`,
answered with the list of channels taken (an unknown channel is silently left out, the `raw`
interval refused with 13778), `public/set_heartbeat` answered `"ok"`, `public/test` answered
with the version. Liquidations are trades flagged `liquidation` ("T" taker, "M" maker); the
fake alternates the two within a frame so both rules are exercised. BTC and ETH are listed as
the inverse perpetuals (`BTC-PERPETUAL`, amounts in USD, whole contracts of 10 and 1 USD),
every other market as the linear `<COIN>_USDC-PERPETUAL` (amounts in the coin). A book
summary carries each perpetual's open interest, mark and index price and its funding rate.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Decimal
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from exporter.fakeexchange.protocol import (
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
    group_by_symbol,
    json_reply,
    loads_object,
    plain_error,
    stable_id,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from exporter.fakeexchange.markets import FakeMarket

_VERSION: Final = "1.2.26"
_LINEAR_SETTLE: Final = "USDC"
_INVERSE: Final = {"BTC": ("10", "0.5"), "ETH": ("1", "0.05")}
"""Deribit's inverse perpetuals: contract size in USD and tick, per coin."""
_PERPETUAL_EXPIRY_MS: Final = 32503708800000
_LISTED_MS: Final = 1534242287000
_INTERVALS: Final = ("100ms", "agg2")
_RAW: Final = "raw"
_PREFIX: Final = "trades."
# The position side from the taker's `direction`, per liquidated party (see the adapter).
_DIRECTION: Final[dict[str, dict[Side, str]]] = {
    "T": {"long": "sell", "short": "buy"},
    "M": {"long": "buy", "short": "sell"},
}
_FLAGS: Final = ("T", "M")


def _step(value: float, step: str) -> Decimal:
    """``value`` rounded to a multiple of ``step``, at least one step."""
    quantum = Decimal(step)
    units = (Decimal(decimal_str(value)) / quantum).to_integral_value(rounding=ROUND_HALF_EVEN)
    return max(units, Decimal(1)) * quantum


def _number(value: Decimal) -> float | int:
    """A JSON number as Deribit prints it: ``4469.5``, ``1120``, ``0.0012``."""
    return int(value) if value == value.to_integral_value() else float(value)


class DeribitProtocol(VenueProtocol):
    """Deribit perpetuals: one `trades.<instrument>.100ms` channel per instrument."""

    venue: ClassVar[str] = "deribit"
    ccxt_id: ClassVar[str] = "deribit"
    ws_paths: ClassVar[tuple[str, ...]] = ("/ws/api/v2",)

    def __init__(self, markets: Sequence[FakeMarket], *, extra: bool = True) -> None:
        super().__init__(markets, extra=extra)
        self._trade_seq = itertools.count(40_781_986)

    def market_id(self, market: FakeMarket) -> str:
        if _inverse(market):
            return f"{market.base}-PERPETUAL"
        return f"{market.base}_{_LINEAR_SETTLE}-PERPETUAL"

    def unified_symbol(self, market: FakeMarket) -> str:
        """ccxt's symbol: base/counter:settlement currency."""
        if _inverse(market):
            return f"{market.base}/USD:{market.base}"
        return f"{market.base}/{_LINEAR_SETTLE}:{_LINEAR_SETTLE}"

    def quantize(self, liquidation: Liquidation) -> Liquidation:
        """Prices on the tick; amounts in whole USD contracts (inverse) or coin steps."""
        m = self.market(liquidation.symbol)
        price = _step(liquidation.price, _tick(m))
        if _inverse(m):
            usd = _step(liquidation.coins * float(price), _INVERSE[m.base][0])
            return replace(liquidation, price=float(price), coins=float(usd) / float(price))
        coins = _step(liquidation.coins, m.qty_step)
        return replace(liquidation, price=float(price), coins=float(coins))

    def ccxt_config(self, rest_url: str, ws_url: str) -> dict[str, Any]:
        return {"urls": {"api": {"rest": rest_url, "ws": f"{ws_url}/ws/api/v2"}}}

    # --- REST ---------------------------------------------------------------------------

    def rest_routes(self) -> Mapping[str, RestHandler]:
        """Currencies and instruments (load_markets), book summaries (open interest, mark)."""
        return {
            "/api/v2/public/get_currencies": self._currencies,
            "/api/v2/public/get_instruments": self._instruments,
            "/api/v2/public/get_book_summary_by_currency": self._book_summaries,
            "/api/v2/public/get_time": lambda ctx: _result(ctx, ctx.now_ms),
        }

    def rest_error(self, status: int) -> RestReply:
        """10028 `too_many_requests` for 429 (ccxt: DDoSProtection); a bare page otherwise."""
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            error = {"message": "too_many_requests", "code": 10028}
            return json_reply({"jsonrpc": "2.0", "error": error, "testnet": False}, status)
        return plain_error(status)

    def _currencies(self, ctx: RestContext) -> RestReply:
        codes = sorted({_settle(q.market) for q in ctx.quotes})
        rows = [
            {
                "withdrawal_priorities": [],
                "withdrawal_fee": 0.0001,
                "min_withdrawal_fee": 0.0001,
                "min_confirmations": 1,
                "fee_precision": 4,
                "currency_long": code,
                "currency": code,
                "coin_type": code,
            }
            for code in codes
        ]
        return _result(ctx, rows)

    def _instruments(self, ctx: RestContext) -> RestReply:
        """Perpetuals of ``currency`` (settlement currency; absent or ``any``: all) when
        ``kind`` is ``future`` or absent; other kinds are not listed here."""
        currency = ctx.query.get("currency", "any")
        kind = ctx.query.get("kind", "future")
        quotes = self._of_currency(ctx, currency)
        if quotes is None:
            return _invalid_param("currency")
        listed = [self._instrument(q.market) for q in quotes] if kind == "future" else []
        return _result(ctx, listed)

    def _instrument(self, m: FakeMarket) -> dict[str, Any]:
        inverse = _inverse(m)
        size = _INVERSE[m.base][0] if inverse else m.qty_step
        counter = "USD" if inverse else _LINEAR_SETTLE
        return {
            "tick_size": float(_tick(m)),
            "taker_commission": 0.0005,
            "settlement_period": "perpetual",
            "settlement_currency": _settle(m),
            "quote_currency": counter,
            "price_index": f"{m.base.lower()}_{counter.lower()}",
            "min_trade_amount": float(size),
            "max_liquidation_commission": 0.0075,
            "max_leverage": m.max_leverage,
            "maker_commission": 0.0,
            "kind": "future",
            "is_active": True,
            "instrument_name": self.market_id(m),
            "instrument_type": "reversed" if inverse else "linear",
            "future_type": "reversed" if inverse else "linear",
            "expiration_timestamp": _PERPETUAL_EXPIRY_MS,
            "creation_timestamp": _LISTED_MS,
            "counter_currency": counter,
            "contract_size": float(size),
            "block_trade_commission": 0.00025,
            "base_currency": m.base,
        }

    def _book_summaries(self, ctx: RestContext) -> RestReply:
        """Open interest (USD on inverse, coins on linear perpetuals) and mark price."""
        currency = ctx.query.get("currency")
        quotes = self._of_currency(ctx, currency) if currency and currency != "any" else None
        if quotes is None:
            return _invalid_param("currency")
        kind = ctx.query.get("kind", "future")
        rows = [self._summary(q, ctx.now_ms) for q in quotes] if kind == "future" else []
        return _result(ctx, rows)

    def _summary(self, quote: Quote, now_ms: int) -> dict[str, Any]:
        """A perpetual's row (https://docs.deribit.com/api-reference/market-data/
        public-get_book_summary_by_currency): the index as ``estimated_delivery_price``, the
        state's funding rate as ``current_funding`` (Deribit states every rate per 8 h: the
        state's interval has nowhere to go), ``funding_8h`` the trailing 8 hours' funding, here
        the same rate."""
        m, state = quote.market, quote.state
        mark = state.mark_price
        if _inverse(m):
            open_interest: float = float(round(state.open_interest_coins * mark))  # whole USD
        else:
            open_interest = state.open_interest_coins
        return {
            "high": mark * 1.03,
            "low": mark * 0.97,
            "last": mark,
            "instrument_name": self.market_id(m),
            "bid_price": mark,
            "ask_price": mark,
            "open_interest": open_interest,
            "mark_price": mark,
            "creation_timestamp": now_ms,
            "price_change": 1.25,
            "volume": state.open_interest_coins * 0.1,
            "estimated_delivery_price": state.index_price,
            "base_currency": m.base,
            "quote_currency": "USD" if _inverse(m) else _LINEAR_SETTLE,
            "volume_usd": state.open_interest_coins * mark * 0.1,
            "volume_notional": state.open_interest_coins * mark * 0.1,
            "current_funding": state.funding_rate,
            "funding_8h": state.funding_rate,
            "mid_price": mark,
        }

    def _of_currency(self, ctx: RestContext, currency: str | None) -> list[Quote] | None:
        """The listed perpetuals settled in ``currency`` (``any``: all); None for a currency
        Deribit does not know."""
        if currency == "any":
            return list(ctx.quotes)
        quotes = [q for q in ctx.quotes if _settle(q.market) == currency]
        known = {_settle(q.market) for q in ctx.quotes} | {"USDT", "EURR"}
        return quotes if currency in known else None

    # --- WebSocket ----------------------------------------------------------------------

    def parse(self, text: str) -> Inbound:
        """JSON-RPC: `public/subscribe`/`unsubscribe` with `params.channels`; the heartbeat
        set-up and `public/test` are keepalive."""
        message = loads_object(text)
        if message is None:
            return InvalidRequest(text)
        method = message.get("method")
        if method in ("public/set_heartbeat", "public/test"):
            return PingRequest(message)
        params = message.get("params")
        channels = params.get("channels") if isinstance(params, dict) else None
        if method not in ("public/subscribe", "public/unsubscribe") or not isinstance(
            channels, list
        ):
            return InvalidRequest(text)
        keys: set[str] = set()
        invalid: list[str] = []
        for channel in channels:
            market = self._channel_market(channel)
            if market is None:
                invalid.append(str(channel))
            else:
                keys.add(self.unified_symbol(market))
        op: Literal["subscribe", "unsubscribe"] = (
            "subscribe" if method == "public/subscribe" else "unsubscribe"
        )
        return SubscribeRequest(op, frozenset(keys), tuple(invalid), message, text)

    def _channel_market(self, channel: object) -> FakeMarket | None:
        if not isinstance(channel, str) or not channel.startswith(_PREFIX):
            return None
        instrument, _, interval = channel.removeprefix(_PREFIX).rpartition(".")
        return self.by_id.get(instrument) if interval in _INTERVALS else None

    def ack(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """The channels taken, as Deribit lists them."""
        del conn_id
        taken = [c for c in _channels(request) if self._channel_market(c) is not None]
        return [_answer(request.message, {"result": taken})]

    def reject(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """`raw` without authorisation: 13778; unknown channels are silently left out of the
        list (all unknown: an empty list; the fake then takes none of the call's channels,
        where Deribit would take the known ones); a refusal of the whole call: 10028."""
        del conn_id
        if any(c.endswith(f".{_RAW}") for c in request.invalid):
            error = {"code": 13778, "message": "raw_subscriptions_not_available_for_unauthorized"}
            return [_answer(request.message, {"error": error})]
        if request.invalid:
            return self.ack(request, "")
        error = {"code": 10028, "message": "too_many_requests"}
        return [_answer(request.message, {"error": error})]

    def invalid(self, request: InvalidRequest, conn_id: str) -> list[str]:
        """Unparsable text: 11050 without an id; an unknown method: -32601."""
        del conn_id
        message = loads_object(request.text)
        if message is None:
            error: dict[str, Any] = {
                "code": 11050,
                "data": "invalid json",
                "message": "bad_request",
            }
            return [compact({"jsonrpc": "2.0", "error": error, "testnet": False})]
        error = {"code": -32601, "message": "Method not found"}
        return [_answer(message, {"error": error})]

    def pong(self, ping: PingRequest, conn_id: str) -> str:
        """`"ok"` for the heartbeat set-up, the version for `public/test`."""
        del conn_id
        if ping.message.get("method") == "public/set_heartbeat":
            return _answer(ping.message, {"result": "ok"})
        return _answer(ping.message, {"result": {"version": _VERSION}})

    def encode(self, liquidations: Sequence[Liquidation]) -> list[Frame]:
        """One `trades.<instrument>.100ms` frame per instrument, a flagged trade each."""
        return [self._frame(group) for group in group_by_symbol(liquidations)]

    def _frame(self, group: Sequence[Liquidation]) -> Frame:
        m = self.market(group[0].symbol)
        market_id = self.market_id(m)
        size = Decimal(_INVERSE[m.base][0] if _inverse(m) else m.qty_step)
        trades = []
        for i, liq in enumerate(group):
            flag = _FLAGS[i % len(_FLAGS)]
            price = Decimal(decimal_str(liq.price))
            amount = (
                _step(liq.coins * liq.price, str(size))
                if _inverse(m)
                else _step(liq.coins, m.qty_step)
            )
            seq = next(self._trade_seq)
            trades.append(
                {
                    "trade_seq": seq,
                    "trade_id": str(stable_id(liq, flag)),
                    "timestamp": liq.ts_ms,
                    "tick_direction": 3 if _DIRECTION[flag][liq.side] == "sell" else 1,
                    "price": _number(price),
                    "mark_price": _number(price),
                    "liquidation": flag,
                    "instrument_name": market_id,
                    "index_price": _number(price),
                    "direction": _DIRECTION[flag][liq.side],
                    "amount": _number(amount),
                    "contracts": _number(amount / size),
                }
            )
        params = {"channel": f"{_PREFIX}{market_id}.100ms", "data": trades}
        text = compact({"jsonrpc": "2.0", "method": "subscription", "params": params})
        return Frame(text, self.unified_symbol(m), tuple(group))

    def decode(self, text: str) -> list[Liquidation]:
        """Every liquidated party of every flagged trade (two for "MT")."""
        message = loads_object(text)
        params = message.get("params") if message is not None else None
        data = params.get("data") if isinstance(params, dict) else None
        if message is None or message.get("method") != "subscription" or not isinstance(data, list):
            return []
        out = []
        for trade in data:
            market = self.by_id.get(str(trade.get("instrument_name")))
            flag = trade.get("liquidation")
            price = float(trade["price"])
            if market is None or flag not in ("T", "M", "MT") or price == 0:
                continue  # not a liquidation this fake can read (a fuzzed frame)
            amount = float(trade["amount"])
            coins = amount / price if _inverse(market) else amount
            for party in ("M", "T") if flag == "MT" else (flag,):
                side: Side = "long" if _DIRECTION[party]["long"] == trade["direction"] else "short"
                symbol = self.unified_symbol(market)
                out.append(Liquidation(symbol, side, price, coins, int(trade["timestamp"])))
        return out


def _inverse(market: FakeMarket) -> bool:
    return market.base in _INVERSE


def _settle(market: FakeMarket) -> str:
    return market.base if _inverse(market) else _LINEAR_SETTLE


def _tick(market: FakeMarket) -> str:
    return _INVERSE[market.base][1] if _inverse(market) else market.tick_plain


def _channels(request: SubscribeRequest) -> list[str]:
    params = request.message.get("params")
    channels = params.get("channels") if isinstance(params, dict) else None
    return [str(c) for c in channels] if isinstance(channels, list) else []


def _answer(request: Mapping[str, Any], body: Mapping[str, Any]) -> str:
    """A JSON-RPC answer echoing the request's id (none when it had none)."""
    answer: dict[str, Any] = {"jsonrpc": "2.0"}
    if "id" in request:
        answer["id"] = request["id"]
    return compact({**answer, **body, "testnet": False})


def _result(ctx: RestContext, result: object) -> RestReply:
    """The REST envelope, with Deribit's microsecond request timestamps."""
    us_in = ctx.now_ms * 1000
    body = {
        "jsonrpc": "2.0",
        "result": result,
        "usIn": us_in,
        "usOut": us_in + 112,
        "usDiff": 112,
        "testnet": False,
    }
    return RestReply(HTTPStatus.OK, json.dumps(body, separators=(",", ":")))


def _invalid_param(param: str) -> RestReply:
    """Deribit answers a bad parameter with HTTP 400 and JSON-RPC -32602 (ccxt: BadRequest)."""
    error = {"message": "Invalid params", "data": {"reason": "wrong format", "param": param}}
    body = {"jsonrpc": "2.0", "error": {**error, "code": -32602}, "testnet": False}
    return json_reply(body, HTTPStatus.BAD_REQUEST)
