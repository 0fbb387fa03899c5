"""Plain REST for a venue ccxt does not have (BitMEX): the part of a ccxt exchange the
collector uses (markets, headers, close), plus ``get_json`` for the venue module's own calls.

HTTP failures raise ccxt's exception classes, so the shared retry logic (``retry.py``) reads
them as it reads ccxt's: 429 rate limited (with ``Retry-After`` in ``last_response_headers``),
5xx unavailable, other 4xx a bad request, no answer a network error.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import aiohttp
import ccxt

if TYPE_CHECKING:
    from collections.abc import Mapping

    from exporter.collectors.ccxt_types import Market
    from exporter.collectors.venue import VenueAdapter

RATE_LIMITED = 429
TEAPOT = 418  # Binance's ban status; any venue answering it means "back off"


class RestExchange:
    """Markets and JSON over aiohttp from ``rest_url`` (or the venue's ``REST_ROOT``)."""

    def __init__(self, venue: VenueAdapter, rest_url: str | None, timeout: float) -> None:
        self._venue = venue
        self.root = (rest_url or venue.REST_ROOT).rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self.markets: dict[str, Market] | None = None
        self.last_response_headers: Mapping[str, str] | None = None

    async def load_markets(self, reload: bool = False) -> dict[str, Market]:  # noqa: FBT001, FBT002 - ccxt's signature
        if self.markets is None or reload:
            self.markets = await self._venue.rest_markets(self)
        return self.markets

    def market(self, symbol: str) -> Market:
        if self.markets is None or symbol not in self.markets:
            raise ccxt.BadSymbol(f"{self._venue.name}: no market {symbol}")
        return self.markets[symbol]

    async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET ``path`` (with ``params``) and decode the JSON answer."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        url = self.root + path
        try:
            async with self._session.get(url, params=params) as response:
                self.last_response_headers = dict(response.headers)
                body = await response.text()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ccxt.NetworkError(f"{self._venue.name} GET {path}: {exc!r}") from exc
        if status in (RATE_LIMITED, TEAPOT):
            raise ccxt.RateLimitExceeded(f"{self._venue.name} GET {path}: {status} {body:.200}")
        if status >= 500:
            raise ccxt.ExchangeNotAvailable(f"{self._venue.name} GET {path}: {status} {body:.200}")
        if status >= 400:
            raise ccxt.BadRequest(f"{self._venue.name} GET {path}: {status} {body:.200}")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise ccxt.BadResponse(f"{self._venue.name} GET {path}: not JSON: {body:.200}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def close_ws_clients(self) -> None:
        """No WebSocket here: the native client carries the stream."""
