"""Bitget USDT-M futures wire format (ccxt class `bitget` for REST, the UTA v3 public socket).

REST under /api/v2 with the `{"code":"00000","msg":"success","requestTime","data"}` envelope;
WebSocket /v3/ws/public with `{"op":"subscribe","args":[{"instType":"usdt-futures","topic":
"liquidation"}]}`, acknowledged per arg, refused with `{"event":"error","code":30001,...}`, and a
text `ping` answered `pong`. A push carries `side` (of the POSITION), `price` and `amount` in
USDT (quote coin). The real feed keeps only the largest long and short per pair per second;
the fake sends every liquidation it is given, so tests can count them.

Funding and index price follow the market state: the tickers' `fundingRate` and `indexPrice`,
and `/api/v2/mix/market/current-fund-rate` in its all-symbols form (no `symbol`), one row per
contract with `fundingRate`, `fundingRateInterval` (hours) and `nextUpdate` (ms), all strings
(https://www.bitget.com/api-doc/contract/market/Get-Current-Funding-Rate); the contract list's
`fundInterval` is the state's interval too.
"""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, Final

from exporter.fakeexchange.markets import FakeMarket
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
    ack_each_arg,
    compact,
    decimal_str,
    decoded_entries,
    fixed_str,
    group_by_symbol,
    json_reply,
    loads_object,
    parse_op_args,
    plain_error,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

_TOPIC: Final = "liquidation"
_INST_TYPE: Final = "usdt-futures"
_PRODUCT_TYPE: Final = "USDT-FUTURES"
# Every productType ccxt asks for while loading markets; only USDT-FUTURES lists anything here.
_PRODUCT_TYPES: Final = frozenset(
    {
        "USDT-FUTURES",
        "COIN-FUTURES",
        "USDC-FUTURES",
        "SUSDT-FUTURES",
        "SCOIN-FUTURES",
        "SUSDC-FUTURES",
    }
)
_SIDES: Final[dict[Side, str]] = {"long": "buy", "short": "sell"}
_PUSH_LAG_MS: Final = 1000
"""Frame `ts` is the push time, after the second its entries happened in."""
_LAUNCH_MS: Final = "1569398400000"
_FUNDING_BOUNDS: Final = ("-0.003", "0.003")
"""Bitget's `minFundingRate` / `maxFundingRate` of BTCUSDT, as its documentation shows them."""


