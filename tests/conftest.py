"""Shared test helpers: an injectable clock, event factories, skip-but-fail-in-CI, fake
exchanges on loopback, and the `integration` marker's rule.

`integration` marks a test that opens sockets, starts processes or needs promtool/prometheus
(``pytest -m integration``); everything else must run without (``pytest -m "not integration"``),
and is held to it: an unmarked test that binds or connects a socket or starts a process fails.
A test that asks for a fixture serving on loopback (`INTEGRATION_FIXTURES`) is marked for you.
"""

from __future__ import annotations

import os
import socket
import subprocess
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, Final, NoReturn, Protocol

import pytest

from exporter.events import Liquidation, OpenInterest
from exporter.fakeexchange import FakeExchange
from exporter.venues import is_venue

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Generator, Iterator

pytest_plugins = ("pytester",)  # tests/test_integration_marker.py runs pytest on this file

T0 = 1_791_565_600.0

INTEGRATION_FIXTURES: Final = frozenset(
    {
        "fake_exchange",
        "aiohttp_client",  # pytest-aiohttp: a TestServer on loopback
        "aiohttp_server",
        "aiohttp_raw_server",
        "aiohttp_unused_port",
        "unused_tcp_port",  # pytest-asyncio
        "unused_tcp_port_factory",
        "unused_udp_port",
        "unused_udp_port_factory",
    }
)
"""Fixtures that only make sense with sockets: asking for one marks the test `integration`."""


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


class UnmarkedIntegrationError(RuntimeError):
    """A test without the `integration` marker opened a socket or started a process."""


_REFUSAL_REPORTED: Final = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Note when a refusal already failed setup or the test, so teardown does not repeat it."""
    if call.excinfo is not None and call.excinfo.errisinstance(UnmarkedIntegrationError):
        item.stash[_REFUSAL_REPORTED] = True
    return (yield)


@pytest.fixture(autouse=True)
def _socket_free_unless_integration(request: pytest.FixtureRequest) -> Iterator[None]:
    """Refuse socket bind/connect and subprocesses to tests not marked `integration`.

    The refusal raises at the call; if the code under test caught it (a retry loop would),
    the test fails at teardown instead. Not guarded: fixtures wider than a function
    (none in an unmarked module opens a socket) and ``os.fork``/``os.system``.
    """
    if request.node.get_closest_marker("integration") is not None:
        yield
        return
    refused: list[str] = []

    def refuse(what: str) -> Callable[..., NoReturn]:
        def refusal(*_args: object, **_kwargs: object) -> NoReturn:
            refused.append(what)
            raise UnmarkedIntegrationError(
                f"{request.node.nodeid} {what} but is not marked integration: add "
                "`pytestmark = pytest.mark.integration` (tests/conftest.py)"
            )

        return refusal

    with pytest.MonkeyPatch.context() as patch:
        for method in ("bind", "connect", "connect_ex"):
            patch.setattr(socket.socket, method, refuse(f"called socket.{method}()"))
        patch.setattr(subprocess.Popen, "__init__", refuse("started a subprocess"))
        yield
    if refused and not request.node.stash.get(_REFUSAL_REPORTED, False):
        pytest.fail(f"not marked integration, yet it {', '.join(sorted(set(refused)))}")


class FakeExchangeFactory(Protocol):
    async def __call__(self, venue: str, **kwargs: Any) -> FakeExchange: ...


@pytest.fixture
async def fake_exchange() -> AsyncIterator[FakeExchangeFactory]:
    """Start fake exchanges on 127.0.0.1; every one started is stopped at teardown.

    ::

        if TYPE_CHECKING:
            from tests.conftest import FakeExchangeFactory

        async def test_something(fake_exchange: FakeExchangeFactory) -> None:
            fake = await fake_exchange("bybit")  # started: fake.ccxt_config(), fake.rest_url
            other = await fake_exchange("okx", markets=[...])  # kwargs go to FakeExchange

    replaces ``fake = FakeExchange(venue); await fake.start(); try: ... finally: await
    fake.stop()``. ``venue`` is a plain str so parametrised tests need no ``type: ignore``;
    an unknown one raises ValueError. A test may stop one itself (``stop()`` is idempotent),
    e.g. to watch its clients fail. Asking for this fixture marks the test `integration`.
    """
    async with AsyncExitStack() as started:

        async def start(venue: str, **kwargs: Any) -> FakeExchange:
            if not is_venue(venue):
                raise ValueError(f"unknown venue {venue!r}")
            fake = FakeExchange(venue, **kwargs)
            await fake.start()
            started.push_async_callback(fake.stop)
            return fake

        yield start


class FakeClock:
    """A clock tests move by hand: windows and backoff without real waiting."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def unavailable(what: str, how: str) -> NoReturn:
    """Skip a test whose tool or side install is missing, except in CI (``CI`` set), which
    must provide it (``.ci/run``), so there it fails. ``what`` says what is missing, ``how``
    how to get it."""
    if os.environ.get("CI"):
        pytest.fail(f"{what}, and CI must run this ({how})")
    pytest.skip(f"{what} ({how}); CI runs this test")


def make_liquidation(clock: FakeClock, **changes: Any) -> Liquidation:
    fields: dict[str, Any] = {
        "exchange": "binance",
        "symbol": "BTC/USDT:USDT",
        "coin": "BTC",
        "side": "long",
        "price": 80_000.0,
        "quantity": 0.5,
        "notional_usd": 40_000.0,
        "timestamp_ms": int(clock.now * 1000),
        "received_ms": int(clock.now * 1000),
    }
    fields.update(changes)
    return Liquidation(**fields)


def make_open_interest(clock: FakeClock, **changes: Any) -> OpenInterest:
    fields: dict[str, Any] = {
        "exchange": "okx",
        "symbol": "ETH/USDT:USDT",
        "coin": "ETH",
        "coins": 1000.0,
        "usd": 2_900_000.0,
        "mark_price": 2900.0,
        "timestamp_ms": int(clock.now * 1000),
        "received_ms": int(clock.now * 1000),
    }
    fields.update(changes)
    return OpenInterest(**fields)
