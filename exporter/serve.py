"""The serving process: the core, the collectors, snapshots, the demo's fake exchanges and the
web config wired into the aiohttp app, run until SIGTERM or SIGINT."""

from __future__ import annotations

import gc
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

from aiohttp import web

from exporter import __version__, access
from exporter.app import Exporter, create_app, handle_liveness
from exporter.collectors import build_collectors
from exporter.core import Core
from exporter.persistence import state_context

if TYPE_CHECKING:
    from exporter.config import Config
    from exporter.webconfig import WebConfig

SHUTDOWN_TIMEOUT_SECONDS: Final = 3.0
log = logging.getLogger(__name__)


def make_app(config: Config, web_config: WebConfig | None = None) -> web.Application:
    core = Core(
        tuple(e.name for e in config.enabled_exchanges()), time.time, heatmap=config.heatmap
    )
    exporter = Exporter(config=config, core=core, build_runnables=build_collectors)
    app = create_app(exporter)
    if web_config is not None:
        # /healthz answers without credentials (bare), so a container health check needs none.
        access.install(app, web_config, public={"/healthz": handle_liveness})
    if config.state_dir:
        # Before the collectors' step, so the windows are restored before events arrive, and
        # (contexts unwind in reverse) the final snapshot is taken after they stopped.
        app.cleanup_ctx.insert(
            0, state_context(Path(config.state_dir), config.snapshot_interval_seconds)
        )
    if config.demo:
        from exporter.demo import demo_context  # noqa: PLC0415 - only demo runs need the fakes

        # Before the collectors' start-up step: it rewrites the config to point at the fakes.
        app.cleanup_ctx.insert(0, demo_context)
    return app


def serve(config: Config, web_config: WebConfig | None) -> int:
    """Serve until SIGTERM/SIGINT; the exit status."""
    log.info(
        "cryptoliq-exporter %s listening on %s:%d (exchanges: %s)",
        __version__,
        config.listen_address,
        config.port,
        ", ".join(e.name for e in config.enabled_exchanges()),
    )
    app = make_app(config, web_config)
    # Everything imported so far (ccxt.pro alone is ~74 MB of objects) lives as long as the
    # process: keep it out of the collector's full passes, which would stall scrapes ~20 ms.
    gc.freeze()
    web.run_app(
        app,
        host=config.listen_address,
        ssl_context=web_config.ssl_context if web_config is not None else None,
        port=config.port,
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
        print=None,
        access_log=None,
    )
    return 0
