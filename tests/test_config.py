"""Configuration layering and the one-line, exit-2 errors."""

from __future__ import annotations

import argparse
import inspect
import subprocess
import sys
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import pytest

from exporter.cli import EXIT_CONFIG_ERROR, build_parser, load_config, main
from exporter.config import (
    ALL_INTERFACES,
    DEFAULT_COINS,
    DEFAULT_HEATMAP_COINS,
    SETTINGS,
    Config,
    _build_exchanges,
)
from exporter.heatmap import HeatmapParams
from exporter.heatmap.selection import HeatmapCoins
from exporter.shard import WHOLE, Shard
from exporter.venues import DEFAULT_VENUES, VENUES
from tests.test_lifecycle import free_port, get, poll

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults_run_the_default_venues_on_btc_eth_sol() -> None:
    config = load_config([], {})
    assert tuple(e.name for e in config.enabled_exchanges()) == DEFAULT_VENUES
    for exchange in config.exchanges:
        # Bare coins: each venue reads one as its main perpetual (BTC/USDT:USDT on Binance
        # USD-M, BTC/USD:BTC on COIN-M).
        assert exchange.symbols == ("BTC", "ETH", "SOL")
        assert exchange.rest_url is None
        assert exchange.ws_url is None
        assert exchange.transport == "ccxt"
    assert config.port == 9877
    assert config.demo is False
    assert config.warnings == ()


def test_flags_beat_env_beat_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "port: 9100\nlog_level: debug\nsymbols: [XRP]\n")
    config = load_config(["--config", path], {})
    assert (config.port, config.log_level) == (9100, "debug")
    assert config.exchange("okx").symbols == ("XRP",)
    config = load_config(["--config", path], {"CRYPTOLIQ_PORT": "9200"})
    assert config.port == 9200
    config = load_config(["--config", path, "--port", "9300"], {"CRYPTOLIQ_PORT": "9200"})
    assert config.port == 9300
    config = load_config([], {"CRYPTOLIQ_CONFIG": path})
    assert config.port == 9100


def test_per_exchange_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
symbols: BTC,ETH
exchanges:
  binance:
    symbols: all
    rest_url: http://127.0.0.1:8080/
    ws_url: ws://127.0.0.1:8081
    poll_interval_seconds: 30
  okx:
    symbols: [SOL/USDT:USDT, DOGE]
    transport: native
