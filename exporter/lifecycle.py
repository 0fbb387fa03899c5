"""The exporter's lifecycle, in one place: what starts, in which order, and how it stops.

Start: restore the snapshot (so the windows hold the day before any event arrives); in a demo,
bring up the fake exchanges and derive the config the collectors run with (pointed at the fakes;
the configured one is never changed); then start the collectors, the demo's market driver and
the snapshotter, each under supervision (``exporter.supervisor``: a task that dies is logged,
counted in ``cryptoliq_task_restarts_total{task}`` and restarted).
Stop, on SIGTERM/SIGINT: cancel and await every supervised task, stop the fakes, then write the
final snapshot, once nothing feeds the core any more.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from exporter import demo, persistence
from exporter.supervisor import supervising

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

    from aiohttp import web

    from exporter.config import Config
    from exporter.core import Core
    from exporter.supervisor import Runnable

# The collectors to run for a config: exporter.collectors.build_collectors, or a test's own.
BuildCollectors: TypeAlias = "Callable[[Config, Core], Sequence[Runnable]]"


def lifecycle_context(
    config: Config, core: Core, build_collectors: BuildCollectors
) -> Callable[[web.Application], AsyncIterator[None]]:
    """``running`` as an aiohttp cleanup context: started before the app serves, stopped
    after it stopped serving."""

    async def context(_app: web.Application) -> AsyncIterator[None]:
        async with running(config, core, build_collectors):
            yield

    return context


@asynccontextmanager
async def running(
    config: Config, core: Core, build_collectors: BuildCollectors
) -> AsyncIterator[Config]:
    """Everything in the module docstring's order; yields the config the collectors run with."""
    state_dir = Path(config.state_dir) if config.state_dir else None
    if state_dir is not None:
        persistence.restore(core, state_dir)
    try:
        async with _venues(config) as (effective, feeders):
            runnables = [*feeders, *build_collectors(effective, core)]
            if state_dir is not None:
                interval = config.snapshot_interval_seconds
                runnables.append(persistence.Snapshotter(core, state_dir, interval))
            async with supervising(runnables, core.health):
                yield effective
    finally:
        if state_dir is not None:
            persistence.final_save(core, state_dir)


@asynccontextmanager
async def _venues(config: Config) -> AsyncIterator[tuple[Config, Sequence[Runnable]]]:
    """The config the collectors run with and the tasks that feed their venues: as configured
    with none, or in a demo the fakes' config and the market driver."""
    if not config.demo:
        yield config, ()
        return
    async with demo.fake_venues(config) as (on_fakes, driver):
        yield on_fakes, (driver,)
