"""A wire-faithful fake of every venue (``exporter.venues``) for tests and demos.

Each `FakeExchange` speaks one venue's real REST and WebSocket protocol on loopback, so
unmodified ccxt and ccxt.pro (and the exporter's own WebSocket client) run against it.
"""

from exporter.fakeexchange.markets import DEFAULT_MARKETS, FakeMarket
from exporter.fakeexchange.server import FakeExchange, SentFrame

__all__ = ["DEFAULT_MARKETS", "FakeExchange", "FakeMarket", "SentFrame"]
