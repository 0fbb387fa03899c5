"""The web-config file: TLS and basic auth on the real process; headers, http2 and the rate
limit on the real app. Each ``tls_server_config`` key: tests/test_tlsconfig.py."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import logging
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import bcrypt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from exporter.access import TokenBucket
from exporter.cli import EXIT_CONFIG_ERROR, main
from exporter.webconfig import RateLimit
from tests.conftest import FakeClock
from tests.test_lifecycle import free_port, poll
from tests.tls_support import client_context, get, serving, write_web_config

if TYPE_CHECKING:
    from pathlib import Path


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "server.crt", tmp_path / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def fetch(url: str, context: ssl.SSLContext, auth: tuple[str, str] | None) -> int:
    request = urllib.request.Request(url)  # noqa: S310 - loopback https only
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.integration
def test_tls_and_basic_auth(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$")
    web_config = tmp_path / "web.yml"
    web_config.write_text(
        f"tls_server_config:\n  cert_file: {cert.name}\n  key_file: {key.name}\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n",
        encoding="utf-8",
    )
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "--port",
            str(port),
            "--listen-address",
            "127.0.0.1",
            "--web-config-file",
            str(web_config),
            "--exchanges",
            "okx",
            "--backfill-hours",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"CRYPTOLIQ_LOG_LEVEL": "debug", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    context = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{port}/metrics"
    try:
        poll(lambda: _answers(url, context), 30, "the TLS listener")
        assert fetch(url, context, None) == 401
        assert fetch(url, context, ("prometheus", "wrong")) == 401
        assert fetch(url, context, ("nobody", "s3cret")) == 401
        assert fetch(url, context, ("prometheus", "s3cret")) == 200
        assert fetch(url, context, ("prometheus", "s3cret")) == 200  # cached verification
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP is refused
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert "s3cret" not in output
    assert hashed not in output


def _answers(url: str, context: ssl.SSLContext) -> bool:
    try:
        return fetch(url, context, None) == 401
    except (urllib.error.URLError, ConnectionError, ssl.SSLError):
        return False


def config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, flag: str) -> str:
    """The one-line error of the exporter started with a web-config file holding ``text``
    (given as ``flag``), which must exit 2."""
    path = tmp_path / "web.yml"
    path.write_text(text, encoding="utf-8")
    assert main([flag, str(path)]) == EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n",
            "tls_server_config.cert_file",
        ),
        (
            "basic_auth_users:\n  alice: plaintext\n",
            "basic_auth_users.alice = '(hidden)': expected a bcrypt hash",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: SSL3\n",
            "min_version = 'SSL3'",
        ),
        ("basic_auth: {}\n", "basic_auth = '(hidden)': unknown key"),
        # Secrets under a mistyped key or in the wrong shape are never echoed.
        ("basic_auth_user:\n  prometheus: plaintext\n", "basic_auth_user = '(hidden)'"),
        ("basic_auth_users: [prometheus:plaintext]\n", "basic_auth_users = '(a list)'"),
        (
            "tls_server_config:\n  keey: |\n    -----BEGIN PRIVATE KEY-----\n    plaintext\n",
            "tls_server_config.keey = '(hidden)': unknown key",
        ),
    ],
)
def test_bad_web_config_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    err = config_error(tmp_path, capsys, text, "--web-config-file")
    assert expected in err
    assert "plaintext" not in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "http_server_config:\n  headers:\n    X-Powered-By: me\n",
            (
                "http_server_config.headers.X-Powered-By = 'me': cannot be configured; "
                "allowed: Strict-Transport-Security"
            ),
        ),
        (
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
            "X-Frame-Options = 'allow': expected one of deny, sameorigin",
        ),
        (
            "http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
            "expected one of nosniff",
        ),
        (
            'http_server_config:\n  headers:\n    Content-Security-Policy: "a\\r\\nX: y"\n',
            "expected a header value on one line",
        ),
        ("http_server_config:\n  http2: 1\n", "http_server_config.http2 = 1: expected true or"),
        (
            "http_server_config:\n  gzip: true\n",
            "http_server_config.gzip = '(hidden)': unknown",
        ),
        ("rate_limit:\n  interval: 1\n  burst: 5\n", "rate_limit.interval = 1: expected a Go"),
        ("rate_limit:\n  interval: 1x\n", "rate_limit.interval = '1x': expected a Go duration"),
        ("rate_limit:\n  interval: 1s\n  burst: -1\n", "rate_limit.burst = -1: expected a whole"),
        ("rate_limit:\n  period: 1s\n", "rate_limit.period = '(hidden)': unknown key"),
        (
            "basic_auth_users:\n  alice: '$2y$10$tooshort'\n",
            "basic_auth_users.alice = '(hidden)': expected a bcrypt hash",
        ),
    ],
)
def test_bad_http_and_rate_limit_settings_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    err = config_error(tmp_path, capsys, text, "--web.config.file")
    assert expected in err
    assert "tooshort" not in err


HEADERS = {
    "X-Frame-Options": "deny",
    "X-Content-Type-Options": "nosniff",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-XSS-Protection": "1",
    "Content-Security-Policy": "default-src 'self'",
}


@pytest.mark.integration
async def test_headers_are_on_every_response(tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web_config = write_web_config(
        tmp_path,
        "http_server_config:\n  headers:\n"
        "    X-Frame-Options: deny\n"
        "    X-Content-Type-Options: nosniff\n"
        "    Strict-Transport-Security: max-age=31536000; includeSubDomains\n"
        "    X-XSS-Protection: 1\n"
        "    Content-Security-Policy: \"default-src 'self'\"\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n",
    )
    assert web_config.headers == HEADERS  # X-XSS-Protection: 1 is a YAML number, kept as text
    async with serving(web_config) as port:
        base = f"http://127.0.0.1:{port}"
        login = {"Authorization": "Basic " + base64.b64encode(b"prometheus:s3cret").decode()}
        answers = [
            await get(f"{base}/healthz"),
            await get(f"{base}/metrics"),
            await get(f"{base}/nope", headers=login),
        ]
    assert [status for status, _, _ in answers] == [200, 401, 404]
    for _, headers, _ in answers:
        assert {name: headers.get(name) for name in HEADERS} == HEADERS


@pytest.mark.integration
async def test_http2_is_accepted_and_http_1_1_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """exporter-toolkit prefers HTTP/2 over TLS; aiohttp has HTTP/1.1 only, which every
    HTTP/2 client falls back to (ALPN offers nothing else)."""
    cert, key = self_signed(tmp_path)
    caplog.set_level(logging.INFO, logger="exporter.webconfig")
    web_config = write_web_config(
        tmp_path,
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        "http_server_config:\n  http2: true\n",
    )
    assert "aiohttp serves HTTP/1.1 only" in caplog.text
    async with serving(web_config) as port:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context(cert), server_hostname="127.0.0.1"
        )
        assert writer.get_extra_info("ssl_object").selected_alpn_protocol() is None
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        writer.close()
        await writer.wait_closed()


@pytest.mark.integration
async def test_rate_limit_answers_429_beyond_the_burst(tmp_path: Path) -> None:
    web_config = write_web_config(tmp_path, "rate_limit:\n  interval: 1h\n  burst: 3\n")
    assert web_config.rate_limit == RateLimit(interval_seconds=3600.0, burst=3)
    async with serving(web_config) as port:
        statuses = [(await get(f"http://127.0.0.1:{port}/healthz"))[0] for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


def test_token_bucket_refills_one_per_interval(clock: FakeClock) -> None:
    bucket = TokenBucket(RateLimit(interval_seconds=2.0, burst=2), clock)
    assert [bucket.allow() for _ in range(3)] == [True, True, False]
    clock.now += 1.0
    assert not bucket.allow()
    clock.now += 1.0
    assert [bucket.allow(), bucket.allow()] == [True, False]
    clock.now += 60.0  # never more than the burst
    assert [bucket.allow() for _ in range(3)] == [True, True, False]


def test_rate_limit_off_and_burst_zero(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """As the toolkit: interval 0 turns the limit off; burst 0 refuses everything (warned)."""
    assert write_web_config(tmp_path, "rate_limit:\n  interval: 0\n  burst: 5\n").rate_limit is None
    zero = write_web_config(tmp_path, "rate_limit:\n  interval: 1s\n").rate_limit
    assert zero == RateLimit(interval_seconds=1.0, burst=0)
    assert "every request is refused" in caplog.text
    assert not TokenBucket(zero, FakeClock()).allow()
