"""``cryptoliq-exporter --healthcheck`` (the Docker image's HEALTHCHECK) against the real app:
with basic auth, TLS, client certificates, a rate limit and ports other than 9877, configured
the way a container is (``CRYPTOLIQ_*`` variables), and against nothing, or the wrong thing."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

import bcrypt
import pytest

from exporter.cli import main
from exporter.config import build_config
from exporter.healthcheck import EXIT_HEALTHY, EXIT_UNHEALTHY, probe
from exporter.webconfig import load_web_config
from tests.test_lifecycle import free_port, poll
from tests.tls_support import Authority, serving

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from exporter.webconfig import WebConfig

pytestmark = pytest.mark.integration


def web_yaml(ca: Authority, *, tls: bool, users: bool, extra: str = "") -> str:
    text = ""
    if tls:
        server = ca.issue("server", ())
        text += f"tls_server_config:\n  cert_file: {server.cert}\n  key_file: {server.key}\n"
        text += extra
    if users:
        hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
        text += f"basic_auth_users:\n  prometheus: '{hashed}'\n"
    return text


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    return Authority(tmp_path)


async def healthcheck(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> int:
    """``cryptoliq-exporter --healthcheck`` in a worker thread (the app runs on this loop)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return await asyncio.to_thread(main, ["--healthcheck"])


def container_env(port: int, web_config: Path | None, address: str = "127.0.0.1") -> dict[str, str]:
    env = {"CRYPTOLIQ_PORT": str(port), "CRYPTOLIQ_LISTEN_ADDRESS": address}
    if web_config is not None:
        env["CRYPTOLIQ_WEB_CONFIG_FILE"] = str(web_config)
    return env


def web_config_file(tmp_path: Path, text: str) -> tuple[Path, WebConfig]:
    path = tmp_path / "web.yml"
    path.write_text(text, encoding="utf-8")
    return path, load_web_config(path)


@pytest.mark.parametrize(
    ("tls", "users"),
    [(False, False), (False, True), (True, False), (True, True)],
    ids=["plain", "basic-auth", "tls", "tls-and-basic-auth"],
)
async def test_healthy_whatever_the_web_config(
    tmp_path: Path,
    ca: Authority,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tls: bool,
    users: bool,
) -> None:
    path, web_config = web_config_file(tmp_path, web_yaml(ca, tls=tls, users=users))
    port = free_port()  # not 9877
    async with serving(web_config, port):
        assert await healthcheck(monkeypatch, container_env(port, path)) == EXIT_HEALTHY
    scheme = "https" if tls else "http"
    assert capsys.readouterr().out == f"healthy: {scheme}://127.0.0.1:{port}/healthz answered ok\n"
    # Once the exporter is gone: unhealthy.
    assert await healthcheck(monkeypatch, container_env(port, path)) == EXIT_UNHEALTHY
    assert capsys.readouterr().out.startswith(f"unhealthy: {scheme}://127.0.0.1:{port}/healthz")


@pytest.mark.parametrize("maximum", ["TLS12", "TLS13"])
async def test_client_certificates_required(
    tmp_path: Path,
    ca: Authority,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    maximum: str,
) -> None:
    """No client certificate, so no request gets through: the TLS answer is the sign of life."""
    extra = (
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {ca.cert}\n"
        f"  max_version: {maximum}\n"
    )
    path, web_config = web_config_file(tmp_path, web_yaml(ca, tls=True, users=True, extra=extra))
    port = free_port()
    async with serving(web_config, port):
        assert await healthcheck(monkeypatch, container_env(port, path)) == EXIT_HEALTHY
    assert "answered the TLS handshake (client certificates required)" in capsys.readouterr().out
    assert await healthcheck(monkeypatch, container_env(port, path)) == EXIT_UNHEALTHY


async def test_rate_limited_is_alive(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, web_config = web_config_file(tmp_path, "rate_limit:\n  interval: 1h\n  burst: 1\n")
    port = free_port()
    async with serving(web_config, port):
        env = container_env(port, path)
        assert [await healthcheck(monkeypatch, env) for _ in range(2)] == [EXIT_HEALTHY] * 2
    assert "answered 429 (rate limit)" in capsys.readouterr().out.splitlines()[1]


def test_a_port_that_never_answers_is_unhealthy() -> None:
    """A listening socket nobody serves: connecting works (the kernel accepts), no answer comes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        config = build_config({}, {"CRYPTOLIQ_PORT": str(port)}, {})
        healthy, message = probe(config, None, timeout=0.5)
    assert not healthy
    assert message.startswith(f"unhealthy: http://127.0.0.1:{port}/healthz: ")


async def test_plain_http_where_tls_is_expected_is_unhealthy(
    tmp_path: Path,
    ca: Authority,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The web config says TLS (here with client certificates) but the port speaks HTTP."""
    extra = f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {ca.cert}\n"
    path, _ = web_config_file(tmp_path, web_yaml(ca, tls=True, users=False, extra=extra))
    port = free_port()
    async with serving(None, port):
        assert await healthcheck(monkeypatch, container_env(port, path)) == EXIT_UNHEALTHY
    assert "to a TLS ClientHello" in capsys.readouterr().out


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
def test_listening_on_every_ipv6_address_checks_the_ipv6_loopback() -> None:
    config = build_config({}, {"CRYPTOLIQ_LISTEN_ADDRESS": "::", "CRYPTOLIQ_PORT": "1"}, {})
    assert probe(config, None, timeout=0.5)[1].startswith("unhealthy: http://[::1]:1/healthz")


def test_a_config_error_is_unhealthy_not_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Docker reserves exit status 2; a health check that cannot read its config says 1."""
    assert main(["--healthcheck", "--port", "http"]) == EXIT_UNHEALTHY
    assert "config error: --port = 'http'" in capsys.readouterr().err


@pytest.fixture
def exporter_in_a_container(tmp_path: Path, ca: Authority) -> Iterator[dict[str, str]]:
    """The real process, configured as in a container: every setting a variable, basic auth
    and TLS on, a port that is not 9877. Yields that environment."""
    path, _ = web_config_file(tmp_path, web_yaml(ca, tls=True, users=True))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CRYPTOLIQ_PORT": str(free_port()),
        "CRYPTOLIQ_LISTEN_ADDRESS": "127.0.0.1",
        "CRYPTOLIQ_WEB_CONFIG_FILE": str(path),
        "CRYPTOLIQ_EXCHANGES": "okx",
        "CRYPTOLIQ_BACKFILL_HOURS": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        yield env
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_the_healthcheck_command_on_the_real_process(
    exporter_in_a_container: dict[str, str],
) -> None:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "exporter", "--healthcheck"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=exporter_in_a_container,
        )

    poll(lambda: run().returncode == EXIT_HEALTHY, 30, "the health check to pass")
    result = run()
    port = exporter_in_a_container["CRYPTOLIQ_PORT"]
    assert result.stdout == f"healthy: https://127.0.0.1:{port}/healthz answered ok\n"
    assert result.stderr == ""
