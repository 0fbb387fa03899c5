"""Command line: ``cryptoliq-exporter`` and ``python -m exporter``.

Only the configuration is imported up front. The serving process (``exporter.serve``: aiohttp,
ccxt, numpy) is imported when it is needed, so ``--healthcheck``, which a container runs every
15 s, starts in a fraction of the time and memory the exporter takes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from exporter import __version__, healthcheck
from exporter.config import CONFIG_ENV, SETTINGS, Config, ConfigError, build_config, read_yaml
from exporter.webconfig import load_web_config

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

EXIT_CONFIG_ERROR = 2
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
    for setting in SETTINGS:
        if setting.flag_kind == "none":  # YAML only
            continue
        help_text = f"{setting.help} [{setting.env}]"
        if setting.flag_kind == "switch":
            parser.add_argument(
                setting.flag,
                *setting.aliases,
                dest=setting.key,
                action="store_const",
                const=True,
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(
                setting.flag, *setting.aliases, dest=setting.key, default=None, help=help_text
            )
        if setting.former_flag is not None:
            parser.add_argument(
                setting.former_flag,
                dest=setting.former_dest,
                default=None,
                help=f"former name of {setting.flag}: works, with a warning [{setting.former_env}]",
            )
    parser.add_argument(
        "--web.listen-address",
        dest="web_listen_address",
        action="append",  # a second one is an error (build_config), not a silent override
        default=None,
        metavar="[HOST]:PORT",
        help="node_exporter's spelling of --listen-address and --port together, e.g. :9877 "
        "or [::1]:9877",
    )
    parser.add_argument(
        "--healthcheck",
        action="store_true",
        help="check that the exporter configured like this answers on this host, then exit: "
        "0 healthy, 1 not (the Docker image's HEALTHCHECK)",
    )
    return parser


def load_config(argv: Sequence[str] | None, env: Mapping[str, str]) -> Config:
    return _config(build_parser().parse_args(argv), env)


def _config(args: argparse.Namespace, env: Mapping[str, str]) -> Config:
    flags = vars(args).copy()
    flags.pop("healthcheck")
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A health check reports "unhealthy" (1) whatever went wrong: Docker reserves exit status 2.
    failed = healthcheck.EXIT_UNHEALTHY if args.healthcheck else EXIT_CONFIG_ERROR
    try:
        config = _config(args, os.environ)
        # Before the web config, whose notes (e.g. on http2) are logged as it is read.
        configure_logging("error" if args.healthcheck else config.log_level)
        web_config = (
            load_web_config(Path(config.web_config_file)) if config.web_config_file else None
        )
    except ConfigError as exc:
        print(f"cryptoliq-exporter: config error: {exc}", file=sys.stderr)  # noqa: T201
        return failed
    if args.healthcheck:
        return healthcheck.run(config, web_config)
    for name in config.ignored_env:
        log.debug("ignoring %s: a Kubernetes service link, not a setting", name)
    for warning in config.warnings:
        log.warning("config: %s", warning)
    from exporter.serve import serve  # noqa: PLC0415 - see the module docstring

    return serve(config, web_config)
