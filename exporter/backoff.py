"""Capped, jittered exponential backoff, so a fleet of exporters never reconnects in lockstep."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays ``initial * factor**n`` capped at ``cap``, each scaled by a random factor in
    ``[1 - jitter, 1]`` ("equal jitter" keeps a floor so retries never become a storm)."""

    initial: float = 1.0
    cap: float = 60.0
    factor: float = 2.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def next_delay(self) -> float:
        base = min(self.cap, self.initial * self.factor ** min(self.attempts, 64))
        self.attempts += 1
        return base * (1.0 - self.jitter * self.rng.random())

    def reset(self) -> None:
        """Call after a success: the next failure starts from ``initial`` again."""
        self.attempts = 0
