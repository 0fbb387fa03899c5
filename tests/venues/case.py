"""What the shared collector tests need to know of one venue: its recorded frames with the
events each must become, where a liquidation's fields sit in a frame of its fake (for the fuzz
test), and the REST path of its open-interest poll (for the fault tests).

One module per venue in this package defines ``CASE``; ``tests/venues/__init__.py`` gathers
them by venue name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from exporter.events import Reason, Side

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ws"

# Where a recorded frame came from: a capture of the venue's traffic with a known origin, one
# whose repository is unknown, or an example from the venue's documentation.
Origin = Literal["capture", "unattributed capture", "documentation"]


class Expected(NamedTuple):
    """One event a recorded frame must become. ``timestamp_ms`` None: the venue states no time,
    so the receive time stands in."""

    symbol: str
    side: Side
    price: float
    coins: float
    usd: float
    timestamp_ms: int | None


@dataclass(frozen=True)
class Recorded:
    """Line ``line`` (1-based) of ``file`` under tests/fixtures/ws/, the events it becomes (in
    order) and the entries it must reject, by reason. ``rule`` names the side rule applied."""

    file: str
    line: int
    origin: Origin
    events: tuple[Expected, ...] = ()
    rejected: Mapping[Reason, int] = field(default_factory=dict)
    rule: str = ""

    def text(self) -> str:
        return (FIXTURES / self.file).read_text(encoding="utf-8").splitlines()[self.line - 1]


@dataclass(frozen=True)
class VenueCase:
    """``entry_of(frame)`` is the (mutable) first liquidation entry of a decoded frame the fake
    encodes, and ``fields`` the keys (or array positions) the collector reads from it;
    ``spoil_market(frame)`` makes the frame name a market nobody lists. ``watch``: the symbols
    the recorded-frame test subscribes to (default: those of the expected events).
    ``replays_after_reconnect``: the venue re-sends its latest frames to a new subscription
    (most do; BitMEX's table sends a snapshot of open orders instead)."""

    recorded: tuple[Recorded, ...]
    entry_of: Callable[[Any], Any]
    fields: tuple[str | int, ...]
    spoil_market: Callable[[Any], None]
    oi_path: str
    watch: tuple[str, ...] = ()
    replays_after_reconnect: bool = True

    def watched(self) -> list[str]:
        if self.watch:
            return list(self.watch)
        return sorted({e.symbol for r in self.recorded for e in r.events})
