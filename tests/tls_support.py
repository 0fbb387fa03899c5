"""Certificates, web-config files and the real app on loopback, for the web-config tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from exporter.config import build_config
from exporter.serve import make_app
from exporter.webconfig import load_web_config
from tests.test_lifecycle import free_port

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path

    from exporter.webconfig import WebConfig


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


class Authority:
    """A CA in ``directory`` that issues server and client certificates."""

    def __init__(self, directory: Path, name: str = "test-ca") -> None:
        self.directory = directory
        self.name = name
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self._subject = subject
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.cert = directory / f"{name}.crt"
        self.cert.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue(
        self, name: str, sans: Sequence[x509.GeneralName] = (), *, client: bool = False
    ) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        sans = list(sans) or [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self._subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        issued = Issued(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        issued.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        issued.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return issued


def write_web_config(directory: Path, text: str) -> WebConfig:
    path = directory / "web.yml"
    path.write_text(text, encoding="utf-8")
    return load_web_config(path)


def tls_yaml(server: Issued, extra: str = "") -> str:
    """A ``tls_server_config`` with ``server``'s files and ``extra`` (indented lines) added."""
    return f"tls_server_config:\n  cert_file: {server.cert}\n  key_file: {server.key}\n{extra}"


def client_context(
    ca: Path | None = None,
    cert: Issued | None = None,
    *,
    maximum: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
    curve: str | None = None,
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(ca)
    if cert is not None:
        context.load_cert_chain(cert.cert, cert.key)
    if maximum is not None:
        context.maximum_version = maximum
    if ciphers is not None:
        context.set_ciphers(ciphers)
    if curve is not None:
        context.set_ecdh_curve(curve)
    return context


def quiet_config_yaml() -> dict[str, object]:
    """Settings for the real app whose exchanges are a closed loopback port (no network)."""
    dead = f"127.0.0.1:{free_port()}"
    return {
        "backfill_hours": 0,
        "exchanges": {
            name: {"rest_url": f"http://{dead}", "ws_url": f"ws://{dead}"}
            for name in ("binance", "bybit", "okx")
        },
    }


@asynccontextmanager
async def serving(web_config: WebConfig | None, port: int | None = None) -> AsyncIterator[int]:
    """The real app (``exporter.serve.make_app``) with ``web_config`` on 127.0.0.1; its port."""
    config = build_config(quiet_config_yaml(), {}, {})
    runner = web.AppRunner(make_app(config, web_config), access_log=None)
    await runner.setup()
    context = web_config.ssl_context if web_config is not None else None
    site = web.TCPSite(runner, "127.0.0.1", port or 0, ssl_context=context)
    try:
        await site.start()
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def get(
    url: str, context: ssl.SSLContext | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of a GET over ``context``."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            url, ssl=context if context is not None else False, headers=headers
        ) as response,
    ):
        return response.status, dict(response.headers), await response.text()


async def exchange(port: int, context: ssl.SSLContext) -> tuple[str, str, str]:
    """(TLS version, cipher, HTTP status line) of ``GET /healthz`` on a new connection; the
    status line is empty when the server hangs up after the handshake (TLS 1.3 reports a
    refused client certificate only then)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        tls = writer.get_extra_info("ssl_object")
        version, cipher = str(tls.version()), str(tls.cipher()[0])
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        try:
            status = (await reader.readline()).decode().strip()
        except (ssl.SSLError, ConnectionError):
            status = ""
    finally:
        writer.close()
        with suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()
    return version, cipher, status