""",
    )
    config = load_config(["--config", path], {})
    binance = config.exchange("binance")
    assert binance.all_symbols
    assert binance.rest_url == "http://127.0.0.1:8080"
    assert binance.ws_url == "ws://127.0.0.1:8081"
    assert binance.poll_interval_seconds == 30.0
    assert binance.transport == "ccxt"
    assert config.exchange("okx").symbols == ("SOL/USDT:USDT", "DOGE")
    assert config.exchange("okx").transport == "native"
    assert config.exchange("bybit").symbols == ("BTC", "ETH")
    assert config.warnings == ()


def test_enabled_exchanges_in_every_form(tmp_path: Path) -> None:
    path = write(tmp_path, "enabled_exchanges: [okx]\n")

    def enabled(argv: list[str], env: dict[str, str]) -> list[str]:
        config = load_config(argv, env)
        assert config.warnings == ()
        return [e.name for e in config.enabled_exchanges()]

    assert enabled(["--config", path], {}) == ["okx"]
    assert enabled(["--config", path], {"CRYPTOLIQ_ENABLED_EXCHANGES": "BYBIT, binance"}) == [
        "binance",
        "bybit",
    ]
    env = {"CRYPTOLIQ_ENABLED_EXCHANGES": "bybit"}
    assert enabled(["--config", path, "--enabled-exchanges", "okx,bybit"], env) == ["bybit", "okx"]
    # Enabled or not, every venue has its config (a per-exchange setting of a disabled one is
    # still validated).
    assert tuple(e.name for e in load_config(["--config", path], {}).exchanges) == VENUES
    # Every venue at once.
    assert tuple(enabled(["--enabled-exchanges", "all"], {})) == VENUES
    assert tuple(enabled(["--config", path], {"CRYPTOLIQ_ENABLED_EXCHANGES": "ALL"})) == VENUES


@pytest.mark.parametrize(
    ("argv", "env", "enabled", "warning"),
    [
        (
            ["--exchanges", "okx,bybit"],
            {},
            ["bybit", "okx"],
            (
                "--exchanges is the former name of --enabled-exchanges: "
                "write --enabled-exchanges okx,bybit"
            ),
        ),
        (
            [],
            {"CRYPTOLIQ_EXCHANGES": "binance"},
            ["binance"],
            (
                "CRYPTOLIQ_EXCHANGES is the former name of CRYPTOLIQ_ENABLED_EXCHANGES: "
                "write CRYPTOLIQ_ENABLED_EXCHANGES=binance"
            ),
        ),
        # The former flag is still a flag: it beats the variable, whatever its spelling.
        (
            ["--exchanges", "okx"],
            {"CRYPTOLIQ_ENABLED_EXCHANGES": "binance"},
            ["okx"],
            "write --enabled-exchanges okx",
        ),
    ],
)
def test_the_former_exchanges_flag_and_variable_work_with_a_warning(
    argv: list[str], env: dict[str, str], enabled: list[str], warning: str
) -> None:
    config = load_config(argv, env)
    assert [e.name for e in config.enabled_exchanges()] == enabled
    assert len(config.warnings) == 1
    assert warning in config.warnings[0]


def test_the_former_per_exchange_enabled_works_with_a_warning(tmp_path: Path) -> None:
    text = "exchanges:\n  bybit:\n    enabled: false\n  okx: {enabled: true}\n"
    config = load_config(["--config", write(tmp_path, text)], {})
    assert [e.name for e in config.enabled_exchanges()] == ["binance", "okx"]
    assert config.warnings == (
        (
            "exchanges.bybit.enabled, exchanges.okx.enabled: deprecated; "
            "write enabled_exchanges: [binance, okx]"
        ),
    )
    # With the list given, the list decides, and the leftover key is reported.
    config = load_config(["--config", write(tmp_path, text), "--enabled-exchanges", "bybit"], {})
    assert [e.name for e in config.enabled_exchanges()] == ["bybit"]
    assert config.warnings == (
        (
            "exchanges.bybit.enabled, exchanges.okx.enabled: ignored, enabled_exchanges says "
            "which exchanges run"
        ),
    )


def test_shard_from_flag_env_and_yaml(tmp_path: Path) -> None:
    assert load_config([], {}).shard == WHOLE
    assert load_config(["--shard", "2/3"], {}).shard == Shard(2, 3)
    assert load_config([], {"CRYPTOLIQ_SHARD": " 3 / 3 "}).shard == Shard(3, 3)
    assert load_config(["--config", write(tmp_path, "shard: 1/2\n")], {}).shard == Shard(1, 2)
    # Replicas must pick the same heatmap coins: listed ones, not a ranking by open interest.
    assert load_config(["--shard", "1/2"], {}).heatmap_coins == HeatmapCoins(coins=DEFAULT_COINS)
    config = load_config(["--shard", "1/2", "--heatmap-coins", "all"], {})
    assert config.heatmap_coins == HeatmapCoins()
    assert load_config([], {}).heatmap_coins == DEFAULT_HEATMAP_COINS


def test_demo_switch_and_speed() -> None:
    config = load_config(["--demo", "--demo-speed", "60"], {})
    assert config.demo
    assert config.demo_speed == 60.0
    assert load_config(["--speed", "30"], {}).demo_speed == 30.0  # the documented alias
    assert load_config([], {"CRYPTOLIQ_DEMO": "true"}).demo


def test_no_hidden_flags() -> None:
    """Every flag the parser takes is in --help."""
    parser = build_parser()
    help_text = parser.format_help()
    for action in parser._actions:
        assert action.help is not argparse.SUPPRESS, action.option_strings
        for flag in action.option_strings:
            assert flag in help_text


# One non-default value per setting, and where it must land: each setting names its target.
TARGETS: dict[str, tuple[str, Any]] = {
    "listen_address": ("127.0.0.2", lambda c: c.listen_address),
    "port": ("9100", lambda c: c.port),
    "log_level": ("debug", lambda c: c.log_level),
    "enabled_exchanges": ("okx", lambda c: tuple(e.name for e in c.enabled_exchanges())),
    "symbols": ("XRP", lambda c: c.exchange("okx").symbols),
    "backfill_hours": ("5", lambda c: c.backfill_hours),
    "state_dir": ("/tmp/state", lambda c: c.state_dir),  # noqa: S108 - never created
    "snapshot_interval_seconds": ("30", lambda c: c.snapshot_interval_seconds),
    "web_config_file": ("web.yml", lambda c: c.web_config_file),
    "demo": ("true", lambda c: c.demo),
    "exemplar_min_usd": ("5000", lambda c: c.exemplar_min_usd),
    "demo_speed": ("20", lambda c: c.demo_speed),
    "heatmap_coins": ("BTC", lambda c: c.heatmap_coins),
    "shard": ("2/3", lambda c: c.shard),
    "heatmap_leverage": ("mix", lambda c: c.heatmap.leverage_model),
    "heatmap_leverage_median": ("15", lambda c: c.heatmap.leverage_median),
    "heatmap_leverage_sigma": ("0.5", lambda c: c.heatmap.leverage_sigma),
    "heatmap_leverage_min": ("3", lambda c: c.heatmap.leverage_min),
    "heatmap_leverage_max": ("100", lambda c: c.heatmap.leverage_max),
    "heatmap_leverage_mix": ("10:1", lambda c: dict(c.heatmap.leverage_mix)),
    "heatmap_mmr": ("BTC:0.01", lambda c: dict(c.heatmap.mmr)),
    "heatmap_side_attribution": ("trend", lambda c: c.heatmap.side_attribution),
    "heatmap_bin_fraction": ("0.005", lambda c: c.heatmap.bin_fraction),
    "heatmap_range_fraction": ("0.2", lambda c: c.heatmap.range_fraction),
    "heatmap_half_life_hours": ("24", lambda c: c.heatmap.half_life_hours),
    "heatmap_stale_after_seconds": ("600", lambda c: c.heatmap.stale_after_seconds),
}


def test_every_setting_lands_on_its_target_and_nowhere_else() -> None:
    # YAML only: the per-exchange mapping (test_per_exchange_settings).
    assert {s.key for s in SETTINGS if s.flag_kind != "none"} == set(TARGETS)
    default = load_config([], {})
    for setting in SETTINGS:
        part, name = setting.target
        targets = {
            "config": {f.name for f in fields(Config)},
            "heatmap": {f.name for f in fields(HeatmapParams)},
            "exchanges": set(inspect.signature(_build_exchanges).parameters),
        }
        assert name in targets[part], setting.key
        if setting.key not in TARGETS:
            continue
        raw, read = TARGETS[setting.key]
        config = load_config([], {setting.env: raw})
        assert read(config) != read(default), setting.key
        others = {k: read for k, (_, read) in TARGETS.items() if k != setting.key}
        changed = [k for k, read in others.items() if read(config) != read(default)]
        # The documented couplings: a demo runs every venue unless enabled_exchanges is set;
        # shards default to listed heatmap coins (test_shard_from_flag_env_and_yaml).
        coupled = {"demo": ["enabled_exchanges"], "shard": ["heatmap_coins"]}
        assert changed == coupled.get(setting.key, []), setting.key


def test_a_demo_runs_every_venue_unless_told_otherwise() -> None:
    def enabled(argv: list[str]) -> tuple[str, ...]:
        return tuple(e.name for e in load_config(argv, {}).enabled_exchanges())

    assert enabled(["--demo"]) == VENUES
    assert enabled(["--demo", "--enabled-exchanges", "okx,gate"]) == ("okx", "gate")
    assert enabled([]) == DEFAULT_VENUES


@pytest.mark.parametrize(
    ("argv", "env", "yaml_text", "expected"),
    [
        (["--port", "http"], {}, None, "--port = 'http': expected a port number from 1 to 65535"),
        ([], {"CRYPTOLIQ_PORT": "70000"}, None, "CRYPTOLIQ_PORT = '70000'"),
        ([], {"CRYPTOLIQ_PROT": "1"}, None, "CRYPTOLIQ_PROT = '(hidden)': unknown variable"),
        ([], {}, "prot: 9100\n", "prot = 9100: unknown key; allowed: listen_address"),
        ([], {}, "exchanges:\n  binanse: {}\n", "exchanges.binanse = {}: unknown exchange"),
        (
            [],
            {},
            "exchanges:\n  okx:\n    poll_interval_seconds: -5\n",
            "exchanges.okx.poll_interval_seconds = -5: expected a number of seconds from 1 to 3600",
        ),
        (
            [],
            {},
            "exchanges:\n  okx:\n    symbol: [BTC]\n",
            "exchanges.okx.symbol = ['BTC']: unknown key",
        ),
        ([], {}, "symbols: [BTC, 'not a symbol']\n", "symbols = 'not a symbol': expected 'all'"),
        (
            [],
            {},
            "exchanges:\n  bybit:\n    ws_url: stream.bybit.com\n",
            "ws_url = 'stream.bybit.com'",
        ),
        (["--log-level", "loud"], {}, None, "--log-level = 'loud': expected one of debug"),
        (["--exchanges", "mexc"], {}, None, "--exchanges = 'mexc': expected 'all' or a list of"),
        (
            ["--enabled-exchanges", "okx,mexc"],
            {},
            None,
            "--enabled-exchanges = 'mexc': expected 'all' or a list of binance, bybit, okx",
        ),
        ([], {}, "enabled_exchanges: []\n", "enabled_exchanges = []: expected 'all' or a list of"),
        (
            ["--exchanges", "okx", "--enabled-exchanges", "bybit"],
            {},
            None,
            "--exchanges = 'okx': give it or --enabled-exchanges, not both",
        ),
        (
            [],
            {"CRYPTOLIQ_EXCHANGES": "okx", "CRYPTOLIQ_ENABLED_EXCHANGES": "okx"},
            None,
            "CRYPTOLIQ_EXCHANGES = 'okx': give it or CRYPTOLIQ_ENABLED_EXCHANGES, not both",
        ),
        (
            [],
            {},
            "exchanges: binance,okx\n",
            "exchanges = 'binance,okx': expected a mapping of exchange name to settings",
        ),
        (
            [],
            {},
            (
                "exchanges:\n  okx: {enabled: false}\n  binance: {enabled: false}\n"
                "  bybit: {enabled: false}\n"
            ),
            "exchanges = '(none enabled)': enable at least one of binance, bybit, okx",
        ),
        (
            [],
            {},
            "exchanges:\n  okx:\n    transport: grpc\n",
            "exchanges.okx.transport = 'grpc': expected one of ccxt, native",
        ),
        # Each heatmap parameter is checked by the model under its own key.
        (
            ["--heatmap-leverage-mix", "5:0.5,10:0.4"],
            {},
            None,
            "--heatmap-leverage-mix = '5:0.5,10:0.4': leverage_mix weights sum to 0.9, not 1",
        ),
        (
            [],
            {},
            "heatmap_leverage_mix: {0.5: 1}\n",
            "heatmap_leverage_mix = {0.5: 1}: leverage_mix needs leverages >= 1",
        ),
        (
            ["--heatmap-leverage-mix", "10:1"],
            {"CRYPTOLIQ_HEATMAP_MMR": "BTC:0.7"},
            None,
            "CRYPTOLIQ_HEATMAP_MMR = 'BTC:0.7': maintenance margin rates must be within 0 and 0.5",
        ),
        (
            ["--heatmap-leverage-median", "150"],
            {},
            None,
            (
                "--heatmap-leverage-median = '150': leverage_median must lie within "
                "leverage_min and leverage_max"
            ),
        ),
        (
            [],
            {"CRYPTOLIQ_HEATMAP_LEVERAGE": "uniform"},
            None,
            "CRYPTOLIQ_HEATMAP_LEVERAGE = 'uniform': expected one of lognormal, mix",
        ),
        (
            ["--heatmap-half-life-hours", "0"],
            {},
            None,
            "--heatmap-half-life-hours = '0': expected a number of hours from 0.1",
        ),
        (
            ["--backfill-hours", "1000"],
            {},
            None,
            "--backfill-hours = '1000': expected a number of hours from 0 to 720",
        ),
        ([], {"CRYPTOLIQ_SPEED": "5"}, None, "CRYPTOLIQ_SPEED = '(hidden)': unknown variable"),
        ([], {}, "port: [1\n", "not valid YAML at line"),
        ([], {}, "- 1\n", "expected a YAML mapping at the top level"),
        # Not Kubernetes service links: a bad port, a name or a value of another shape.
        ([], {"CRYPTOLIQ_PORT": "abc"}, None, "CRYPTOLIQ_PORT = 'abc': expected a port number"),
        ([], {"CRYPTOLIQ_PORT": "99999"}, None, "CRYPTOLIQ_PORT = '99999': expected a port"),
        ([], {"CRYPTOLIQ_PORT": "tcp://10.0.0.1:99999"}, None, "CRYPTOLIQ_PORT = 'tcp://"),
        (
            [],
            {"CRYPTOLIQ_SERVICE_HOST": "exporter"},
            None,
            "CRYPTOLIQ_SERVICE_HOST = '(hidden)'",
        ),
        ([], {"CRYPTOLIQ_PORT_9877_TCP_PORT": "9878"}, None, "unknown variable"),
        ([], {"CRYPTOLIQ_PORT_9877_TCP_PROTO": "udp"}, None, "unknown variable"),
        (
            [],
            {"CRYPTOLIQ_SERVICE_PORTS": "9877"},
            None,
            "CRYPTOLIQ_SERVICE_PORTS = '(hidden)'",
        ),
        # node_exporter's --web.listen-address
        (
            ["--web.listen-address", "9877"],
            {},
            None,
            "--web.listen-address = '9877': expected [HOST]:PORT, e.g. :9877",
        ),
        (["--web.listen-address", "::1:9877"], {}, None, "--web.listen-address = '::1:9877'"),
        (["--web.listen-address", "[::1]"], {}, None, "--web.listen-address = '[::1]'"),
        (["--web.listen-address", ":0"], {}, None, "--web.listen-address = ':0': expected"),
        (["--web.listen-address", "a b:80"], {}, None, "--web.listen-address = 'a b:80'"),
        (
            ["--web.listen-address", ":1", "--web.listen-address", ":2"],
            {},
            None,
            "--web.listen-address = [':1', ':2']: expected one address",
        ),
        (["--shard", "0/2"], {}, None, "--shard = '0/2': expected I/N with 1 <= I <= N <= 64"),
        (["--shard", "3/2"], {}, None, "--shard = '3/2': expected I/N"),
        ([], {"CRYPTOLIQ_SHARD": "1of2"}, None, "CRYPTOLIQ_SHARD = '1of2': expected I/N"),
        ([], {}, "shard: 1/65\n", "shard = '1/65': expected I/N with 1 <= I <= N <= 64"),
        (
            ["--shard", "1/2", "--heatmap-coins", "top:5"],
            {},
            None,
            "--heatmap-coins = 'top:5': with shard 1/2 each replica ranks coins",
        ),
        (
            ["--web.listen-address", ":9100", "--port", "9200"],
            {},
            None,
            "--web.listen-address = ':9100': give it or --port, not both",
        ),
    ],
)
def test_bad_config_exits_2_with_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    yaml_text: str | None,
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if yaml_text is not None:
        argv = [*argv, "--config", write(tmp_path, yaml_text)]
    assert main(argv) == EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("cryptoliq-exporter: config error: ")
    assert expected in err


def test_missing_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--config", str(tmp_path / "nope.yaml")]) == EXIT_CONFIG_ERROR
    assert "cannot read the file" in capsys.readouterr().err


def test_console_entry_point_exit_status() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "cryptoliq-exporter: config error: --port = '0': expected a port number from 1 to 65535"
    )
    help_text = subprocess.run(
        [sys.executable, "-m", "exporter", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "CRYPTOLIQ_PORT" in help_text
    assert "--demo" in help_text


# What Kubernetes injects for Services named cryptoliq (ports "metrics" 9877/TCP and 9878/UDP)
# and cryptoliq-exporter (IPv6, SCTP) in the same namespace.
SERVICE_LINKS = {
    "CRYPTOLIQ_SERVICE_HOST": "10.0.0.1",
    "CRYPTOLIQ_SERVICE_PORT": "9877",
    "CRYPTOLIQ_SERVICE_PORT_METRICS": "9877",
    "CRYPTOLIQ_PORT": "tcp://10.0.0.1:9877",
    "CRYPTOLIQ_PORT_9877_TCP": "tcp://10.0.0.1:9877",
    "CRYPTOLIQ_PORT_9877_TCP_PROTO": "tcp",
    "CRYPTOLIQ_PORT_9877_TCP_PORT": "9877",
    "CRYPTOLIQ_PORT_9877_TCP_ADDR": "10.0.0.1",
    "CRYPTOLIQ_PORT_9878_UDP": "udp://10.0.0.1:9878",
    "CRYPTOLIQ_PORT_9878_UDP_PROTO": "udp",
    "CRYPTOLIQ_PORT_9878_UDP_PORT": "9878",
    "CRYPTOLIQ_PORT_9878_UDP_ADDR": "10.0.0.1",
    "CRYPTOLIQ_EXPORTER_SERVICE_HOST": "fd00::1",
    "CRYPTOLIQ_EXPORTER_SERVICE_PORT": "9877",
    "CRYPTOLIQ_EXPORTER_PORT": "sctp://[fd00::1]:9877",
    "CRYPTOLIQ_EXPORTER_PORT_9877_SCTP": "sctp://[fd00::1]:9877",
    "CRYPTOLIQ_EXPORTER_PORT_9877_SCTP_PROTO": "sctp",
    "CRYPTOLIQ_EXPORTER_PORT_9877_SCTP_PORT": "9877",
    "CRYPTOLIQ_EXPORTER_PORT_9877_SCTP_ADDR": "fd00::1",
}


def test_kubernetes_service_links_are_skipped() -> None:
    config = load_config([], SERVICE_LINKS)
    assert config.port == 9877
    assert config.ignored_env == tuple(sorted(SERVICE_LINKS))
    # A real CRYPTOLIQ_PORT is still the setting; other variables are still read.
    env = {**SERVICE_LINKS, "CRYPTOLIQ_PORT": "9100", "CRYPTOLIQ_LOG_LEVEL": "debug"}
    config = load_config([], env)
    assert (config.port, config.log_level) == (9100, "debug")
    assert "CRYPTOLIQ_PORT" not in config.ignored_env


def test_kubernetes_service_links_are_logged_and_do_not_stop_the_process() -> None:
    port = free_port()
    env = {**SERVICE_LINKS, "PATH": "/usr/bin:/bin", "CRYPTOLIQ_LOG_LEVEL": "debug"}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "exporter"),
            *("--web.listen-address", f"127.0.0.1:{port}"),
            *("--exchanges", "okx", "--backfill-hours", "0"),  # the former spelling, on purpose
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        poll(lambda: get(f"http://127.0.0.1:{port}/healthz") is not None, 30, "/healthz")
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    for name in SERVICE_LINKS:
        assert f"ignoring {name}: a Kubernetes service link, not a setting" in output
    # Config warnings are logged once logging is set up.
    assert (
        "WARNING exporter: config: --exchanges is the former name of --enabled-exchanges: "
        "write --enabled-exchanges okx" in output
    )


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (":9877", (ALL_INTERFACES, 9877)),
        (f"{ALL_INTERFACES}:9100", (ALL_INTERFACES, 9100)),
        ("127.0.0.1:9200", ("127.0.0.1", 9200)),
        ("[::1]:9300", ("::1", 9300)),
        ("localhost:9400", ("localhost", 9400)),
    ],
)
def test_node_exporter_listen_address_flag(address: str, expected: tuple[str, int]) -> None:
    env = {"CRYPTOLIQ_LISTEN_ADDRESS": "10.1.1.1", "CRYPTOLIQ_PORT": "9999"}  # flags win
    config = load_config([f"--web.listen-address={address}"], env)
    assert (config.listen_address, config.port) == expected


def test_node_exporter_web_config_flag() -> None:
    assert load_config(["--web.config.file", "web.yml"], {}).web_config_file == "web.yml"
    assert load_config(["--web-config-file=w.yml"], {}).web_config_file == "w.yml"
