"""The part of a ccxt.pro exchange object the collectors use, typed (ccxt ships no types).

Results stay loosely typed (``Any``): they are the venues' JSON, read field by field with a
reason for every rejection (``exporter/collectors/fields.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

Market = Mapping[str, Any]  # a ccxt market: symbol, id, base, contractSize, inverse, swap, ...


class CcxtExchange(Protocol):
    markets: dict[str, Market] | None
    last_response_headers: Mapping[str, str] | None

    async def load_markets(self, reload: bool = False) -> dict[str, Market]: ...  # noqa: FBT001, FBT002 - ccxt's signature

    def market(self, symbol: str) -> Market: ...

    async def close(self) -> None: ...

    async def close_ws_clients(self) -> None: ...

    async def watch_liquidations(self, symbol: str) -> Any: ...

    async def watch_liquidations_for_symbols(self, symbols: list[str] | None) -> Any: ...

    async def fetch_open_interest(self, symbol: str) -> dict[str, Any]: ...

    async def fetch_open_interests(
        self, symbols: list[str] | None = None, params: Mapping[str, Any] = ...
    ) -> dict[str, dict[str, Any]]: ...

    async def fetch_mark_prices(
        self, symbols: list[str] | None = None, params: Mapping[str, Any] = ...
    ) -> dict[str, dict[str, Any]]: ...

    async def fetch_tickers(
        self, symbols: list[str] | None = None, params: Mapping[str, Any] = ...
    ) -> dict[str, dict[str, Any]]: ...

    async def fetch_open_interest_history(
        self, symbol: str, timeframe: str, since: int, limit: int, params: Mapping[str, Any]
    ) -> list[dict[str, Any]]: ...

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int, limit: int, params: Mapping[str, Any]
    ) -> list[list[Any]]: ...
