"""Shared test helpers: an injectable clock, event factories, and skip-but-fail-in-CI."""

from __future__ import annotations

import os
from typing import Any, NoReturn

import pytest

from exporter.events import Liquidation, OpenInterest

T0 = 1_791_565_600.0


class FakeClock:
    """A clock tests move by hand: windows and backoff without real waiting."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def unavailable(what: str, how: str) -> NoReturn:
    """Skip a test whose tool or side install is missing, except in CI (``CI`` set), which
    must provide it (``.ci/run``), so there it fails. ``what`` says what is missing, ``how``
    how to get it."""
    if os.environ.get("CI"):
        pytest.fail(f"{what}, and CI must run this ({how})")
    pytest.skip(f"{what} ({how}); CI runs this test")


def make_liquidation(clock: FakeClock, **changes: Any) -> Liquidation:
    fields: dict[str, Any] = {
        "exchange": "binance",
        "symbol": "BTC/USDT:USDT",
        "coin": "BTC",
        "side": "long",
        "price": 80_000.0,
        "quantity": 0.5,
        "notional_usd": 40_000.0,
        "timestamp_ms": int(clock.now * 1000),
        "received_ms": int(clock.now * 1000),
    }
    fields.update(changes)
    return Liquidation(**fields)


def make_open_interest(clock: FakeClock, **changes: Any) -> OpenInterest:
    fields: dict[str, Any] = {
        "exchange": "okx",
        "symbol": "ETH/USDT:USDT",
        "coin": "ETH",
        "coins": 1000.0,
        "usd": 2_900_000.0,
        "mark_price": 2900.0,
        "timestamp_ms": int(clock.now * 1000),
        "received_ms": int(clock.now * 1000),
    }
    fields.update(changes)
    return OpenInterest(**fields)
