"""Event validation: bad values are rejected with a countable reason, never stored."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from exporter.events import InvalidEventError, Liquidation, OpenInterest, Reason

NOW_MS = 1_791_565_603_055


def liquidation(**changes: Any) -> Liquidation:
    fields: dict[str, Any] = {
        "exchange": "binance",
        "symbol": "BTC/USDT:USDT",
        "coin": "BTC",
        "side": "long",
        "price": 82651.9,
        "quantity": 0.19,
        "notional_usd": 82651.9 * 0.19,
        "timestamp_ms": NOW_MS - 900,
        "received_ms": NOW_MS,
    }
    fields.update(changes)
    return Liquidation(**fields)


def test_valid_liquidation_is_frozen() -> None:
    event = liquidation()
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.price = 1.0  # type: ignore[misc]  # the point: events are frozen


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"price": float("nan")}, Reason.NOT_FINITE),
        ({"quantity": float("inf")}, Reason.NOT_FINITE),
        ({"price": -1.0}, Reason.NOT_POSITIVE),
        ({"quantity": 0.0}, Reason.NOT_POSITIVE),
        ({"notional_usd": 5e9}, Reason.OUT_OF_RANGE),
        ({"price": 2e8}, Reason.OUT_OF_RANGE),
        ({"price": "82651.9"}, Reason.WRONG_TYPE),
        ({"side": "buy"}, Reason.INVALID_SIDE),
        ({"timestamp_ms": 1_791_565_603}, Reason.BAD_TIMESTAMP),  # seconds, not ms
        ({"timestamp_ms": NOW_MS + 3_600_000}, Reason.BAD_TIMESTAMP),  # an hour ahead
        ({"timestamp_ms": 1.5e12}, Reason.WRONG_TYPE),
        ({"symbol": ""}, Reason.WRONG_TYPE),
    ],
)
def test_invalid_liquidation_is_rejected_with_reason(
    changes: dict[str, Any], reason: Reason
) -> None:
    with pytest.raises(InvalidEventError) as caught:
        liquidation(**changes)
    assert caught.value.reason is reason


def test_open_interest_allows_zero_but_not_negative() -> None:
    base: dict[str, Any] = {
        "exchange": "okx",
        "symbol": "BTC/USDT:USDT",
        "coin": "BTC",
        "coins": 0.0,
        "usd": 0.0,
        "mark_price": 82000.0,
        "timestamp_ms": NOW_MS,
        "received_ms": NOW_MS,
    }
    assert OpenInterest(**base).coins == 0.0
    with pytest.raises(InvalidEventError) as caught:
        OpenInterest(**{**base, "usd": -5.0})
    assert caught.value.reason is Reason.NOT_POSITIVE
