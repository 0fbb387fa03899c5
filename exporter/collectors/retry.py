"""How a failed connection or poll is retried: errors sorted into retryable, rate-limited and
fatal, a capped jittered backoff, ``Retry-After`` honoured, and every failure counted and
logged (rate-limited)."""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING, Final

import ccxt

if TYPE_CHECKING:
    from collections.abc import Mapping

    from exporter.backoff import Backoff
    from exporter.collectors.ratelimitedlog import RateLimitedLog
    from exporter.health import Health, Stream

# Errors that retrying cannot fix (bad symbol, credentials, unsupported call): retry slowly.
FATAL_ERRORS: Final[tuple[type[Exception], ...]] = (
    ccxt.AuthenticationError,
    ccxt.PermissionDenied,
    ccxt.NotSupported,
    ccxt.BadSymbol,
)
FATAL_RETRY_SECONDS: Final = 300.0
# Binance answers 429 with DDoSProtection, not RateLimitExceeded.
RATE_LIMITED_ERRORS: Final[tuple[type[Exception], ...]] = (
    ccxt.DDoSProtection,
    ccxt.RateLimitExceeded,
)


class SubscriptionError(ccxt.NetworkError):  # type: ignore[misc]  # ccxt ships no types
    """The exchange rejected our subscription or never acknowledged it."""


class Retry:
    """The failure handler of one venue's streams and polls."""

    def __init__(
        self, venue: str, health: Health, warn: RateLimitedLog, retry_after_unit: float = 1.0
    ) -> None:
        """``retry_after_unit``: seconds per unit of the venue's ``Retry-After``."""
        self._venue = venue
        self._health = health
        self._warn = warn
        self._retry_after_unit = retry_after_unit

    def failed(
        self,
        stream: Stream,
        exc: Exception,
        backoff: Backoff,
        headers: Mapping[str, str] | None = None,
    ) -> float:
        """Mark ``stream`` down, count the retry, log it; returns the delay before the next try
        (``headers``: the failed response's, for ``Retry-After``)."""
        self._health.mark_down(self._venue, stream)
        self._health.reconnect(self._venue, stream)
        delay = retry_delay(exc, backoff, headers, self._retry_after_unit)
        self._warn.warning(
            f"{stream.value}:{type(exc).__name__}",
            "%s: %s failed (%s: %s); retrying in %.1fs",
            self._venue,
            stream.value,
            type(exc).__name__,
            exc,
            delay,
        )
        return delay


def retry_delay(
    exc: Exception, backoff: Backoff, headers: Mapping[str, str] | None, unit: float = 1.0
) -> float:
    delay = backoff.next_delay()
    if isinstance(exc, FATAL_ERRORS):
        return max(delay, FATAL_RETRY_SECONDS)
    if isinstance(exc, RATE_LIMITED_ERRORS):
        return max(delay, retry_after_seconds(headers, unit) or 0.0)
    return delay


# The longest ``Retry-After`` obeyed, whatever a venue answers.
MAX_RETRY_AFTER_SECONDS = 600.0


def retry_after_seconds(headers: Mapping[str, str] | None, unit: float = 1.0) -> float | None:
    """``Retry-After`` in seconds: RFC 9110's unit, or the venue's (``unit`` seconds each;
    dYdX's indexer answers milliseconds)."""
    for name, value in dict(headers or {}).items():
        if str(name).lower() == "retry-after":
            with suppress(ValueError):
                return min(max(0.0, float(value) * unit), MAX_RETRY_AFTER_SECONDS)
    return None
