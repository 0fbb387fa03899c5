"""TLS, basic auth, headers and a rate limit from a web-config file in the Prometheus
exporter-toolkit format (``--web-config-file``/``--web.config.file``), so one file serves
node_exporter and this exporter alike:

```yaml
tls_server_config:                 # exporter.tlsconfig: what Python's ssl honours, and what not
  cert_file: server.crt            # or cert: inline PEM
  key_file: server.key             # or key: inline PEM
  client_auth_type: RequireAndVerifyClientCert   # default NoClientCert
  client_ca_file: clients.pem      # or client_ca: inline PEM
  client_allowed_sans: [prometheus.example]      # checked per request: 403 otherwise
  min_version: TLS12               # TLS12 (default) or TLS13; max_version likewise
  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]   # Go's names, TLS 1.2
  prefer_server_cipher_suites: true
  curve_preferences: [X25519]      # one curve
http_server_config:
  http2: true                      # accepted; aiohttp serves HTTP/1.1, clients fall back
  headers: {X-Frame-Options: deny}  # the toolkit's five security headers, on every response
basic_auth_users:
  prometheus: $2y$10$...           # bcrypt hash, e.g. `htpasswd -nBC 10 ""`
rate_limit: {interval: 1s, burst: 10}   # token bucket over all requests; 429 beyond it
```

Relative paths are relative to the file. A key or value that cannot be honoured is a
``ConfigError`` (exit status 2). Passwords are only ever compared against bcrypt hashes, by
``exporter.access``; neither is logged.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import yaml

from exporter.config import HIDDEN, ConfigError, shape
from exporter.tlsconfig import ServerTLS, server_tls

if TYPE_CHECKING:
    import ssl
    from collections.abc import Mapping
    from pathlib import Path

log = logging.getLogger(__name__)

TOP_KEYS: Final = ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit")
HTTP_KEYS: Final = ("http2", "headers")
RATE_LIMIT_KEYS: Final = ("interval", "burst")
# The toolkit's fixed set of headers, with the values it allows where it checks them
# (exporter-toolkit web/handler.go: private on purpose, for consistency across exporters).
HEADERS: Final[dict[str, tuple[str, ...] | None]] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}
# What bcrypt.Cost accepts in Go: $2a$/$2b$/$2y$, cost 04-31, 22 characters of salt, 31 of hash.
_BCRYPT_HASH = re.compile(r"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")
_UNIT_SECONDS: Final = {  # Go's time.ParseDuration units, both micro signs included
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_UNITS = "|".join(sorted(_UNIT_SECONDS, key=len, reverse=True))  # "ms" before "m" and "s"
_DURATION_PART = re.compile(rf"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)({_UNITS})")
_DURATION = re.compile(rf"^(?:{_DURATION_PART.pattern})+$")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: ``burst`` requests at once, then one per ``interval_seconds``."""

    interval_seconds: float
    burst: int


@dataclass(frozen=True)
class WebConfig:
    tls: ServerTLS | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash
    headers: Mapping[str, str] = field(default_factory=dict)  # added to every response
    rate_limit: RateLimit | None = None

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        return self.tls.context if self.tls is not None else None


def _mapping(
    key: str, raw: object, allowed_keys: tuple[str, ...], prefix: str = ""
) -> dict[str, Any]:
    """``raw`` as a mapping with only ``allowed_keys``; errors name keys as ``prefix + key``."""
    if not isinstance(raw, dict):
        allowed = f"expected a mapping with keys {', '.join(allowed_keys)}"
        raise ConfigError(key, shape(raw), allowed)
    for name in raw:
        if name not in allowed_keys:
            allowed = f"unknown key; allowed: {', '.join(allowed_keys)}"
            raise ConfigError(f"{prefix}{name}", HIDDEN, allowed)
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
    tls = server_tls(top.get("tls_server_config"), path.parent)
    headers = _http(top.get("http_server_config"), tls_on=tls is not None)
    return WebConfig(
        tls=tls,
        users=_users(top.get("basic_auth_users")),
        headers=headers,
        rate_limit=_rate_limit(top.get("rate_limit")),
    )


def _users(raw: object) -> dict[str, bytes]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        allowed = "expected a mapping of user to bcrypt hash"
        raise ConfigError("basic_auth_users", shape(raw), allowed)
    users = {}
    for user, hashed in raw.items():
        if not (isinstance(hashed, str) and _BCRYPT_HASH.match(hashed)):
            # The value stands for a secret: name the user, never echo it.
            raise ConfigError(f"basic_auth_users.{user}", "(hidden)", "expected a bcrypt hash")
        users[str(user)] = hashed.replace("$2y$", "$2b$", 1).encode()
    return users


def _http(raw: object, *, tls_on: bool) -> dict[str, str]:
    """``http_server_config``: the headers to add; ``http2`` is checked and needs nothing."""
    if raw is None:
        return {}
    prefix = "http_server_config"
    http = _mapping(prefix, raw, HTTP_KEYS, prefix + ".")
    http2 = http.get("http2", True)
    if not isinstance(http2, bool):
        raise ConfigError(f"{prefix}.http2", http2, "expected true or false")
    if http2 and "http2" in http and tls_on:
        log.info("http2: aiohttp serves HTTP/1.1 only; HTTP/2 clients fall back to it over ALPN")
    headers = http.get("headers")
    if headers is None:
        return {}
    if not isinstance(headers, dict):
        raise ConfigError(
            f"{prefix}.headers", headers, f"expected a mapping of {', '.join(HEADERS)}"
        )
    result = {}
    for name, value in headers.items():
        key = f"{prefix}.headers.{name}"
        if name not in HEADERS:
            raise ConfigError(key, value, f"cannot be configured; allowed: {', '.join(HEADERS)}")
        text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else None
        if text is None or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            raise ConfigError(key, value, "expected a header value on one line")
        allowed = HEADERS[name]
        if allowed is not None and text not in allowed:
            raise ConfigError(key, value, f"expected one of {', '.join(allowed)}")
        if text:  # blank: unset, as the toolkit documents
            result[name] = text
    return result


def parse_go_duration(key: str, raw: object) -> float:
    """Seconds of a Go duration (``time.ParseDuration``): ``1s``, ``500ms``, ``1m30s``."""
    allowed = "expected a Go duration like 500ms, 1s or 1m30s (or 0 to turn it off)"
    if raw == "0" or (isinstance(raw, int | float) and not isinstance(raw, bool) and raw == 0):
        return 0.0
    if not isinstance(raw, str) or not _DURATION.match(raw.strip()):
        # A bare number would be nanoseconds in Go: surely not what was meant.
        raise ConfigError(key, raw, allowed)
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(raw.strip()))


def _rate_limit(raw: object) -> RateLimit | None:
    if raw is None:
        return None
    prefix = "rate_limit"
    limit = _mapping(prefix, raw, RATE_LIMIT_KEYS, prefix + ".")
    interval = parse_go_duration(f"{prefix}.interval", limit.get("interval", 0))
    burst = limit.get("burst", 0)
    if not isinstance(burst, int) or isinstance(burst, bool) or burst < 0:
        raise ConfigError(
            f"{prefix}.burst", burst, "expected a whole number of requests, 0 or more"
        )
    if interval == 0:
        return None  # the toolkit's "off"
    if burst == 0:
        log.warning("rate_limit.burst is 0: every request is refused with 429, as in the toolkit")
    return RateLimit(interval_seconds=interval, burst=burst)
