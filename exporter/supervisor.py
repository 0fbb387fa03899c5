"""Keeps background tasks alive: a task that dies is logged, counted and restarted."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Protocol

from exporter.backoff import Backoff

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

    from exporter.health import Health

log = logging.getLogger(__name__)


class Runnable(Protocol):
    """What the supervisor runs: a named long-running coroutine (a collector, the demo's
    market driver, the snapshotter). ``name`` is its ``task`` label in the restart counter."""

    @property
    def name(self) -> str: ...

    async def run(self) -> None: ...


async def supervise(
    runnable: Runnable,
    health: Health,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    backoff: Backoff | None = None,
) -> None:
    """Run ``runnable.run()`` forever; restart it after a crash with a growing delay.

    A collector's own loop handles expected failures (disconnects, HTTP errors); reaching this
    handler means a bug or an unexpected exception, so it is logged with its traceback.
    """
    delays = backoff or Backoff(initial=1.0, cap=60.0)
    while True:
        started = monotonic()
        try:
            await runnable.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: task died; restarting", runnable.name)
        else:
            log.error("%s: task returned unexpectedly; restarting", runnable.name)
        health.restart(runnable.name)
        if monotonic() - started > delays.cap:
            delays.reset()  # it ran fine for a while: this is a new failure, not a crash loop
        await sleep(delays.next_delay())


@asynccontextmanager
async def supervising(
    runnables: Iterable[Runnable],
    health: Health,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[None]:
    """Every runnable under ``supervise`` while the block runs (each registered with
    ``health``, so its restart counter is there from 0); on exit, all are cancelled, then
    awaited."""
    tasks: list[asyncio.Task[None]] = []
    for runnable in runnables:
        health.register_task(runnable.name)
        tasks.append(
            asyncio.create_task(
                supervise(runnable, health, sleep=sleep), name=f"supervise:{runnable.name}"
            )
        )
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task
