"""``tls_server_config`` of an exporter-toolkit web-config file, as a Python ``ssl`` context.

The keys and values are the toolkit's (Go's ``crypto/tls`` names); each is applied with what
Python's ``ssl`` module offers, and a value it cannot honour stops start-up with a
``ConfigError`` saying why, rather than serving something weaker or different from what the file
asks for:

- ``min_version``/``max_version`` ``TLS10``/``TLS11``: Python deprecates both and OpenSSL 3
  refuses them at its default security level, so the exporter could not speak them.
- ``client_auth_type: RequireAnyClientCert``: Python verifies every client certificate it
  requires against the CAs; there is no "require but do not verify".
- ``curve_preferences`` with more than one curve: Python can restrict key exchange to one curve
  (``SSLContext.set_ecdh_curve``), not to an ordered list.
- ``VerifyClientCertIfGiven`` or ``RequireAndVerifyClientCert`` without ``client_ca_file`` or
  ``client_ca``: Go would fall back to the system's CAs; trusting every public CA to vouch for
  scrapers is not access control, so a CA is required.

Everything else is honoured: TLS 1.2 cipher suites are mapped to OpenSSL's names (TLS 1.3 suites
are not configurable, in Go as here), ``prefer_server_cipher_suites`` is
``OP_CIPHER_SERVER_PREFERENCE``, inline ``cert``/``key`` are loaded from memory (``memfd``), and
``client_allowed_sans`` is kept for ``exporter.access`` to check per request (Python's ``ssl`` has
no hook into the handshake's certificate check). ``RequestClientCert`` asks for nothing: Go would
ask but accept any certificate or none without checking it, and nothing here reads an unchecked
certificate, so who gets in is the same.

Files are read once at start-up (exporter-toolkit re-reads them per connection); a renewed
certificate needs a restart.
"""

from __future__ import annotations

import logging
import os
import ssl
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from exporter.config import HIDDEN, ConfigError, shape

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

log = logging.getLogger(__name__)

PREFIX: Final = "tls_server_config"
TLS_KEYS: Final = (
    "cert",
    "key",
    "client_ca",
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "client_allowed_sans",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
)
# Go's crypto/tls names -> OpenSSL's, for Go's tls.CipherSuites() (the suites it does not call
# insecure); Go applies them to TLS 1.0-1.2 only.
CIPHER_SUITES: Final = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
# Accepted in cipher_suites and ignored, as Go does: TLS 1.3 suites are not configurable.
TLS13_CIPHER_SUITES: Final = (
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
)
CURVES: Final = {  # Go's tls.CurveID names the toolkit accepts -> OpenSSL's
    "CurveP256": "prime256v1",
    "CurveP384": "secp384r1",
    "CurveP521": "secp521r1",
    "X25519": "X25519",
}
VERSIONS: Final = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
OLD_VERSIONS: Final = ("TLS10", "TLS11")
CLIENT_AUTH_TYPES: Final = (
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "RequireClientCert",  # the toolkit's old name of RequireAnyClientCert
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
)
VERIFY_MODES: Final = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}


@dataclass(frozen=True)
class ServerTLS:
    """The server's TLS: the context, and what ``exporter.access`` checks per request."""

    context: ssl.SSLContext
    client_cert_required: bool = False
    client_allowed_sans: frozenset[str] | None = None  # None: any verified client certificate


