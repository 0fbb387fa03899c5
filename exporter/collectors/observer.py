"""What every frame of a liquidation stream does to our state, whichever client received it.

Both transports (ccxt.pro through its hooks, and the native aiohttp client) hand each decoded
frame here: it is counted, classified by the venue, and either acknowledges or rejects a
subscription, or carries liquidations (taken by the intake, entry by entry), or is malformed.
The subscription's state (acknowledged, rejected, overdue) is read from here too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exporter.collectors.retry import SubscriptionError
from exporter.collectors.venue import FrameKind
from exporter.events import Reason
from exporter.health import LostReason, Stream

if TYPE_CHECKING:
    from collections.abc import Callable

    from exporter.collectors.intake import FrameIntake
    from exporter.collectors.ratelimitedlog import RateLimitedLog
    from exporter.collectors.venue import VenueAdapter
    from exporter.health import Health


class StreamObserver:
    """Counts, classifies and routes the frames of one venue's liquidation stream."""

    def __init__(
        self,
        venue: VenueAdapter,
        intake: FrameIntake,
        health: Health,
        warn: RateLimitedLog,
        monotonic: Callable[[], float],
    ) -> None:
        """``monotonic`` times the acknowledgement deadline."""
        self._venue = venue
        self._name = venue.name
        self._intake = intake
        self._health = health
        self._warn = warn
        self._monotonic = monotonic
        self._acks = 0
        self._expected_acks = 1
        self._deadline = 0.0
        self._timeout = 0.0
        self._data_seen = False
        self._rejection: object = None
        self._frame_counted = False

    # --- the subscription ------------------------------------------------------------------

    def subscribing(self, expected_acks: int, timeout: float) -> None:
        """A new connection: ``expected_acks`` acknowledgements are due within ``timeout``."""
        self.on_connected()
        self._expected_acks = expected_acks
        self._timeout = timeout
        self._deadline = self._monotonic() + timeout

    def subscribed(self) -> bool:
        """True once acknowledged (or data flows); raises SubscriptionError when rejected or
        still unacknowledged at the deadline."""
        if self._rejection is not None:
            raise SubscriptionError(f"subscription rejected: {self._rejection!r:.300}")
        if self._data_seen or self._acks >= self._expected_acks:
            return True
        if self._monotonic() > self._deadline:
            raise SubscriptionError(f"no acknowledgement within {self._timeout:g}s")
        return False

    # --- frames (called synchronously from the client's receive path) -----------------------

    def on_connected(self) -> None:
        self._acks = 0
        self._data_seen = False
        self._rejection = None

    def on_frame(self, message: object) -> bool:
        """Count and classify a decoded frame; True when it was a data frame, taken here
        entry by entry (ccxt does not see it: its parser and its capped cache lose entries)."""
        self._health.message(self._name, Stream.LIQUIDATIONS)
        kind = self._venue.classify_frame(message)
        self._frame_counted = kind is FrameKind.UNKNOWN
        if kind is FrameKind.UNKNOWN:
            self._count_malformed(message, "not a frame this venue sends")
        elif kind is FrameKind.ACK:
            self._acks += 1
        elif kind is FrameKind.REJECT:
            self._rejection = message
        elif kind is FrameKind.DATA:
            self._data_seen = True
            self._intake.take(message)
            return True
        return False

    def on_malformed(self, data: object, error: Exception) -> None:
        """A frame that did not even decode (bad JSON, binary junk)."""
        self._health.message(self._name, Stream.LIQUIDATIONS)
        self._count_malformed(data, str(error))

    def on_handler_error(self, message: object, error: Exception) -> None:
        """ccxt's handler raised on a decoded frame; count it unless on_frame already did."""
        if not self._frame_counted:
            self._count_malformed(message, f"{type(error).__name__}: {error}")

    def on_frame_too_large(self, error: Exception) -> None:
        """The WebSocket client refused a frame over its size limit and drops the connection:
        the frame's entries cannot be counted, so it counts as one lost liquidation."""
        self._health.lost(self._name, LostReason.FRAME_TOO_LARGE)
        self._warn.warning(
            "lost:frame_too_large",
            "%s: a frame over the WebSocket size limit was dropped (%s); counted as lost",
            self._name,
            error,
        )

    def _count_malformed(self, data: object, why: str) -> None:
        self._health.invalid(self._name, Stream.LIQUIDATIONS, Reason.MALFORMED)
        self._warn.warning(
            "malformed", "%s: skipped a malformed frame (%s): %.200r", self._name, why, data
        )
