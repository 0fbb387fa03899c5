"""Reading typed fields out of raw exchange JSON, with the reject reason on failure."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, TypeVar

from exporter.events import InvalidEventError, Reason

if TYPE_CHECKING:
    from collections.abc import Mapping

T = TypeVar("T")

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND: Final = timedelta(milliseconds=1)


def _get(info: Mapping[str, Any], key: str) -> object:
    value = info.get(key)
    if value is None or value == "":
        raise InvalidEventError(Reason.MISSING_FIELD, key)
    return value


def number(info: Mapping[str, Any], key: str) -> float:
    """A float from a JSON number or numeric string (exchanges send both)."""
    value = _get(info, key)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidEventError(Reason.WRONG_TYPE, f"{key}={value!r:.50}")
    try:
        return float(value)
    except ValueError:
        raise InvalidEventError(Reason.WRONG_TYPE, f"{key}={value!r:.50}") from None


def timestamp_ms(info: Mapping[str, Any], key: str) -> int:
    """Milliseconds since the epoch from a JSON number or numeric string."""
    value = number(info, key)
    if not math.isfinite(value):
        raise InvalidEventError(Reason.BAD_TIMESTAMP, f"{key}={value!r}")
    return int(value)


def lookup(info: Mapping[str, Any], key: str, table: Mapping[str, T], reason: Reason) -> T:
    """The table entry for a string field; any other value is rejected with ``reason``."""
    value = _get(info, key)
    if not isinstance(value, str) or value not in table:
        raise InvalidEventError(reason, f"{key}={value!r:.50}")
    return table[value]


def entry_id(info: Mapping[str, Any], key: str) -> str | None:
    """The venue's id of a trade or position (text or a whole number), for de-duplication;
    None when absent or of another type: the entry still counts, keyed by its other fields."""
    value = info.get(key)
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def optional_number(info: Mapping[str, Any], key: str) -> float | None:
    """``number``, or None when the field is absent, null or empty (a venue's way of saying
    it has no such figure now, e.g. no predicted funding rate)."""
    value = info.get(key)
    if value is None or value == "":
        return None
    return number(info, key)


def iso_ms(info: Mapping[str, Any], key: str) -> int:
    """Milliseconds since the epoch of an ISO-8601 time (``2024-08-04T07:34:50.628Z``), in
    integer arithmetic (a float product would truncate 628 to 627)."""
    value = info.get(key)
    if value is None or value == "":
        raise InvalidEventError(Reason.MISSING_FIELD, key)
    if not isinstance(value, str):
        raise InvalidEventError(Reason.WRONG_TYPE, f"{key}={value!r:.50}")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEventError(Reason.BAD_TIMESTAMP, f"{key}={value!r:.50}") from None
    if when.tzinfo is None:
        raise InvalidEventError(Reason.BAD_TIMESTAMP, f"{key}={value!r:.50} has no zone")
    return (when - EPOCH) // MILLISECOND
