"""Queued REST failures: "the next N requests under this path answer HTTP <status>"."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RestFault:
    """One armed failure; `remaining` counts down as matching requests consume it."""

    status: int
    remaining: int
    retry_after: float | None
    path_prefix: str


class RestFaults:
    """FIFO of armed failures; a request consumes the oldest fault whose prefix matches it."""

    def __init__(self) -> None:
        self._armed: list[RestFault] = []

    def arm(self, status: int, count: int, retry_after: float | None, path_prefix: str) -> None:
        """Queue `count` failures for paths starting with `path_prefix` ("" matches all)."""
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        self._armed.append(RestFault(status, count, retry_after, path_prefix))

    def take(self, path: str) -> RestFault | None:
        """The fault this request must answer with, if any, counting it as used."""
        for fault in self._armed:
            if path.startswith(fault.path_prefix):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._armed.remove(fault)
                return fault
        return None

    @property
    def pending(self) -> int:
        """Failures still to be served, over all prefixes."""
        return sum(f.remaining for f in self._armed)
