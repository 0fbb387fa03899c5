"""HTX USDT-margined swaps wire format (ccxt class `htx`, linear markets only).

REST on the contract host with the `{"status":"ok","data":...,"ts":...}` envelope (plus the
spot host's currency list, which ccxt's `load_markets` reads first); WebSocket
`/linear-swap-notification`, where every server frame is gzip-compressed binary (`wire`),
`{"op":"sub","cid":...,"topic":"public.*.liquidation_orders"}` subscribes to every contract and
the server's heartbeat is `{"op":"ping","ts":"<ms>"}`, answered `{"op":"pong","ts":"<ms>"}`
(`ping_frame` makes one for a test to send). Liquidations carry `volume` (whole contracts),
`amount` (coins) and `trade_turnover` (USDT); `quantize` rounds to whole contracts.

`swap_batch_funding_rate` serves the state's funding rate as HTX prints it (a string with 18
decimals), settled at `funding_time` (ms, a string), with `estimated_rate` and
`next_funding_time` null, as HTX has returned them since those fields were deprecated
(https://www.htx.com/en-us/opend/newApiPages/?id=8cb7ed6a-77b5-11ed-9966-0242ac110003).
`swap_index` serves the mark price: the adapter reads HTX's index as the market's price.

Acks, pings and REST answers carry the server's `ts`; a protocol has no clock of its own, so
the socket frames take the wall clock (REST answers take the fake's clock).
"""

from __future__ import annotations