class BitgetProtocol(VenueProtocol):
    """Bitget USDT-M: one `liquidation` topic for every pair of the instType."""

    venue: ClassVar[str] = "bitget"
    ccxt_id: ClassVar[str] = "bitget"
    ws_paths: ClassVar[tuple[str, ...]] = ("/v3/ws/public",)
    # APEUSDT and IPUSDT: the pairs of the recorded frame (tests/fixtures/ws/bitget.jsonl).
    EXTRA_MARKETS: ClassVar[tuple[FakeMarket, ...]] = (
        FakeMarket("APE", "0.0001", "0.1", "1", "0.1", 50, 0.1649, 20_000_000.0),
        FakeMarket("IP", "0.0001", "0.1", "1", "0.1", 50, 0.5, 10_000_000.0),
    )

    def market_id(self, market: FakeMarket) -> str:
        """Bitget ids are base+quote, e.g. BTCUSDT."""
        return f"{market.base}{market.quote}"

    def ccxt_config(self, rest_url: str, ws_url: str) -> dict[str, Any]:
        """REST roots and contracts only (the stream is native: ccxt.pro has no public
        liquidations for bitget)."""
        del ws_url
        return {
            "urls": {"api": {"spot": rest_url, "mix": rest_url}},
            "options": {"fetchMarkets": {"types": ["swap"]}},
        }

    def new_conn_id(self) -> str:
        """Bitget connection ids look like `0ac601fffe2331d1-0000b8a2-02ec8f7d-...`."""
        h = uuid.uuid4().hex + uuid.uuid4().hex
        return f"{h[:16]}-{h[16:24]}-{h[24:32]}-{h[32:48]}-{h[48:56]}"

    # --- REST ---------------------------------------------------------------------------

    def rest_routes(self) -> Mapping[str, RestHandler]:
        """Coins and contracts (load_markets), tickers (open interest, mark and index price,
        funding rate) and the current funding rates (the funding schedule)."""
        return {
            "/api/v2/spot/public/coins": self._coins,
            "/api/v2/mix/market/contracts": self._contracts,
            "/api/v2/mix/market/tickers": self._tickers,
            "/api/v2/mix/market/current-fund-rate": self._current_fund_rate,
        }

    def rest_error(self, status: int) -> RestReply:
        """Code 429 for 429 (ccxt: DDoSProtection, a rate limit); plain text otherwise."""
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            body = {"code": "429", "msg": "Too Many Requests", "requestTime": 0, "data": None}
            return json_reply(body, status)
        return plain_error(status)

    def _coins(self, ctx: RestContext) -> RestReply:
        coins = sorted({q.market.base for q in ctx.quotes} | {q.market.quote for q in ctx.quotes})
        return json_reply(_envelope(ctx.now_ms, [_coin(i, c) for i, c in enumerate(coins, 1)]))

    def _contracts(self, ctx: RestContext) -> RestReply:
        product = self._product_type(ctx)
        if isinstance(product, RestReply):
            return product
        quotes = ctx.quotes if product == _PRODUCT_TYPE else []
        return json_reply(_envelope(ctx.now_ms, [self._contract(q) for q in quotes]))

    def _contract(self, quote: Quote) -> dict[str, Any]:
        m = quote.market
        return {
            "symbol": self.market_id(m),
            "baseCoin": m.base,
            "quoteCoin": m.quote,
            "buyLimitPriceRatio": "0.01",
            "sellLimitPriceRatio": "0.01",
            "feeRateUpRatio": "0.005",
            "makerFeeRate": "0.0002",
            "takerFeeRate": "0.0006",
            "openCostUpRatio": "0.01",
            "supportMarginCoins": [m.quote],
            "minTradeNum": m.qty_step,
            "priceEndStep": "1",
            "volumePlace": str(m.qty_decimals),
            "pricePlace": str(m.tick_decimals),
            "sizeMultiplier": m.qty_step,
            "symbolType": "perpetual",
            "minTradeUSDT": "5",
            "maxSymbolOrderNum": "200",
            "maxProductOrderNum": "400",
            "maxPositionNum": "150",
            "symbolStatus": "normal",
            "offTime": "-1",
            "limitOpenTime": "-1",
            "deliveryTime": "",
            "deliveryStartTime": "",
            "deliveryPeriod": "",
            "launchTime": _LAUNCH_MS,
            "fundInterval": str(quote.state.funding_interval_hours),
            "minLever": "1",
            "maxLever": str(m.max_leverage),
            "posLimit": "0.05",
            "maintainTime": "",
        }

    def _tickers(self, ctx: RestContext) -> RestReply:
        """Every contract of the productType: `holdingAmount` is open interest in coins."""
        product = self._product_type(ctx)
        if isinstance(product, RestReply):
            return product
        quotes = ctx.quotes if product == _PRODUCT_TYPE else []
        return json_reply(_envelope(ctx.now_ms, [self._ticker(q, ctx.now_ms) for q in quotes]))

    def _ticker(self, quote: Quote, now_ms: int) -> dict[str, Any]:
        m, state = quote.market, quote.state
        mark = state.mark_price
        tick = float(m.tick_size)

        def price(value: float) -> str:
            return fixed_str(round(value, m.tick_decimals), m.tick_decimals)

        volume = state.open_interest_coins * 2.5
        return {
            "symbol": self.market_id(m),
            "lastPr": price(mark),
            "askPr": price(mark + tick),
            "bidPr": price(mark - tick),
            "bidSz": m.qty_step,
            "askSz": m.qty_step,
            "high24h": price(mark * 1.03),
            "low24h": price(mark * 0.97),
            "ts": str(now_ms),
            "change24h": "0.0204",
            "baseVolume": fixed_str(volume, m.qty_decimals),
            "quoteVolume": f"{volume * mark:.5f}",
            "usdtVolume": f"{volume * mark:.5f}",
            "openUtc": price(mark * 0.99),
            "changeUtc24h": "0.0101",
            "indexPrice": price(state.index_price),
            "fundingRate": decimal_str(state.funding_rate),
            "holdingAmount": fixed_str(state.open_interest_coins, m.qty_decimals),
            "deliveryStartTime": None,
            "deliveryTime": None,
            "deliveryStatus": "",
            "open24h": price(mark * 0.98),
            "markPrice": price(mark),
        }

    def _current_fund_rate(self, ctx: RestContext) -> RestReply:
        """Every contract of the productType (the all-symbols form: a `symbol` is not read)."""
        product = self._product_type(ctx)
        if isinstance(product, RestReply):
            return product
        quotes = ctx.quotes if product == _PRODUCT_TYPE else []
        low, high = _FUNDING_BOUNDS
        rows = [
            {
                "symbol": self.market_id(q.market),
                "fundingRate": decimal_str(q.state.funding_rate),
                "fundingRateInterval": str(q.state.funding_interval_hours),
                "nextUpdate": str(q.state.next_funding_ms(ctx.now_ms)),
                "minFundingRate": low,
                "maxFundingRate": high,
            }
            for q in quotes
        ]
        return json_reply(_envelope(ctx.now_ms, rows))

    def _product_type(self, ctx: RestContext) -> str | RestReply:
        """`productType`, or Bitget's refusal of a missing or unknown one."""
        product = ctx.query.get("productType", "")
        if not product:
            return _refusal(ctx.now_ms, "40019", "Parameter productType cannot be empty")
        if product.upper() not in _PRODUCT_TYPES:
            return _refusal(ctx.now_ms, "40034", "Parameter productType does not exist")
        return product.upper()

    # --- WebSocket ----------------------------------------------------------------------

    def parse(self, text: str) -> Inbound:
        """Text `ping`, or `op` subscribe/unsubscribe with a list of `{instType, topic}`."""
        return parse_op_args(text, _is_liquidation_arg)

    def ack(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """One `{"event":"subscribe","arg":...,"connId":...}` per arg."""
        return ack_each_arg(request, conn_id)

    def reject(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """30001 "<arg> doesn't exist", the arg's keys sorted, as the v3 socket words it."""
        arg = loads_object(request.invalid[0]) if request.invalid else None
        described = _sorted_json(arg) if arg is not None else request.text
        msg = f"{described} doesn't exist"
        return [compact({"event": "error", "code": 30001, "msg": msg, "connId": conn_id})]

    def invalid(self, request: InvalidRequest, conn_id: str) -> list[str]:
        """30002 for a request Bitget does not recognise."""
        del conn_id
        msg = f"Unrecognized request:{request.text}"
        return [compact({"event": "error", "code": 30002, "msg": msg})]

    def pong(self, ping: PingRequest, conn_id: str) -> str:
        """Text `pong`."""
        del ping, conn_id
        return "pong"

    def encode(self, liquidations: Sequence[Liquidation]) -> list[Frame]:
        """One frame per pair (the real push mixes pairs; a Frame holds one symbol)."""
        return [self._frame(group) for group in group_by_symbol(liquidations)]

    def _frame(self, group: Sequence[Liquidation]) -> Frame:
        m = self.market(group[0].symbol)
        entries = [
            {
                "symbol": self.market_id(m),
                "side": _SIDES[liq.side],
                "price": decimal_str(liq.price),
                "amount": decimal_str(liq.coins * liq.price),  # USDT
                "ts": str(liq.ts_ms),
            }
            for liq in group
        ]
        frame = {
            "action": "update",
            "arg": {"instType": _INST_TYPE, "topic": _TOPIC},
            "data": entries,
            "ts": max(liq.ts_ms for liq in group) + _PUSH_LAG_MS,
        }
        return Frame(compact(frame), group[0].symbol, tuple(group))

    def decode(self, text: str) -> list[Liquidation]:
        """Every `data` entry; coins are amount / price. ValueError for a frame that is no
        well-formed push (the server then logs it raw)."""
        message = loads_object(text)
        arg = message.get("arg") if message is not None else None
        if message is None or not isinstance(arg, dict) or arg.get("topic") != _TOPIC:
            return []
        return decoded_entries(message.get("data"), self._decoded)

    def _decoded(self, entry: Mapping[str, Any]) -> Liquidation | None:
        market = self.by_id.get(str(entry.get("symbol")))
        if market is None:
            return None
        side: Side = "long" if entry.get("side") == "buy" else "short"
        price = float(entry["price"])
        coins = float(entry["amount"]) / price
        return Liquidation(self.unified_symbol(market), side, price, coins, int(entry["ts"]))


def _is_liquidation_arg(arg: object) -> bool:
    return (
        isinstance(arg, dict)
        and arg.get("topic") == _TOPIC
        and arg.get("instType") == _INST_TYPE
        and set(arg) == {"instType", "topic"}
    )


def _sorted_json(arg: Mapping[str, Any]) -> str:
    return compact(dict(sorted(arg.items())))


def _coin(number: int, coin: str) -> dict[str, Any]:
    chain = {
        "chain": coin,
        "needTag": "false",
        "withdrawable": "true",
        "rechargeable": "true",
        "withdrawFee": "0",
        "extraWithdrawFee": "0",
        "depositConfirm": "12",
        "withdrawConfirm": "12",
        "minDepositAmount": "0.0001",
        "minWithdrawAmount": "0.001",
        "browserUrl": "",
        "contractAddress": "",
        "withdrawStep": "0",
        "withdrawMinScale": "8",
        "congestion": "normal",
    }
    return {"coinId": str(number), "coin": coin, "transfer": "true", "chains": [chain]}


def _envelope(now_ms: int, data: object) -> dict[str, Any]:
    return {"code": "00000", "msg": "success", "requestTime": now_ms, "data": data}


def _refusal(now_ms: int, code: str, msg: str) -> RestReply:
    """Bitget answers parameter errors with HTTP 400 and its own code."""
    body = {"code": code, "msg": msg, "requestTime": now_ms, "data": None}
    return json_reply(body, HTTPStatus.BAD_REQUEST)
