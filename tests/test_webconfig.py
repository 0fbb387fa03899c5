"""TLS and basic auth from a web-config file, on the real process."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
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

from exporter.cli import EXIT_CONFIG_ERROR, main
from tests.test_lifecycle import free_port, poll

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
        ("basic_auth: {}\n", "basic_auth = {}: unknown key"),
    ],
)
def test_bad_web_config_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    path = tmp_path / "web.yml"
    path.write_text(text, encoding="utf-8")
    assert main(["--web-config-file", str(path)]) == EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert expected in err
    assert "plaintext" not in err