import gzip
import time
from decimal import ROUND_HALF_EVEN, Decimal
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from exporter.fakeexchange.protocol import (
    ALL_MARKETS,
    Frame,
    IgnoredRequest,
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
    group_by_symbol,
    json_reply,
    loads_object,
    plain_error,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from exporter.fakeexchange.markets import FakeMarket

_TOPIC_PREFIX: Final = "public."
_TOPIC_SUFFIX: Final = ".liquidation_orders"
_PUSH_LAG_MS: Final = 5
"""Frame `ts` trails the entry's `created_at` by a few ms in the recordings."""
_CREATE_DATE: Final = "20201021"
_SETTLEMENT_MS: Final = 8 * 3_600_000
_CONTRACT_SIZES: Final = {"BTC": "0.001", "ETH": "0.01"}
"""HTX's own contract sizes where they differ from the shared table's (OKX `ctVal`)."""
# WebSocket error codes of the notification endpoint (the doc's appendix).
_TOPIC_ERROR: Final = (2010, "Topic error.")
_NO_CONTRACT: Final = (2011, "Contract doesn't exist.")
_MISSING_PARAMETER: Final = (2040, "Missing required parameter.")
_SIDES: Final[dict[Side, str]] = {"long": "sell", "short": "buy"}
_RATE_DECIMALS: Final = Decimal("1e-18")
"""HTX prints funding rates with 18 decimals: "0.000100000000000000"."""


def ping_frame(ts_ms: int) -> str:
    """The notification endpoint's heartbeat, as the server sends it (`ts` a string)."""
    return compact({"op": "ping", "ts": str(ts_ms)})


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _number(value: Decimal) -> int | float:
    """A JSON number as HTX prints it: integral values without a fraction."""
    value = value.normalize()
    return int(value) if value == value.to_integral_value() else float(value)


def _decimal(value: float) -> Decimal:
    return Decimal(f"{value:.12g}")


class HtxProtocol(VenueProtocol):
    """HTX linear swaps: one all-contract liquidation topic, gzip frames, server pings."""

    venue: ClassVar[str] = "htx"
    ccxt_id: ClassVar[str] = "htx"
    ws_paths: ClassVar[tuple[str, ...]] = ("/linear-swap-notification",)

    def market_id(self, market: FakeMarket) -> str:
        """HTX swap codes are BASE-QUOTE, e.g. BTC-USDT."""
        return f"{market.base}-{market.quote}"

    def contract_size(self, market: FakeMarket) -> Decimal:
        """Coins per contract."""
        return Decimal(_CONTRACT_SIZES.get(market.base, market.contract_size))

    def ccxt_config(self, rest_url: str, ws_url: str) -> dict[str, Any]:
        """Both REST hosts here; only linear markets, so load_markets is two requests."""
        del ws_url  # ccxt.pro does not stream HTX liquidations: the native client does
        return {
            "urls": {"api": {"contract": rest_url, "spot": rest_url}},
            "options": {
                "fetchMarkets": {"types": {"spot": False, "linear": True, "inverse": False}}
            },
        }

    def wire(self, text: str) -> str | bytes:
        """Every frame of the notification endpoint is gzip-compressed."""
        return gzip.compress(text.encode(), mtime=0)

    def quantize(self, liquidation: Liquidation) -> Liquidation:
        """Whole contracts (at least one), as `volume` is an integer on the wire, at a price
        on the contract's tick."""
        m = self.market(liquidation.symbol)
        size = self.contract_size(m)
        contracts = (_decimal(liquidation.coins) / size).to_integral_value(ROUND_HALF_EVEN)
        coins = float(max(contracts, Decimal(1)) * size)
        price = float(_decimal(liquidation.price).quantize(Decimal(m.tick_size).normalize()))
        return Liquidation(liquidation.symbol, liquidation.side, price, coins, liquidation.ts_ms)

    # --- REST ---------------------------------------------------------------------------

    def rest_routes(self) -> Mapping[str, RestHandler]:
        """Currencies and contracts (load_markets), open interest, index and funding rate of
        every swap."""
        return {
            "/v2/reference/currencies": self._currencies,
            "/linear-swap-api/v1/swap_contract_info": self._contract_info,
            "/linear-swap-api/v1/swap_open_interest": self._open_interest,
            "/linear-swap-api/v1/swap_index": self._index,
            "/linear-swap-api/v1/swap_batch_funding_rate": self._batch_funding_rate,
        }

    def rest_error(self, status: int) -> RestReply:
        """The limiter's `request limit` (ccxt: RateLimitExceeded) for 429; bare pages else."""
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            body = {"status": "error", "err-code": "invalid-parameter", "err-msg": "request limit"}
            return json_reply(body, status)
        return plain_error(status)

    def _currencies(self, ctx: RestContext) -> RestReply:
        """The spot currency list, one chain each: USDT and every listed base."""
        codes = dict.fromkeys(["usdt", *(q.market.base.lower() for q in ctx.quotes)])
        data = [
            {
                "currency": code,
                "assetType": 1,
                "chains": [
                    {
                        "chain": f"{code}erc20" if code == "usdt" else code,
                        "displayName": "ERC20" if code == "usdt" else code.upper(),
                        "baseChain": "ETH" if code == "usdt" else code.upper(),
                        "isDynamic": False,
                        "numOfConfirmations": 12,
                        "numOfFastConfirmations": 12,
                        "depositStatus": "allowed",
                        "minDepositAmt": "1",
                        "withdrawStatus": "allowed",
                        "minWithdrawAmt": "1",
                        "withdrawPrecision": 8,
                        "maxWithdrawAmt": "1000000",
                        "withdrawQuotaPerDay": "1000000",
                        "withdrawFeeType": "fixed",
                        "transactFeeWithdraw": "1",
                    }
                ],
                "instStatus": "normal",
            }
            for code in codes
        ]
        return json_reply({"code": 200, "data": data})

    def _contract_info(self, ctx: RestContext) -> RestReply:
        business = ctx.query.get("business_type", "swap")
        quotes = self._filter(ctx) if business in {"swap", "all"} else []
        if isinstance(quotes, RestReply):
            return quotes
        data = [self._contract(q.market, ctx.now_ms) for q in quotes]
        return json_reply({"status": "ok", "data": data, "ts": ctx.now_ms})

    def _contract(self, m: FakeMarket, now_ms: int) -> dict[str, Any]:
        settlement = (now_ms // _SETTLEMENT_MS + 1) * _SETTLEMENT_MS
        return {
            "symbol": m.base,
            "contract_code": self.market_id(m),
            "contract_size": _number(self.contract_size(m)),
            "price_tick": _number(Decimal(m.tick_size)),
            "delivery_date": "",
            "delivery_time": "",
            "create_date": _CREATE_DATE,
            "contract_status": 1,
            "settlement_date": str(settlement),
            "support_margin_mode": "all",
            "business_type": "swap",
            "pair": self.market_id(m),
            "contract_type": "swap",
            "trade_partition": m.quote,
        }

    def _open_interest(self, ctx: RestContext) -> RestReply:
        """Every swap (or `contract_code`'s); `contract_type` other than swap lists none."""
        quotes = self._filter(ctx)
        if isinstance(quotes, RestReply):
            return quotes
        if ctx.query.get("contract_type", "swap") != "swap":
            quotes = []
        data = [self._oi_row(q) for q in quotes]
        return json_reply({"status": "ok", "data": data, "ts": ctx.now_ms})

    def _oi_row(self, quote: Quote) -> dict[str, Any]:
        """HTX states positions of both sides summed: twice the (one-sided) open interest."""
        m, state = quote.market, quote.state
        coins = _decimal(state.open_interest_coins) * 2
        mark = _decimal(state.mark_price)
        return {
            "volume": _number(coins / self.contract_size(m)),
            "amount": _number(coins),
            "symbol": m.base,
            "value": _number((coins * mark).quantize(Decimal("0.0001"))),
            "contract_code": self.market_id(m),
            "trade_amount": _number(coins * 3),
            "trade_volume": _number(coins * 3 / self.contract_size(m)),
            "trade_turnover": _number((coins * 3 * mark).quantize(Decimal("0.0001"))),
            "business_type": "swap",
            "pair": self.market_id(m),
            "contract_type": "swap",
            "trade_partition": m.quote,
        }

    def _batch_funding_rate(self, ctx: RestContext) -> RestReply:
        """Every swap (or `contract_code`'s): the current period's rate and settlement time."""
        quotes = self._filter(ctx)
        if isinstance(quotes, RestReply):
            return quotes
        data = [
            {
                "estimated_rate": None,
                "funding_rate": str(_decimal(q.state.funding_rate).quantize(_RATE_DECIMALS)),
                "contract_code": self.market_id(q.market),
                "symbol": q.market.base,
                "fee_asset": q.market.quote,
                "funding_time": str(q.state.next_funding_ms(ctx.now_ms)),
                "next_funding_time": None,
                "trade_partition": q.market.quote,
            }
            for q in quotes
        ]
        return json_reply({"status": "ok", "data": data, "ts": ctx.now_ms})

    def _index(self, ctx: RestContext) -> RestReply:
        """The index price stands at the mark price here (the adapter reads it as the mark:
        HTX states no mark price of every contract)."""
        quotes = self._filter(ctx)
        if isinstance(quotes, RestReply):
            return quotes
        data = [
            {
                "index_price": _number(_decimal(q.state.mark_price)),
                "index_ts": q.state.ts_ms,
                "contract_code": self.market_id(q.market),
            }
            for q in quotes
        ]
        return json_reply({"status": "ok", "data": data, "ts": ctx.now_ms})

    def _filter(self, ctx: RestContext) -> list[Quote] | RestReply:
        """Every quote, or the one of `contract_code` (case-insensitive), or HTX's 1013."""
        code = ctx.query.get("contract_code", "").upper()
        if not code:
            return list(ctx.quotes)
        quote = ctx.quote(code, self.market_id)
        if quote is None:
            body = {
                "status": "error",
                "err_code": 1013,
                "err_msg": "This contract symbol doesnt exist.",
                "ts": ctx.now_ms,
            }
            return json_reply(body)
        return [quote]

    # --- WebSocket ----------------------------------------------------------------------

    def parse(self, text: str) -> Inbound:
        """`op` sub/unsub with one `topic`; a client's pong is taken without an answer;
        anything else is not a request the notification endpoint understands."""
        message = loads_object(text)
        if message is not None and message.get("op") == "pong":
            return IgnoredRequest(text)
        if message is None or message.get("op") not in {"sub", "unsub"}:
            return InvalidRequest(text)
        op: Literal["subscribe", "unsubscribe"] = (
            "subscribe" if message["op"] == "sub" else "unsubscribe"
        )
        topic = message.get("topic")
        key = self._topic_key(topic)
        if key is None:
            return SubscribeRequest(op, frozenset(), (str(topic),), message, text)
        return SubscribeRequest(op, frozenset({key}), (), message, text)

    def _topic_key(self, topic: object) -> str | None:
        """`public.*.liquidation_orders` is every contract; `public.<code>...` one."""
        if not isinstance(topic, str):
            return None
        if not (topic.startswith(_TOPIC_PREFIX) and topic.endswith(_TOPIC_SUFFIX)):
            return None
        code = topic.removeprefix(_TOPIC_PREFIX).removesuffix(_TOPIC_SUFFIX).upper()
        if code == "*":
            return ALL_MARKETS
        market = self.by_id.get(code)
        return None if market is None else self.unified_symbol(market)

    def ack(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """`err-code` 0, echoing op, cid and topic (key order as recorded)."""
        del conn_id
        return [compact(self._answer(request.message, 0, None))]

    def reject(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """2040 without a topic, 2010 for another topic, 2011 for an unknown contract; a
        refusal on demand (no invalid topic) is 2011 as well."""
        del conn_id
        topic = request.message.get("topic")
        if topic is None:
            code, msg = _MISSING_PARAMETER
        elif isinstance(topic, str) and topic.startswith(_TOPIC_PREFIX):
            code, msg = _NO_CONTRACT if topic.endswith(_TOPIC_SUFFIX) else _TOPIC_ERROR
        else:
            code, msg = _TOPIC_ERROR
        return [compact(self._answer(request.message, code, msg))]

    @staticmethod
    def _answer(message: Mapping[str, Any], code: int, msg: str | None) -> dict[str, Any]:
        answer: dict[str, Any] = {"op": message.get("op")}
        if "cid" in message:
            answer["cid"] = message["cid"]
        if "topic" in message:
            answer["topic"] = message["topic"]
        answer["ts"] = _now_ms()
        answer["err-code"] = code
        if msg is not None:
            answer["err-msg"] = msg
        return answer

    def invalid(self, request: InvalidRequest, conn_id: str) -> list[str]:
        """A pong answers our ping and needs no answer; any other op is `{"op":"error"}`,
        the connection stays open."""
        del conn_id
        message = loads_object(request.text)
        if message is not None and message.get("op") == "pong":
            return []
        return [compact({"op": "error", "ts": _now_ms()})]

    def pong(self, ping: PingRequest, conn_id: str) -> str:
        """Unused: the notification endpoint's heartbeat is one-way (the server pings)."""
        del ping, conn_id
        return compact({"op": "error", "ts": _now_ms()})

    def encode(self, liquidations: Sequence[Liquidation]) -> list[Frame]:
        """One frame per contract, its orders in `data` (fields in the recorded order)."""
        return [self._frame(group) for group in group_by_symbol(liquidations)]

    def _frame(self, group: Sequence[Liquidation]) -> Frame:
        m = self.market(group[0].symbol)
        code = self.market_id(m)
        size = self.contract_size(m)
        rows = []
        for liq in group:  # quantized: whole contracts, prices on the tick
            coins = _decimal(liq.coins)
            price = _decimal(liq.price)
            rows.append(
                {
                    "symbol": m.base,
                    "contract_code": code,
                    "direction": _SIDES[liq.side],
                    "offset": "close",
                    "volume": _number(coins / size),
                    "price": _number(price),
                    "created_at": liq.ts_ms,
                    "amount": _number(coins),
                    "trade_turnover": _number(coins * price),
                    "contract_type": "swap",
                    "pair": code,
                    "business_type": "swap",
                    "trade_partition": m.quote,
                }
            )
        frame = {
            "op": "notify",
            "topic": f"{_TOPIC_PREFIX}{code}{_TOPIC_SUFFIX}",
            "ts": max(liq.ts_ms for liq in group) + _PUSH_LAG_MS,
            "data": rows,
        }
        return Frame(compact(frame), group[0].symbol, tuple(group))

    def decode(self, text: str) -> list[Liquidation]:
        """Every order of a liquidation frame of a listed contract (coins: `amount`)."""
        message = loads_object(text)
        if message is None or message.get("op") != "notify":
            return []
        data = message.get("data")
        if not isinstance(data, list):
            return []
        out = []
        for row in data:
            market = self.by_id.get(str(row.get("contract_code")))
            if market is None:
                continue
            side: Side = "long" if row.get("direction") == "sell" else "short"
            out.append(
                Liquidation(
                    self.unified_symbol(market),
                    side,
                    float(row["price"]),
                    float(row["amount"]),
                    int(row["created_at"]),
                )
            )
        return out
