"""Bitfinex derivatives wire format (ccxt class `bitfinex` for REST; WebSocket v2).

REST under /v2: `conf/...` (ccxt's load_markets: currencies, then pairs) and `status/deriv`
(open interest, mark price and funding of every perpetual in one call), answering bare JSON
arrays. WebSocket /ws/2: an `info` event on connect, `{"event":"subscribe","channel":"status",
"key":"liq:global"}` answered `subscribed` with a channel id and then the channel's snapshot
(the latest liquidation), data frames `[CHAN_ID, [row, ...]]`, heartbeats `[CHAN_ID,"hb"]`,
`{"event":"ping","cid":n}` answered `pong`.

A liquidation is sent as Bitfinex sends one: the initial trigger row (IS_MATCH 0, AMOUNT signed
by the position's side, LIQUIDATION_PRICE null as in the recorded frames) followed by its market
execution row (IS_MATCH 1); the trigger's BASE_PRICE carries the price.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any, ClassVar, Final

from exporter.fakeexchange.protocol import (
    ALL_MARKETS,
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

CHANNEL: Final = "status"
LIQUIDATIONS_KEY: Final = "liq:global"
CHAN_ID: Final = 91684
"""The channel id of the documentation's example (the venue assigns one per connection)."""
PAIRS_CONFIG: Final = (
    "pub:info:pair,pub:info:pair:futures,pub:list:pair:securities,pub:list:pair:margin"
)
"""What ccxt's fetch_markets asks `conf/{config}` for."""
CURRENCIES_CONFIG: Final = (
    "pub:list:currency,pub:map:currency:sym,pub:map:currency:label,pub:map:currency:unit,"
    "pub:map:currency:undl,pub:map:currency:pool,pub:map:currency:explorer,"
    "pub:map:currency:tx:fee,pub:map:tx:method,pub:info:tx:status,pub:list:currency:margin"
)
"""What ccxt's fetch_currencies (run by load_markets) asks `conf/{config}` for."""
SNAPSHOT_ROW: Final[list[Any]] = json.loads(
    '["pos",143683674,1593522802742,null,"tBTCF0:USTF0",0.00268657,9135.972557016,null,0,1,null,9080]'
)
"""The snapshot after a subscribe: the latest liquidation, here the recorded one of 2020."""


