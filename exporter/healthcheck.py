"""``cryptoliq-exporter --healthcheck``: does the exporter on this host answer? Exit status 0 if
so, 1 if not (Docker's ``HEALTHCHECK`` convention, where 2 is reserved).

It reads the settings the exporter reads (flags, ``CRYPTOLIQ_*`` variables, the config file, the
web-config file) to find the port, the address and whether TLS is on, and asks ``/healthz`` over
HTTP or HTTPS on the loopback address (or on the listen address, when the exporter listens on one
address only). ``/healthz`` answers without credentials, so basic auth needs no password here.
The server's certificate is not checked: this is the host's own endpoint, and nothing secret is
sent to it.

With ``client_auth_type: RequireAndVerifyClientCert`` no request can get through without a
client certificate, and the health check has none. It then checks that the exporter answers a
TLS ClientHello with a handshake record: that answer is written by the exporter's event loop, so
it shows the process is alive and not stuck, though not that its HTTP handlers run.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from contextlib import suppress
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from exporter.config import Config
    from exporter.webconfig import WebConfig

EXIT_HEALTHY: Final = 0
EXIT_UNHEALTHY: Final = 1
TIMEOUT_SECONDS: Final = 4.0  # inside the Dockerfile's HEALTHCHECK --timeout=5s
TLS_HANDSHAKE_RECORD: Final = 0x16  # TLS record type 22, then version 3.x
LOOPBACK: Final = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104 - matched, not bound


def run(config: Config, web_config: WebConfig | None) -> int:
    """Probe once, print what was found (Docker keeps it in the container's health log)."""
    healthy, message = probe(config, web_config)
    print(message)  # noqa: T201 - the health check's one line of output
    return EXIT_HEALTHY if healthy else EXIT_UNHEALTHY


def probe(
    config: Config, web_config: WebConfig | None, timeout: float = TIMEOUT_SECONDS
) -> tuple[bool, str]:
    """(healthy, what was found)."""
    host = LOOPBACK.get(config.listen_address, config.listen_address)
    tls = web_config.tls if web_config is not None else None
    if tls is not None and tls.client_cert_required:
        return _tls_answers(host, config.port, timeout)
    return _healthz(host, config.port, https=tls is not None, timeout=timeout)


def _client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the host's own endpoint; no secret is sent
    return context


def _healthz(host: str, port: int, *, https: bool, timeout: float) -> tuple[bool, str]:
    url = f"{'https' if https else 'http'}://{_join(host, port)}/healthz"
    connection = (
        http.client.HTTPSConnection(host, port, timeout=timeout, context=_client_context())
        if https
        else http.client.HTTPConnection(host, port, timeout=timeout)
    )
    try:
        connection.request("GET", "/healthz", headers={"Accept": "application/json"})
        response = connection.getresponse()
        body = response.read(4096)
    except (OSError, http.client.HTTPException) as exc:
        return False, f"unhealthy: {url}: {_describe(exc)}"
    finally:
        connection.close()
    if response.status == 429:  # rate-limited: the exporter answered
        return True, f"healthy: {url} answered 429 (rate limit)"
    status = None
    with suppress(ValueError, AttributeError):
        status = json.loads(body).get("status")
    if response.status == 200 and status == "ok":
        return True, f"healthy: {url} answered ok"
    return False, f"unhealthy: {url} answered {response.status} {body[:200]!r}"


def _tls_answers(host: str, port: int, timeout: float) -> tuple[bool, str]:
    """Whether the server answers a ClientHello with a TLS handshake record."""
    where = f"tls://{_join(host, port)}"
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = _client_context().wrap_bio(incoming, outgoing)
    with suppress(ssl.SSLWantReadError):
        client.do_handshake()  # writes the ClientHello to ``outgoing``
    answer = b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(outgoing.read())
            while len(answer) < 3:  # record type and version
                chunk = sock.recv(3 - len(answer))
                if not chunk:
                    break
                answer += chunk
    except OSError as exc:
        return False, f"unhealthy: {where}: {_describe(exc)}"
    if len(answer) == 3 and answer[0] == TLS_HANDSHAKE_RECORD and answer[1] == 3:
        return True, f"healthy: {where} answered the TLS handshake (client certificates required)"
    return False, f"unhealthy: {where} answered {answer!r} to a TLS ClientHello"


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__  # some (a timeout, a bare reset) print as nothing


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
