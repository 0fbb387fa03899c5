"""Configuration layering and the one-line, exit-2 errors."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from exporter.cli import EXIT_CONFIG_ERROR, load_config, main
from exporter.config import ALL_INTERFACES
from tests.test_lifecycle import free_port, get, poll

if TYPE_CHECKING:
    from pathlib import Path


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults_run_three_exchanges_on_btc_eth_sol() -> None:
    config = load_config([], {})
    assert [e.name for e in config.enabled_exchanges()] == ["binance", "bybit", "okx"]
    for exchange in config.exchanges:
        assert exchange.symbols == ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")
        assert exchange.rest_url is None
        assert exchange.ws_url is None
    assert config.port == 9877
    assert config.demo is False


def test_flags_beat_env_beat_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "port: 9100\nlog_level: debug\nsymbols: [XRP]\n")
    config = load_config(["--config", path], {})
    assert (config.port, config.log_level) == (9100, "debug")
    assert config.exchange("okx").symbols == ("XRP/USDT:USDT",)
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
  bybit:
    enabled: false
  okx:
    symbols: [SOL/USDT:USDT, DOGE]
""",
    )
    config = load_config(["--config", path], {})
    binance = config.exchange("binance")
    assert binance.all_symbols
    assert binance.rest_url == "http://127.0.0.1:8080"
    assert binance.ws_url == "ws://127.0.0.1:8081"
    assert binance.poll_interval_seconds == 30.0
    assert not config.exchange("bybit").enabled
    assert config.exchange("okx").symbols == ("SOL/USDT:USDT", "DOGE/USDT:USDT")


def test_exchanges_flag_selects_the_enabled_set() -> None:
    config = load_config(["--exchanges", "okx,bybit"], {})
    assert [e.name for e in config.enabled_exchanges()] == ["bybit", "okx"]
    config = load_config([], {"CRYPTOLIQ_EXCHANGES": "binance"})
    assert [e.name for e in config.enabled_exchanges()] == ["binance"]


def test_demo_switch_and_speed() -> None:
    config = load_config(["--demo", "--speed", "60"], {})
    assert config.demo
    assert config.demo_speed == 60.0
    assert load_config([], {"CRYPTOLIQ_DEMO": "true"}).demo


@pytest.mark.parametrize(
    ("argv", "env", "yaml_text", "expected"),
    [
        (["--port", "http"], {}, None, "--port = 'http': expected a port number from 1 to 65535"),
        ([], {"CRYPTOLIQ_PORT": "70000"}, None, "CRYPTOLIQ_PORT = '70000'"),
        ([], {"CRYPTOLIQ_PROT": "1"}, None, "CRYPTOLIQ_PROT = '1': unknown variable"),
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
        (["--exchanges", "kraken"], {}, None, "--exchanges = 'kraken': expected a list of binance"),
        ([], {}, "port: [1\n", "not valid YAML at line"),
        ([], {}, "- 1\n", "expected a YAML mapping at the top level"),
        # Not Kubernetes service links: a bad port, a name or a value of another shape.
        ([], {"CRYPTOLIQ_PORT": "abc"}, None, "CRYPTOLIQ_PORT = 'abc': expected a port number"),
        ([], {"CRYPTOLIQ_PORT": "99999"}, None, "CRYPTOLIQ_PORT = '99999': expected a port"),
        ([], {"CRYPTOLIQ_PORT": "tcp://10.0.0.1:99999"}, None, "CRYPTOLIQ_PORT = 'tcp://"),
        ([], {"CRYPTOLIQ_SERVICE_HOST": "exporter"}, None, "CRYPTOLIQ_SERVICE_HOST = 'exporter"),
        ([], {"CRYPTOLIQ_PORT_9877_TCP_PORT": "9878"}, None, "unknown variable"),
        ([], {"CRYPTOLIQ_PORT_9877_TCP_PROTO": "udp"}, None, "unknown variable"),
        ([], {"CRYPTOLIQ_SERVICE_PORTS": "9877"}, None, "CRYPTOLIQ_SERVICE_PORTS = '9877'"),
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
            *("--exchanges", "okx", "--backfill-hours", "0"),
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