class BitfinexProtocol(VenueProtocol):
    """Bitfinex perpetuals: one all-pairs `liq:global` channel, amounts in coins."""

    venue: ClassVar[str] = "bitfinex"
    ccxt_id: ClassVar[str] = "bitfinex"
    ws_paths: ClassVar[tuple[str, ...]] = ("/ws/2",)

    def __init__(self, markets: Sequence[FakeMarket], *, extra: bool = True) -> None:
        super().__init__(markets, extra=extra)

    def market_id(self, market: FakeMarket) -> str:
        """Perpetual ids are `t<BASE>F0:<QUOTE>F0`, USDt spelled UST: tBTCF0:USTF0."""
        quote = "UST" if market.quote == "USDT" else market.quote
        return f"t{market.base}F0:{quote}F0"

    def ccxt_config(self, rest_url: str, ws_url: str) -> dict[str, Any]:
        """Public REST only (ccxt.pro has no liquidation stream here)."""
        del ws_url
        return {"urls": {"api": {"public": rest_url}}}

    # --- REST ---------------------------------------------------------------------------

    def rest_routes(self) -> Mapping[str, RestHandler]:
        """The two `conf` requests of load_markets and `status/deriv`."""
        return {
            f"/v2/conf/{PAIRS_CONFIG}": self._pairs,
            f"/v2/conf/{CURRENCIES_CONFIG}": self._currencies,
            "/v2/status/deriv": self._status,
        }

    def rest_error(self, status: int) -> RestReply:
        """Bitfinex's rate-limit array (ccxt maps 11010 and HTTP 429 to RateLimitExceeded);
        a bare status page otherwise."""
        if status == 429:
            return json_reply(["error", 11010, "ratelimit: error"], status)
        return plain_error(status)

    def _pairs(self, ctx: RestContext) -> RestReply:
        """[spot pairs, futures pairs, securities, margin pairs]: only perpetuals listed."""
        futures = [self._pair(q.market) for q in ctx.quotes]
        return json_reply([[], futures, [], []])

    def _pair(self, m: FakeMarket) -> list[Any]:
        """`["BTCF0:USTF0", [null, null, null, MIN_ORDER, MAX_ORDER, ..., IM, MM]]`."""
        max_order = decimal_str(round(20_000_000 / m.mark_price, m.qty_decimals))
        info = [None, None, None, m.qty_step, max_order, None, None, None, 0.01, 0.005]
        return [self.market_id(m)[1:], info]

    def _currencies(self, ctx: RestContext) -> RestReply:
        """The currency lists ccxt reads (codes, then ten maps left empty)."""
        codes = sorted({q.market.base for q in ctx.quotes} | {"UST"})
        return json_reply([codes, *([] for _ in range(10))])

    def _status(self, ctx: RestContext) -> RestReply:
        """One status row per requested key (`ALL`: every perpetual)."""
        keys = ctx.query.get("keys", "")
        if not keys:
            return json_reply(["error", 10020, "keys: invalid"], 500)
        wanted = None if keys == "ALL" else set(keys.split(","))
        rows = [
            self._status_row(q, ctx.now_ms)
            for q in ctx.quotes
            if wanted is None or self.market_id(q.market) in wanted
        ]
        return json_reply(rows)

    def _status_row(self, quote: Quote, now_ms: int) -> list[Any]:
        """[KEY, MTS, _, DERIV_PRICE, SPOT_PRICE, _, INSURANCE_FUND_BALANCE, _,
        NEXT_FUNDING_EVT_MTS, NEXT_FUNDING_ACCRUED, NEXT_FUNDING_STEP, _, CURRENT_FUNDING, _, _,
        MARK_PRICE, _, _, OPEN_INTEREST, _, _, _, CLAMP_MIN, CLAMP_MAX]
        (https://docs.bitfinex.com/reference/rest-public-derivatives-status): the state's index
        as SPOT_PRICE, its rate as CURRENT_FUNDING and its predicted rate as the accrual, paid
        at the state's next funding time (Bitfinex's interval is 8 h, the state's default)."""
        m, state = quote.market, quote.state
        mark = round(state.mark_price, 8)
        return [
            self.market_id(m),
            now_ms // 1000 * 1000,
            None,
            mark,
            round(state.index_price, 8),
            None,
            37_671_483.04,
            None,
            state.next_funding_ms(now_ms),
            round(state.predicted_funding_rate, 8),
            317,
            None,
            round(state.funding_rate, 8),
            None,
            None,
            mark,
            None,
            None,
            round(state.open_interest_coins, 8),
            None,
            None,
            None,
            0.0005,
            0.0025,
        ]

    # --- WebSocket ----------------------------------------------------------------------

    def new_conn_id(self) -> str:
        """The `serverId` of the `info` event."""
        return str(uuid.uuid4())

    def greeting(self, conn_id: str) -> list[str]:
        """`info` with the API version, as every connection opens."""
        return [
            compact({"event": "info", "version": 2, "serverId": conn_id, "platform": {"status": 1}})
        ]

    def parse(self, text: str) -> Inbound:
        """`ping`, or `subscribe`/`unsubscribe` of a channel."""
        message = loads_object(text)
        if message is None:
            return InvalidRequest(text)
        event = message.get("event")
        if event == "ping":
            return PingRequest(message)
        if event == "subscribe":
            wanted = message.get("channel") == CHANNEL and message.get("key") == LIQUIDATIONS_KEY
            keys = frozenset({ALL_MARKETS}) if wanted else frozenset()
            return SubscribeRequest("subscribe", keys, () if wanted else (text,), message, text)
        if event == "unsubscribe":
            return SubscribeRequest("unsubscribe", frozenset({ALL_MARKETS}), (), message, text)
        return InvalidRequest(text)

    def ack(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """`subscribed` with the channel id, then the snapshot; `unsubscribed`."""
        del conn_id
        if request.op == "unsubscribe":
            return [compact({"event": "unsubscribed", "status": "OK", "chanId": CHAN_ID})]
        subscribed = {
            "event": "subscribed",
            "channel": CHANNEL,
            "chanId": CHAN_ID,
            "key": LIQUIDATIONS_KEY,
        }
        return [compact(subscribed), compact([CHAN_ID, [SNAPSHOT_ROW]])]

    def reject(self, request: SubscribeRequest, conn_id: str) -> list[str]:
        """10300: subscription failed (10302 for a channel that does not exist)."""
        del conn_id
        message = request.message
        unknown = message.get("channel") != CHANNEL
        error = {
            "event": "error",
            "msg": "subscribe: unknown channel" if unknown else "subscribe: failed",
            "code": 10302 if unknown else 10300,
            "channel": message.get("channel"),
            "key": message.get("key"),
        }
        return [compact(error)]

    def invalid(self, request: InvalidRequest, conn_id: str) -> list[str]:
        """10000: unknown event."""
        del request, conn_id
        return [compact({"event": "error", "msg": "Unknown event", "code": 10000})]

    def pong(self, ping: PingRequest, conn_id: str) -> str:
        """`pong` with the server time and the ping's `cid`."""
        del conn_id
        now_ms = time.time_ns() // 1_000_000  # the venue's own clock, as it stamps pongs
        return compact({"event": "pong", "ts": now_ms, "cid": ping.message.get("cid")})

    def encode(self, liquidations: Sequence[Liquidation]) -> list[Frame]:
        """One frame per symbol: each liquidation's trigger row, then its execution row."""
        return [self._frame(group) for group in group_by_symbol(liquidations)]

    def _frame(self, group: Sequence[Liquidation]) -> Frame:
        market_id = self.market_id(self.market(group[0].symbol))
        rows: list[list[Any]] = []
        for liq in group:
            position_id = stable_id(liq, bits=32)
            amount = liq.coins if liq.side == "long" else -liq.coins
            head = ["pos", position_id, liq.ts_ms, None, market_id, amount, liq.price, None]
            rows.append([*head, 0, 1, None, None])  # the initial liquidation trigger
            rows.append([*head, 1, 1, None, liq.price])  # its market execution: not counted
        return Frame(compact([CHAN_ID, rows]), group[0].symbol, tuple(group))

    def decode(self, text: str) -> list[Liquidation]:
        """Every trigger row of a data frame (the collector's reading)."""
        try:
            message = json.loads(text)
        except ValueError:
            return []
        if not isinstance(message, list) or len(message) < 2 or not isinstance(message[1], list):
            return []
        out = []
        for row in message[1]:
            if not isinstance(row, list) or len(row) < 9 or row[8] != 0:
                continue
            market = self.by_id.get(str(row[4]))
            if market is None:
                continue
            price = row[11] if len(row) > 11 and row[11] is not None else row[6]
            side: Side = "long" if row[5] > 0 else "short"
            out.append(
                Liquidation(
                    self.unified_symbol(market), side, float(price), abs(row[5]), int(row[2])
                )
            )
        return out
