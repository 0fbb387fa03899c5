"""The serving process: the core, the collectors and the web config wired into the aiohttp app
(whose lifecycle runs snapshots and the demo too), run until SIGTERM or SIGINT."""

from __future__ import annotations

import gc
import logging
import time
from typing import TYPE_CHECKING, Final

from aiohttp import web

from exporter import __version__, access
from exporter.app import Exporter, create_app, handle_liveness
from exporter.collectors import build_collectors
from exporter.core import Core

if TYPE_CHECKING:
    from exporter.config import Config
    from exporter.webconfig import WebConfig

SHUTDOWN_TIMEOUT_SECONDS: Final = 3.0
log = logging.getLogger(__name__)


def make_app(config: Config, web_config: WebConfig | None = None) -> web.Application:
    core = Core(
        tuple(e.name for e in config.enabled_exchanges()),
        time.time,
        heatmap=config.heatmap,
        heatmap_coins=config.heatmap_coins,
        exemplar_min_usd=config.exemplar_min_usd,
        shard=config.shard,
    )
    exporter = Exporter(config=config, core=core, build_runnables=build_collectors)
    app = create_app(exporter)
    if web_config is not None:
        # /healthz answers without credentials (bare), so a container health check needs none.
        access.install(app, web_config, public={"/healthz": handle_liveness})
    return app


def serve(config: Config, web_config: WebConfig | None) -> int:
    """Serve until SIGTERM/SIGINT; the exit status."""
    log.info(
        "cryptoliq-exporter %s listening on %s:%d (exchanges: %s; shard %s)",
        __version__,
        config.listen_address,
        config.port,
        ", ".join(e.name for e in config.enabled_exchanges()),
        config.shard,
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
