"""The aiohttp application: ``/metrics``, ``/healthz``, the landing page; its background tasks
start and stop with it (``exporter.lifecycle``)."""

from __future__ import annotations

import asyncio
import functools
import html
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeVar

from aiohttp import web

from exporter import __version__
from exporter.exposition import Exposition, negotiate, reference_body
from exporter.lifecycle import lifecycle_context

if TYPE_CHECKING:
    from collections.abc import Generator

    from exporter.config import Config
    from exporter.core import Core
    from exporter.lifecycle import BuildCollectors


@dataclass
class Exporter:
    """What the app serves: the config as given, the core, and the collectors to run."""

    config: Config
    core: Core
    # Makes the collectors at start-up, from the config they run with (in a demo, pointed at
    # the fake exchanges: exporter.lifecycle). By default none: an app that only serves.
    build_runnables: BuildCollectors = lambda _c, _k: ()
    last_render_seconds: float | None = None
    exposition: Exposition = field(default_factory=Exposition)


EXPORTER_KEY = web.AppKey("exporter", Exporter)
# Longest stretch a /metrics render keeps the event loop before letting other tasks run.
RENDER_SLICE_SECONDS: Final = 0.002
T = TypeVar("T")


async def handle_metrics(request: web.Request) -> web.Response:
    """The snapshot is taken on the event loop (a consistent copy; heatmaps are shared copy-on-
    write, so ~4 ms with 170 of them), then the text is written on the loop too, in slices of
    at most ``RENDER_SLICE_SECONDS`` between which the loop runs everything else. A worker
    thread would not do: rendering there kept the loop from the GIL for 20 to 50 ms at a time
    (benchmarks/scrape.py measures the loop's stalls). aiohttp gzips a body this size in a
    worker thread, where zlib releases the GIL."""
    exporter = request.app[EXPORTER_KEY]
    started = time.perf_counter()
    exporter.core.health.set_task_count(len(asyncio.all_tasks()))
    snapshot = exporter.core.snapshot()
    negotiated = negotiate(request.headers.get("Accept"))
    if negotiated.fast:
        steps = exporter.exposition.steps(snapshot, negotiated, exporter.last_render_seconds)
        body = await run_in_slices(steps)
    else:  # an escaping only prometheus_client writes: rare, slow, so off the loop
        render = functools.partial(
            reference_body,
            snapshot,
            negotiated,
            exporter.last_render_seconds,
            series=exporter.exposition.series,
        )
        body = await asyncio.get_running_loop().run_in_executor(None, render)
    exporter.last_render_seconds = time.perf_counter() - started
    response = web.Response(body=body, headers={"Content-Type": negotiated.content_type})
    response.enable_compression()
    return response


async def run_in_slices(
    steps: Generator[None, None, T], slice_seconds: float = RENDER_SLICE_SECONDS
) -> T:
    """Run ``steps`` to its return value, yielding to the event loop first and then whenever
    a slice of ``slice_seconds`` is used up."""
    while True:
        await asyncio.sleep(0)
        deadline = time.perf_counter() + slice_seconds
        try:
            while time.perf_counter() < deadline:
                next(steps)
        except StopIteration as done:
            result: T = done.value
            return result


async def handle_healthz(request: web.Request) -> web.Response:
    """Liveness: the process serves requests. Exchange health is in ``cryptoliq_exchange_up``;
    a venue this shard serves no market of is listed as idle, not as down."""
    exporter = request.app[EXPORTER_KEY]
    health = exporter.core.health
    names = [e.name for e in exporter.config.enabled_exchanges()]
    body: dict[str, object] = {
        "status": "ok",
        "version": __version__,
        "exchanges_up": {n: health.is_up(n) for n in names if not health.is_idle(n)},
    }
    shard = exporter.config.shard
    if not shard.whole:
        body["shard"] = shard.label
        body["idle"] = [n for n in names if health.is_idle(n)]
    return web.json_response(body)


async def handle_liveness(_request: web.Request) -> web.Response:
    """``/healthz`` without credentials when basic auth is on: alive, and nothing more (the
    version and exchange status are for those who may read ``/metrics``)."""
    return web.json_response({"status": "ok"})


async def handle_index(request: web.Request) -> web.Response:
    exporter = request.app[EXPORTER_KEY]
    health = exporter.core.health
    rows = []
    for exchange in exporter.config.enabled_exchanges():
        symbols = "all its perpetuals" if exchange.all_symbols else ", ".join(exchange.symbols)
        up = "up" if health.is_up(exchange.name) else "down"
        if health.is_idle(exchange.name):
            up = "idle: another shard serves its markets"
        rows.append(
            f"<tr><td>{html.escape(exchange.name)}</td><td>{up}</td>"
            f"<td>{html.escape(symbols)}</td></tr>"
        )
    mode = " (demo: simulated exchanges)" if exporter.config.demo else ""
    if not exporter.config.shard.whole:
        mode += f" (shard {exporter.config.shard})"
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>cryptoliq-exporter</title></head>
<body>
<h1>cryptoliq-exporter {html.escape(__version__)}{mode}</h1>
<p>Liquidations, open interest and liquidation heatmaps for Prometheus.</p>
<ul><li><a href="metrics">/metrics</a></li><li><a href="healthz">/healthz</a></li></ul>
<table border="1" cellpadding="4"><tr><th>exchange</th><th>status</th><th>symbols</th></tr>
{"".join(rows)}
</table>
</body></html>
"""
    return web.Response(text=page, content_type="text/html")


def create_app(exporter: Exporter) -> web.Application:
    app = web.Application()
    app[EXPORTER_KEY] = exporter
    app.router.add_get("/", handle_index)
    app.router.add_get("/metrics", handle_metrics)
    app.router.add_get("/healthz", handle_healthz)
    app.cleanup_ctx.append(
        lifecycle_context(exporter.config, exporter.core, exporter.build_runnables)
    )
    return app
