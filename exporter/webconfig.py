"""Optional TLS and basic auth, from a web-config file in the Prometheus exporter-toolkit format.

```yaml
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert   # optional; default NoClientCert
  client_ca_file: clients.pem                    # needed for client certificates
  min_version: TLS12                             # TLS12 (default) or TLS13
basic_auth_users:
  prometheus: $2y$10$...                         # bcrypt hash, e.g. `htpasswd -nBC 10 ""`
```

Relative paths are relative to the file. Passwords are only ever compared against bcrypt hashes;
neither is logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import bcrypt
import yaml
from aiohttp import web

from exporter.config import ConfigError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from pathlib import Path

log = logging.getLogger(__name__)

TOP_KEYS = ("tls_server_config", "basic_auth_users", "http_server_config")
TLS_KEYS = ("cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version")
CLIENT_AUTH_TYPES = ("NoClientCert", "RequireAndVerifyClientCert")
MIN_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}


@dataclass(frozen=True)
class WebConfig:
    ssl_context: ssl.SSLContext | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash


def _mapping(
    key: str, raw: object, allowed_keys: tuple[str, ...], prefix: str = ""
) -> dict[str, Any]:
    """``raw`` as a mapping with only ``allowed_keys``; errors name keys as ``prefix + key``."""
    if not isinstance(raw, dict):
        raise ConfigError(key, raw, f"expected a mapping with keys {', '.join(allowed_keys)}")
    for name in raw:
        if name not in allowed_keys:
            allowed = f"unknown key; allowed: {', '.join(allowed_keys)}"
            raise ConfigError(f"{prefix}{name}", raw[name], allowed)
    return raw


def load_web_config(path: Path) -> WebConfig:
    """Parse and check the file, loading certificates now so a mistake stops start-up."""
    key = "--web-config-file"
    try:
        data: object = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(key, str(path), f"cannot read the file ({exc.strerror})") from exc
    except yaml.YAMLError:
        raise ConfigError(key, str(path), "not valid YAML") from None
    top = _mapping(key, data, TOP_KEYS)
    return WebConfig(
        ssl_context=_tls(top.get("tls_server_config"), path.parent),
        users=_users(top.get("basic_auth_users")),
    )


def _users(raw: object) -> dict[str, bytes]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError("basic_auth_users", raw, "expected a mapping of user to bcrypt hash")
    users = {}
    for user, hashed in raw.items():
        if not (isinstance(hashed, str) and hashed.startswith(("$2a$", "$2b$", "$2y$"))):
            # The value stands for a secret: name the user, never echo it.
            raise ConfigError(f"basic_auth_users.{user}", "(hidden)", "expected a bcrypt hash")
        users[str(user)] = hashed.replace("$2y$", "$2b$", 1).encode()
    return users


def _tls(raw: object, base: Path) -> ssl.SSLContext | None:
    if raw is None:
        return None
    prefix = "tls_server_config"
    tls = _mapping(prefix, raw, TLS_KEYS, prefix + ".")
    for name in ("cert_file", "key_file"):
        if not isinstance(tls.get(name), str) or not tls[name]:
            raise ConfigError(f"{prefix}.{name}", tls.get(name), "required when TLS is configured")
    auth = tls.get("client_auth_type", "NoClientCert")
    if auth not in CLIENT_AUTH_TYPES:
        allowed = f"expected one of {', '.join(CLIENT_AUTH_TYPES)}"
        raise ConfigError(f"{prefix}.client_auth_type", auth, allowed)
    version = tls.get("min_version", "TLS12")
    if version not in MIN_VERSIONS:
        raise ConfigError(f"{prefix}.min_version", version, "expected TLS12 or TLS13")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = MIN_VERSIONS[version]
    cert, key = base / tls["cert_file"], base / tls["key_file"]
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        allowed = f"cannot load it with its key ({exc})"
        raise ConfigError(f"{prefix}.cert_file", str(cert), allowed) from None
    if auth == "RequireAndVerifyClientCert":
        ca = tls.get("client_ca_file")
        if not isinstance(ca, str) or not ca:
            allowed = "required with RequireAndVerifyClientCert"
            raise ConfigError(f"{prefix}.client_ca_file", ca, allowed)
        try:
            context.load_verify_locations(base / ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{prefix}.client_ca_file", ca, f"cannot load it ({exc})") from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def basic_auth_middleware(
    users: Mapping[str, bytes],
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """401 unless the request carries one of ``users`` with the right password.

    bcrypt is slow on purpose; a verified (user, password) pair is remembered by its SHA-256 so a
    scrape every few seconds does not pay for it each time (as exporter-toolkit does).
    """
    verified: set[bytes] = set()

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if _authorised(request.headers.get("Authorization", ""), users, verified):
            return await handler(request)
        return web.Response(
            status=401,
            text="Unauthorized\n",
            headers={"WWW-Authenticate": 'Basic realm="cryptoliq-exporter"'},
        )

    return middleware


def _authorised(header: str, users: Mapping[str, bytes], verified: set[bytes]) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    hashed = users.get(user)
    if hashed is None:
        bcrypt.checkpw(b"timing", _DUMMY_HASH)  # same cost whether or not the user exists
        return False
    token = hashlib.sha256(hashed + b"\0" + password.encode()).digest()
    if any(hmac.compare_digest(token, known) for known in verified):
        return True
    if bcrypt.checkpw(password.encode(), hashed):
        verified.add(token)
        return True
    return False


_DUMMY_HASH = bcrypt.hashpw(b"dummy", bcrypt.gensalt(rounds=4))
