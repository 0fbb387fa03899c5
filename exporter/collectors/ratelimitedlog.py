"""Warnings that repeat (a flapping feed, a stream of bad frames) logged once a minute per kind."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger("exporter.collectors")

LOG_EVERY_SECONDS = 60.0


class RateLimitedLog:
    """At most one warning per key per interval; the rest go to debug."""

    def __init__(self, clock: Callable[[], float], interval: float = LOG_EVERY_SECONDS) -> None:
        self._clock = clock
        self._interval = interval
        self._last: dict[str, float] = {}

    def _due(self, key: str) -> bool:
        now = self._clock()
        if now - self._last.get(key, -self._interval) >= self._interval:
            self._last[key] = now
            return True
        return False

    def warning(self, key: str, msg: str, *args: object) -> None:
        if self._due(key):
            log.warning(msg, *args)
        else:
            log.debug(msg, *args)

    def exception(self, key: str, msg: str, *args: object) -> None:
        """Like ``warning`` at error level, with the traceback; call it from an ``except``."""
        level = logging.ERROR if self._due(key) else logging.DEBUG
        log.log(level, msg, *args, exc_info=True)
