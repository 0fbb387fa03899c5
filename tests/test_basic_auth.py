"""Basic auth: the same answers under bcrypt 4 and 5, never a 500, and a bare /healthz.

bcrypt reads 72 bytes of a password: bcrypt 4 silently drops the rest, bcrypt 5 raises (which
was an HTTP 500 with a traceback). A longer password is refused under both. bcrypt 4 comes from
a side install (``.ci/run``: ``pip install --target .ci-deps/bcrypt4``) that a subprocess puts
first on its path.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import bcrypt
import pytest

from exporter.access import MAX_PASSWORD_BYTES, BasicAuth
from tests.conftest import unavailable
from tests.monitoring_support import ROOT
from tests.tls_support import get, serving, write_web_config

if TYPE_CHECKING:
    from pathlib import Path

BCRYPT4 = ROOT / ".ci-deps" / "bcrypt4"
PASSWORD = b"p" * MAX_PASSWORD_BYTES


def basic(user: bytes, password: bytes) -> str:
    return "Basic " + base64.b64encode(user + b":" + password).decode()


def check_logins() -> str:
    """Assert BasicAuth's answers under whichever bcrypt this process imported; its version."""
    hashed = bcrypt.hashpw(PASSWORD, bcrypt.gensalt(rounds=4))
    auth = BasicAuth({"prometheus": hashed})
    # What the length check guards against: bcrypt 4 takes a longer password whose first 72
    # bytes are right, bcrypt 5 raises.
    version = importlib.metadata.version("bcrypt")  # of the first bcrypt on sys.path
    if version.startswith("4."):
        assert bcrypt.checkpw(PASSWORD + b"x", hashed)
    else:
        with pytest.raises(ValueError, match="72 bytes"):
            bcrypt.checkpw(PASSWORD + b"x", hashed)
    assert auth.allows(basic(b"prometheus", PASSWORD))
    assert auth.allows(basic(b"prometheus", PASSWORD))  # the cached verification
    refused = [
        basic(b"prometheus", PASSWORD + b"x"),  # 73 bytes, the first 72 right
        basic(b"prometheus", PASSWORD + b"x" * 10_000),
        basic(b"nobody", PASSWORD + b"x"),
        basic(b"prometheus", PASSWORD[:-1]),
        basic(b"prometheus", b"\xff\xfe"),  # not UTF-8
        basic(b"\xffprometheus", PASSWORD),  # a user name that is not UTF-8
        basic(b"prometheus", b"p\x00p"),
        "Basic " + base64.b64encode(b"prometheus").decode(),  # no colon
        "Basic \u00ff\u00ff",  # not ASCII
        "Basic !!!!",  # not base64
        "Basic",
        "Bearer abc",
        "",
    ]
    for header in refused:
        assert not auth.allows(header), header
    # Passwords are bytes to bcrypt, as to Go: one that is not UTF-8 works when it is right.
    latin1 = "p\u00e4sswort".encode("latin-1")
    assert BasicAuth({"u": bcrypt.hashpw(latin1, bcrypt.gensalt(rounds=4))}).allows(
        basic(b"u", latin1)
    )
    return version


def test_logins_under_bcrypt_5() -> None:
    assert check_logins().startswith("5.")


@pytest.mark.integration
def test_logins_under_bcrypt_4() -> None:
    if not (BCRYPT4 / "bcrypt").is_dir():
        unavailable(
            f"{BCRYPT4} is missing",
            f"python -m pip install --target {BCRYPT4} 'bcrypt>=4.1,<5', as .ci/run does",
        )
    script = (
        "import bcrypt; from tests.test_basic_auth import check_logins; "
        "print(check_logins(), bcrypt.__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(BCRYPT4), str(ROOT)])},
    )
    assert result.returncode == 0, result.stderr
    version, location = result.stdout.split()
    assert version.startswith("4."), version
    assert location.startswith(str(BCRYPT4)), location


def test_unknown_users_cost_a_bcrypt_of_the_same_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Otherwise an unknown user answers faster than a known one: users could be enumerated."""
    auth = BasicAuth({"prometheus": bcrypt.hashpw(b"x", bcrypt.gensalt(rounds=6))})
    checked: list[bytes] = []
    real = bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        checked.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", spy)
    header = "Basic " + base64.b64encode(b"mallory:x").decode()
    assert auth.allows(header) is False
    assert len(checked) == 1  # one bcrypt, as for a known user
    assert checked[0].startswith(b"$2b$06$")  # at the users' cost


@pytest.fixture
def users_yaml() -> str:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    return f"basic_auth_users:\n  prometheus: '{hashed}'\n"


async def raw_status(port: int, headers: bytes) -> str:
    """The status line answering a GET /metrics with ``headers`` as raw bytes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n"
        )
        return (await reader.readline()).decode().strip()
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.integration
async def test_odd_authorization_headers_get_401_not_500(
    tmp_path: Path, users_yaml: str, caplog: pytest.LogCaptureFixture
) -> None:
    web_config = write_web_config(tmp_path, users_yaml)
    caplog.set_level(logging.DEBUG)
    cases = {
        b"Basic " + base64.b64encode(b"prometheus:" + b"s" * 100): "401",  # bcrypt 5 raised
        b"Basic " + base64.b64encode(b"prometheus"): "401",
        b"Basic " + base64.b64encode(b"prometheus:\xff\xfe"): "401",
        b"Basic \xff\xfe\xfd": "401",  # raw bytes that are not ASCII (a ValueError, not binascii's)
        b"Basic": "401",
        b"Basic " + base64.b64encode(b"prometheus:s3cret"): "200",
    }
    async with serving(web_config) as port:
        for value, expected in cases.items():
            status = await raw_status(port, b"Authorization: " + value + b"\r\n")
            assert status.split(" ")[1] == expected, (value[:60], status)
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        assert errors == []
        # Over aiohttp's 8190-byte line limit: its parser answers 400 before any handler runs
        # (and logs the bad request itself).
        huge = await raw_status(port, b"Authorization: Basic " + b"QUFB" * 3000 + b"\r\n")
    assert huge.split(" ")[1] == "400", huge


@pytest.mark.integration
async def test_healthz_answers_bare_without_credentials(tmp_path: Path, users_yaml: str) -> None:
    web_config = write_web_config(tmp_path, users_yaml)
    right = {"Authorization": basic(b"prometheus", b"s3cret")}
    wrong = {"Authorization": basic(b"prometheus", b"wrong")}
    async with serving(web_config) as port:
        base = f"http://127.0.0.1:{port}"
        bare = await get(f"{base}/healthz")
        guessed = await get(f"{base}/healthz", headers=wrong)
        full = await get(f"{base}/healthz", headers=right)
        metrics = await get(f"{base}/metrics")
        index = await get(f"{base}/")
    assert (bare[0], json.loads(bare[2])) == (200, {"status": "ok"})
    assert (guessed[0], json.loads(guessed[2])) == (200, {"status": "ok"})
    assert full[0] == 200
    assert set(json.loads(full[2])) == {"status", "version", "exchanges_up"}
    assert (metrics[0], index[0]) == (401, 401)
