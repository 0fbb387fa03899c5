"""The request side of a web config: client certificate SANs, the rate limit, security headers
and basic auth, in the order exporter-toolkit applies them.

A request that fails a check gets an answer, never an exception: 403 (certificate SAN not
allowed; the toolkit fails the handshake instead, which Python's ``ssl`` has no hook for), 429
(rate limit), 401 (credentials). Paths given as ``public`` answer without credentials through
their own handler (``/healthz``'s bare ``{"status": "ok"}``), so a container health check needs
no password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import time
from typing import TYPE_CHECKING, Final

import bcrypt
from aiohttp import web

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from exporter.webconfig import RateLimit, WebConfig

    Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = logging.getLogger(__name__)

# bcrypt reads the first 72 bytes of a password. bcrypt 5 raises for a longer one and bcrypt 4
# silently drops the rest; a longer password is refused under both, without hashing it.
MAX_PASSWORD_BYTES: Final = 72
# Certificate SAN kinds the toolkit compares (Go's DNSNames, EmailAddresses, IPAddresses, URIs),
# as Python's getpeercert() names them.
SAN_KINDS: Final = frozenset({"DNS", "email", "IP Address", "URI"})


def install(
    app: web.Application, web_config: WebConfig, public: Mapping[str, Handler] | None = None
) -> None:
    """Add the checks ``web_config`` asks for to ``app`` (before it starts)."""
    tls = web_config.tls
    if tls is not None and tls.client_allowed_sans is not None:
        app.middlewares.append(client_sans_middleware(tls.client_allowed_sans))
    if web_config.rate_limit is not None:
        bucket = TokenBucket(web_config.rate_limit, time.monotonic)
        app.middlewares.append(rate_limit_middleware(bucket))
    if web_config.headers:
        app.on_response_prepare.append(headers_hook(web_config.headers))
    if web_config.users:
        app.middlewares.append(basic_auth_middleware(BasicAuth(web_config.users), public or {}))


def peer_sans(request: web.Request) -> set[str]:
    """The SANs of the verified client certificate, written as Go writes them."""
    transport = request.transport
    certificate = transport.get_extra_info("peercert") if transport is not None else None
    found = set()
    for kind, value in (certificate or {}).get("subjectAltName", ()):
        if kind not in SAN_KINDS:
            continue
        if kind == "IP Address":  # OpenSSL: 2001:DB8:0:0:0:0:0:1; Go: 2001:db8::1
            try:
                value = str(ipaddress.ip_address(value.strip()))  # noqa: PLW2901 - normalised
            except ValueError:
                continue  # CPython reports a malformed IP SAN as "<invalid>": it matches nothing
        found.add(value)
    return found


def client_sans_middleware(allowed: frozenset[str]) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if peer_sans(request) & allowed:
            return await handler(request)
        return web.Response(status=403, text="Forbidden: client certificate not allowed\n")

    return middleware


class TokenBucket:
    """Go's ``rate.Limiter`` as exporter-toolkit uses it: starts full with ``burst`` tokens,
    gains one per interval, a request takes one or is refused."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self._interval = limit.interval_seconds
        self._burst = float(limit.burst)
        self._clock = clock
        self._tokens = self._burst
        self._last = clock()

    def allow(self) -> bool:
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._tokens = min(self._burst, self._tokens + elapsed / self._interval)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


def rate_limit_middleware(bucket: TokenBucket) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if bucket.allow():
            return await handler(request)
        return web.Response(status=429, text="Too Many Requests\n")

    return middleware


def headers_hook(
    headers: Mapping[str, str],
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An ``on_response_prepare`` hook: every response carries ``headers``, errors too."""

    async def hook(_request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(headers)

    return hook


def parse_basic(header: str) -> tuple[str | None, bytes] | None:
    """(user, password) of an ``Authorization: Basic`` header; None if it is not one. The
    password stays bytes (bcrypt hashes bytes; Go compares them undecoded); a user name that is
    not UTF-8 is None, a user no file can name."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True)
    except ValueError:  # binascii.Error, and ValueError for text that is not ASCII
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    try:
        return user.decode(), password
    except UnicodeDecodeError:
        return None, password


class BasicAuth:
    """Checks credentials against bcrypt hashes (``user -> hash``).

    bcrypt is slow on purpose; a verified (user, password) pair is remembered by its SHA-256 so a
    scrape every few seconds does not pay for it each time (as exporter-toolkit does). An unknown
    user costs one bcrypt of the same cost, so timing does not tell which users exist.
    """

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = users
        self._verified: set[bytes] = set()
        cost = max((int(hashed[4:6]) for hashed in users.values()), default=4)  # $2b$NN$...
        self._dummy = bcrypt.hashpw(b"dummy", bcrypt.gensalt(rounds=cost))

    def allows(self, header: str) -> bool:
        credentials = parse_basic(header)
        if credentials is None:
            return False
        user, password = credentials
        if len(password) > MAX_PASSWORD_BYTES:
            return False  # before the user lookup: equally fast whether the user exists or not
        hashed = self._users.get(user) if user is not None else None
        if hashed is None:
            _checkpw(b"timing", self._dummy)
            return False
        token = hashlib.sha256(hashed + b"\0" + password).digest()
        if any(hmac.compare_digest(token, known) for known in self._verified):
            return True
        if _checkpw(password, hashed):
            self._verified.add(token)
            return True
        return False


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # whatever else a bcrypt version refuses: a failed login, not a 500
        return False


def basic_auth_middleware(
    auth: BasicAuth, public: Mapping[str, Handler]
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """401 unless the request carries valid credentials; a ``public`` path answers through its
    own handler instead."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if auth.allows(request.headers.get("Authorization", "")):
            return await handler(request)
        if request.path in public:
            return await public[request.path](request)
        return web.Response(
            status=401,
            text="Unauthorized\n",
            headers={"WWW-Authenticate": 'Basic realm="cryptoliq-exporter"'},
        )

    return middleware
