"""Command line: ``cryptoliq-exporter`` and ``python -m exporter``."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from aiohttp import web

from exporter import __version__
from exporter.app import Exporter, create_app
from exporter.collectors import build_collectors
from exporter.config import (
    CONFIG_ENV,
    HEATMAP_SETTINGS,
    SETTINGS,
    Config,
    ConfigError,
    build_config,
    read_yaml,
)
from exporter.core import Core
from exporter.persistence import state_context
from exporter.webconfig import WebConfig, basic_auth_middleware, load_web_config

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

EXIT_CONFIG_ERROR = 2
SHUTDOWN_TIMEOUT_SECONDS = 3.0
log = logging.getLogger("exporter")


class _OneLineParser(argparse.ArgumentParser):
    """Unknown flags are config errors too: one line and exit status 2, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG_ERROR, f"cryptoliq-exporter: config error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="cryptoliq-exporter",
        description="Prometheus exporter for crypto-derivatives liquidations and open interest. "
        "Each flag also reads from the environment variable shown and from the YAML file; "
        "flags win over the environment, which wins over the file.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config", type=Path, default=None, help=f"YAML configuration file [{CONFIG_ENV}]"
    )
    for setting in SETTINGS + HEATMAP_SETTINGS:
        help_text = f"{setting.help} [{setting.env}]"
        if setting.flag_kind == "switch":
            parser.add_argument(
                setting.flag,
                dest=setting.key,
                action="store_const",
                const=True,
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(setting.flag, dest=setting.key, default=None, help=help_text)
    # The spelling of the demo speed flag.
    parser.add_argument("--speed", dest="demo_speed", default=None, help=argparse.SUPPRESS)
    return parser


def load_config(argv: Sequence[str] | None, env: Mapping[str, str]) -> Config:
    args = build_parser().parse_args(argv)
    flags = vars(args)
    config_path: Path | None = flags.pop("config")
    if config_path is None and env.get(CONFIG_ENV):
        config_path = Path(env[CONFIG_ENV])
    yaml_values = read_yaml(config_path) if config_path is not None else {}
    return build_config(yaml_values, env, flags)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # ccxt logs every request at DEBUG through its own loggers; keep them out of our debug.
    logging.getLogger("ccxt").setLevel(max(logging.INFO, logging.getLogger().level))


def make_app(config: Config, web_config: WebConfig | None = None) -> web.Application:
    core = Core(
        tuple(e.name for e in config.enabled_exchanges()), time.time, heatmap=config.heatmap
    )
    exporter = Exporter(config=config, core=core, build_runnables=build_collectors)
    app = create_app(exporter)
    if web_config is not None and web_config.users:
        app.middlewares.append(basic_auth_middleware(web_config.users))
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


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load_config(argv, os.environ)
    except ConfigError as exc:
        print(f"cryptoliq-exporter: config error: {exc}", file=sys.stderr)  # noqa: T201
        return EXIT_CONFIG_ERROR
    try:
        web_config = (
            load_web_config(Path(config.web_config_file)) if config.web_config_file else None
        )
    except ConfigError as exc:
        print(f"cryptoliq-exporter: config error: {exc}", file=sys.stderr)  # noqa: T201
        return EXIT_CONFIG_ERROR
    configure_logging(config.log_level)
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