def server_tls(raw: object, base: Path) -> ServerTLS | None:
    """``tls_server_config`` as a context; relative paths are relative to ``base``."""
    if raw is None:
        return None
    tls = _mapping(raw)
    auth = tls.get("client_auth_type", "NoClientCert")
    if auth not in CLIENT_AUTH_TYPES:
        raise ConfigError(
            f"{PREFIX}.client_auth_type", auth, f"expected one of {_list(CLIENT_AUTH_TYPES)}"
        )
    if auth in {"RequireAnyClientCert", "RequireClientCert"}:
        raise ConfigError(
            f"{PREFIX}.client_auth_type",
            auth,
            "Python's ssl verifies every client certificate it requires against the client CA; "
            "use RequireAndVerifyClientCert with client_ca_file",
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # no system CAs: see _client_ca
    _versions(context, tls)
    _load_certificate(context, tls, base)
    _client_ca(context, tls, base, auth)
    _cipher_suites(context, tls.get("cipher_suites"))
    _curve(context, tls.get("curve_preferences"))
    prefer = tls.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        raise ConfigError(f"{PREFIX}.prefer_server_cipher_suites", prefer, "expected true or false")
    if prefer:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    return ServerTLS(
        context=context,
        client_cert_required=auth == "RequireAndVerifyClientCert",
        client_allowed_sans=_allowed_sans(tls.get("client_allowed_sans"), auth),
    )


def _mapping(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(PREFIX, shape(raw), f"expected a mapping with keys {_list(TLS_KEYS)}")
    for name in raw:
        if name not in TLS_KEYS:
            raise ConfigError(
                f"{PREFIX}.{name}", HIDDEN, f"unknown key; allowed: {_list(TLS_KEYS)}"
            )
    return raw


def _list(names: Iterable[object]) -> str:
    return ", ".join(str(n) for n in names)


def _versions(context: ssl.SSLContext, tls: dict[str, Any]) -> None:
    chosen = []
    for name, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        value = tls.get(name, default)
        if value in OLD_VERSIONS:
            raise ConfigError(
                f"{PREFIX}.{name}",
                value,
                f"Python's ssl deprecates TLS 1.0 and 1.1 and {ssl.OPENSSL_VERSION} refuses them "
                "at its default security level; use TLS12 or TLS13",
            )
        if value not in VERSIONS:
            raise ConfigError(f"{PREFIX}.{name}", value, "expected TLS12 or TLS13")
        chosen.append(VERSIONS[value])
    if chosen[0] > chosen[1]:
        raise ConfigError(f"{PREFIX}.max_version", tls.get("max_version"), "below min_version")
    context.minimum_version, context.maximum_version = chosen


def _load_certificate(context: ssl.SSLContext, tls: dict[str, Any], base: Path) -> None:
    with ExitStack() as stack:
        paths = []
        for inline, file_key in (("cert", "cert_file"), ("key", "key_file")):
            shown = "(hidden)" if inline == "key" else "(inline)"  # a key is a secret
            if inline in tls and file_key in tls:
                raise ConfigError(
                    f"{PREFIX}.{inline}", shown, f"give {inline} or {file_key}, not both"
                )
            if inline in tls:
                if not isinstance(tls[inline], str) or not tls[inline].strip():
                    raise ConfigError(f"{PREFIX}.{inline}", shown, "expected PEM text")
                paths.append(stack.enter_context(_in_memory(f"{PREFIX}.{inline}", tls[inline])))
            elif isinstance(tls.get(file_key), str) and tls[file_key]:
                paths.append(str(base / tls[file_key]))
            else:
                allowed = f"{file_key} (or {inline}) is required when TLS is configured"
                raise ConfigError(f"{PREFIX}.{file_key}", tls.get(file_key), allowed)
        try:
            context.load_cert_chain(paths[0], paths[1])
        except (OSError, ssl.SSLError) as exc:
            key = f"{PREFIX}.cert_file" if "cert_file" in tls else f"{PREFIX}.cert"
            shown = paths[0] if "cert_file" in tls else "(inline)"
            raise ConfigError(key, shown, f"cannot load it with its key ({exc})") from None


@contextmanager
def _in_memory(key: str, text: str) -> Iterator[str]:
    """A path to ``text`` that never touches a disk (``ssl`` loads certificates from paths)."""
    if not hasattr(os, "memfd_create"):
        raise ConfigError(
            key, "(inline)", "inline PEM needs Linux (memfd_create); use the _file key"
        )
    fd = os.memfd_create("cryptoliq-pem", os.MFD_CLOEXEC)
    try:
        data = text.encode()
        while data:
            data = data[os.write(fd, data) :]
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def _client_ca(context: ssl.SSLContext, tls: dict[str, Any], base: Path, auth: str) -> None:
    """Client certificates are checked against the configured CA only, never the system's."""
    has_ca = "client_ca_file" in tls or "client_ca" in tls
    if "client_ca_file" in tls and "client_ca" in tls:
        raise ConfigError(
            f"{PREFIX}.client_ca", "(inline)", "give client_ca or client_ca_file, not both"
        )
    if has_ca and auth == "NoClientCert":
        # As exporter-toolkit: a CA without a policy that uses it is a mistake.
        raise ConfigError(
            f"{PREFIX}.client_auth_type", auth, "a client CA is set without a client auth policy"
        )
    context.verify_mode = VERIFY_MODES[auth]
    if auth == "RequestClientCert":
        log.info(
            "client_auth_type RequestClientCert: no client certificate is asked for; nothing "
            "here uses an unverified one, so access is the same"
        )
    if context.verify_mode == ssl.CERT_NONE:
        return
    if not has_ca:
        allowed = f"required with {auth} (the system's CAs are not trusted for client certificates)"
        raise ConfigError(f"{PREFIX}.client_ca_file", None, allowed)
    try:
        if "client_ca" in tls:
            if not isinstance(tls["client_ca"], str):
                raise ConfigError(f"{PREFIX}.client_ca", tls["client_ca"], "expected PEM text")
            context.load_verify_locations(cadata=tls["client_ca"])
        else:
            ca = tls["client_ca_file"]
            if not isinstance(ca, str) or not ca:
                raise ConfigError(f"{PREFIX}.client_ca_file", ca, "expected a file name")
            context.load_verify_locations(base / ca)
    except (OSError, ssl.SSLError) as exc:
        key = "client_ca" if "client_ca" in tls else "client_ca_file"
        shown = "(inline)" if key == "client_ca" else tls[key]
        raise ConfigError(f"{PREFIX}.{key}", shown, f"cannot load it ({exc})") from None


def _names(key: str, raw: object, allowed: list[str]) -> list[str]:
    """A YAML list of names from ``allowed``."""
    if not isinstance(raw, list):
        raise ConfigError(f"{PREFIX}.{key}", raw, f"expected a list of {_list(allowed)}")
    for name in raw:
        if name not in allowed:
            raise ConfigError(f"{PREFIX}.{key}", name, f"expected one of {_list(allowed)}")
    return [str(name) for name in raw]


def _cipher_suites(context: ssl.SSLContext, raw: object) -> None:
    if raw is None:
        return
    names = _names("cipher_suites", raw, [*CIPHER_SUITES, *TLS13_CIPHER_SUITES])
    wanted = [CIPHER_SUITES[n] for n in names if n in CIPHER_SUITES]
    if len(wanted) < len(names):
        log.info("cipher_suites: TLS 1.3 suites are not configurable; they are ignored, as in Go")
    if not wanted:
        return
    with suppress(ssl.SSLError):  # none of them known: reported below, naming the suite
        context.set_ciphers(":".join(wanted))
    available = {c["name"] for c in context.get_ciphers()}
    for name in names:
        if name in CIPHER_SUITES and CIPHER_SUITES[name] not in available:
            why = f"{ssl.OPENSSL_VERSION} does not offer it"
            raise ConfigError(f"{PREFIX}.cipher_suites", name, why)


def _curve(context: ssl.SSLContext, raw: object) -> None:
    if raw is None:
        return
    names = _names("curve_preferences", raw, list(CURVES))
    if len(names) > 1:
        raise ConfigError(
            f"{PREFIX}.curve_preferences",
            names,
            "Python's ssl can restrict key exchange to one curve only (set_ecdh_curve), not "
            "to an ordered list; list one curve, or none for OpenSSL's defaults",
        )
    if names:
        try:
            context.set_ecdh_curve(CURVES[names[0]])
        except (ValueError, ssl.SSLError):
            why = f"{ssl.OPENSSL_VERSION} cannot use it for key exchange"
            raise ConfigError(f"{PREFIX}.curve_preferences", names[0], why) from None


def _allowed_sans(raw: object, auth: str) -> frozenset[str] | None:
    key = f"{PREFIX}.client_allowed_sans"
    if raw is None:
        return None
    if auth != "RequireAndVerifyClientCert":
        # A client that sends no certificate would have no SAN to check.
        raise ConfigError(key, raw, "needs client_auth_type RequireAndVerifyClientCert")
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) and s for s in raw):
        raise ConfigError(
            key, raw, "expected a list of DNS names, IP addresses, e-mail addresses or URIs"
        )
    return frozenset(raw)
