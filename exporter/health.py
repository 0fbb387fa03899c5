"""Per-exchange, per-stream health: what lets a user tell a quiet market from a dead feed.

Collectors report under their venue's name (``binance_coinm``); the snapshot, which the metrics
read, sums them under the ``exchange`` label (``binance``): an exchange is up while every feed
of it is, its counters are the sums, its last message the latest of its feeds'.

A venue that serves no market in this replica (``--shard``: another replica serves them all) is
idle: it is left out of the snapshot, so its per-exchange series are absent here and the
replica that serves its markets alone says whether it is up (no ``cryptoliq_exchange_up 0``
for an idle venue, nothing for ``max by (exchange)`` across replicas to be misled by).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Final, TypeVar

from exporter.venues import completeness_of, exchange_label, is_venue

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from exporter.events import Reason
    from exporter.venues import Completeness


class Stream(StrEnum):
    """The bounded value set of the ``stream`` label."""

    LIQUIDATIONS = "liquidations"
    OPEN_INTEREST = "open_interest"  # with funding and index price, read in the same poll
    POSITIONING = "positioning"  # long/short ratios, where the venue publishes them


# The streams an exchange is up by: its feeds. Long/short ratios are context; their failures
# show as reconnects and invalid messages of their own stream, not as the exchange down.
FEEDS: Final[tuple[Stream, ...]] = (Stream.LIQUIDATIONS, Stream.OPEN_INTEREST)


class LostReason(StrEnum):
    """Why liquidations a venue sent could not be counted: the ``reason`` label of
    ``cryptoliq_liquidations_lost_total``. Bad input is not loss (it is an invalid message);
    loss is what the exporter itself failed to take in."""

    # A frame over the WebSocket client's size limit: the client drops it and the connection,
    # so its entries cannot be counted; it counts as one.
    FRAME_TOO_LARGE = "frame_too_large"
    # An entry on which the exporter's own parsing or core failed unexpectedly (a bug).
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    exchanges: tuple[str, ...]
    up: dict[str, bool]
    last_message_s: dict[tuple[str, Stream], float]
    messages: dict[tuple[str, Stream], int]
    invalid: dict[tuple[str, Stream, Reason], int]
    reconnects: dict[tuple[str, Stream], int]
    restarts: dict[str, int]  # by supervised task name, registered ones at 0 too
    dropped_late: dict[str, int]
    duplicates: dict[str, int]
    lost: dict[tuple[str, LostReason], int]
    backfill_progress: dict[str, float]  # exchange -> share of its markets backfilled, 0..1
    backfill_failures: dict[str, int]
    # exchange -> "sampled" when a feed of it sends a sample (its totals are lower bounds)
    completeness: dict[str, Completeness] = field(default_factory=dict)
    # Liquidations an all-market feed brought for markets another shard serves (--shard).
    other_shard: dict[str, int] = field(default_factory=dict)
    tasks: int | None = None


K = TypeVar("K")


def _relabel(key: K) -> K:
    """A (venue, ...) or venue key under its exchange label."""
    if isinstance(key, tuple):
        return type(key)((exchange_label(key[0]), *key[1:]))
    return exchange_label(str(key))  # type: ignore[return-value]  # a str key stays a str


def _summed(counts: Mapping[K, int]) -> dict[K, int]:
    """Counts of each venue summed under its exchange label."""
    summed: Counter[K] = Counter()
    for key, n in counts.items():
        summed[_relabel(key)] += n
    return dict(summed)


class Health:
    """Counters and flags the collectors update; read as one snapshot per scrape.

    An exchange is up while every one of its feeds (``FEEDS``) has its latest connection or
    poll succeeding; a feed that has never succeeded counts as down.
    """

    def __init__(self, exchanges: tuple[str, ...], clock: Callable[[], float]) -> None:
        """``exchanges``: the venues reporting (their names, e.g. ``binance_coinm``)."""
        self._exchanges = exchanges
        # The venues of each exchange label, and whether any of them is a sampled feed: fixed
        # by the venues enabled, so worked out once, not at every scrape.
        self._feeds: dict[str, list[str]] = {}
        for venue in exchanges:
            self._feeds.setdefault(exchange_label(venue), []).append(venue)
        self._completeness: dict[str, Completeness] = {
            label: "sampled"
            if any(is_venue(v) and completeness_of(v) == "sampled" for v in venues)
            else "complete"
            for label, venues in self._feeds.items()
        }
        self._clock = clock
        self._healthy: dict[tuple[str, Stream], bool] = {
            (e, s): False for e in exchanges for s in Stream
        }
        self._last_message: dict[tuple[str, Stream], float] = {}
        self._messages: Counter[tuple[str, Stream]] = Counter()
        self._invalid: Counter[tuple[str, Stream, Reason]] = Counter()
        self._reconnects: Counter[tuple[str, Stream]] = Counter()
        self._restarts: dict[str, int] = dict.fromkeys(exchanges, 0)  # a collector per exchange
        self._dropped_late: Counter[str] = Counter()
        self._duplicates: Counter[str] = Counter()
        self._lost: Counter[tuple[str, LostReason]] = Counter()
        # Share of each venue's markets backfilled; 0 until its backfill begins.
        self._backfill_progress: dict[str, float] = dict.fromkeys(exchanges, 0.0)
        self._backfill_failures: Counter[str] = Counter()
        self._other_shard: Counter[str] = Counter()
        self._idle: set[str] = set()
        self._tasks: int | None = None

    def mark_up(self, exchange: str, stream: Stream) -> None:
        """The stream's latest connection or poll succeeded."""
        self._healthy[exchange, stream] = True

    def mark_down(self, exchange: str, stream: Stream) -> None:
        self._healthy[exchange, stream] = False

    def message(self, exchange: str, stream: Stream, count: int = 1) -> None:
        """``count`` messages arrived now (valid or not)."""
        self._messages[exchange, stream] += count
        self._last_message[exchange, stream] = self._clock()

    def invalid(self, exchange: str, stream: Stream, reason: Reason) -> None:
        self._invalid[exchange, stream, reason] += 1

    def reconnect(self, exchange: str, stream: Stream) -> None:
        self._reconnects[exchange, stream] += 1

    def register_task(self, name: str) -> None:
        """Declare a supervised task (its ``Runnable.name``, e.g. ``demo``, ``snapshots``) when it
        starts, so that ``cryptoliq_task_restarts_total{task=name}`` is there at 0 and
        ``increase()`` sees its first restart. Idempotent; the constructor registers each
        exchange's collector."""
        self._restarts.setdefault(name, 0)

    def restart(self, task: str) -> None:
        """The supervised task called ``task`` died unexpectedly and was restarted."""
        self._restarts[task] = self._restarts.get(task, 0) + 1

    def dropped_late(self, exchange: str) -> None:
        """A liquidation older than the longest window arrived and could not be placed."""
        self._dropped_late[exchange] += 1

    def duplicate(self, exchange: str) -> None:
        """A liquidation seen before (re-sent after a reconnect) was skipped."""
        self._duplicates[exchange] += 1

    def other_shard(self, exchange: str) -> None:
        """A liquidation of a market another shard serves came on an all-market feed and was
        left to that shard (neither counted nor invalid here)."""
        self._other_shard[exchange] += 1

    def idle(self, exchange: str) -> None:
        """The venue serves no market in this replica: leave it out of the snapshot."""
        self._idle.add(exchange)

    def is_idle(self, exchange: str) -> bool:
        return exchange in self._idle

    def lost(self, exchange: str, reason: LostReason, count: int = 1) -> None:
        """``count`` liquidations the venue sent could not be counted."""
        self._lost[exchange, reason] += count

    def backfill_progress(self, exchange: str, done: int, total: int) -> None:
        """``done`` of the ``total`` markets to backfill are through (recorded or given up);
        nothing to backfill counts as done."""
        self._backfill_progress[exchange] = done / total if total else 1.0

    def backfill_failed(self, exchange: str) -> None:
        """A market's history could not be fetched at start-up (the heatmap starts without it)."""
        self._backfill_failures[exchange] += 1

    def set_task_count(self, tasks: int) -> None:
        """The event loop's task count, read by the app at each scrape (leaks show as growth)."""
        self._tasks = tasks

    def stream_healthy(self, exchange: str, stream: Stream) -> bool:
        return self._healthy[exchange, stream]

    def is_up(self, exchange: str) -> bool:
        return all(self._healthy[exchange, s] for s in FEEDS)

    def snapshot(self) -> HealthSnapshot:
        """Every figure under its exchange label (the feeds of one exchange summed); idle
        venues left out."""
        feeds = self._feeds
        if self._idle:
            serving = (
                (label, [v for v in vs if v not in self._idle]) for label, vs in feeds.items()
            )
            feeds = {label: venues for label, venues in serving if venues}
        last: dict[tuple[str, Stream], float] = {}
        for (venue, stream), seen in self._last_message.items():
            if venue in self._idle:
                continue
            key = (exchange_label(venue), stream)
            last[key] = max(seen, last.get(key, seen))
        # An exchange is as far as its least advanced feed.
        progress = {
            label: min(self._backfill_progress[v] for v in venues)
            for label, venues in feeds.items()
        }
        return HealthSnapshot(
            exchanges=tuple(feeds),
            up={label: all(self.is_up(v) for v in venues) for label, venues in feeds.items()},
            last_message_s=last,
            messages=_summed(self._messages),
            invalid=_summed(self._invalid),
            reconnects=_summed(self._reconnects),
            restarts=dict(self._restarts),
            dropped_late=_summed(self._dropped_late),
            duplicates=_summed(self._duplicates),
            lost=_summed(self._lost),
            backfill_progress=progress,
            backfill_failures=_summed(self._backfill_failures),
            completeness={label: self._completeness[label] for label in feeds},
            other_shard=_summed(self._other_shard),
            tasks=self._tasks,
        )
