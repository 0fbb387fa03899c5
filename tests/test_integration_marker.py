"""The `integration` marker's rule and the `fake_exchange` fixture (tests/conftest.py), checked
by running pytest on small test files with a copy of the conftest."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()
PYPROJECT = """
[tool.pytest.ini_options]
addopts = "--strict-markers -p no:cacheprovider"
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
markers = ["integration: opens sockets or starts processes"]
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyprojecttoml(PYPROJECT)
    return pytester


def test_unmarked_tests_that_open_sockets_or_start_processes_fail(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_unmarked="""
        import asyncio, contextlib, socket, subprocess, sys

        def test_bind():
            socket.socket().bind(("127.0.0.1", 0))

        def test_connect_error_swallowed():
            with contextlib.suppress(Exception):  # a retry loop would catch it too
                socket.create_connection(("127.0.0.1", 9))

        async def test_asyncio_server():
            await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)

        def test_subprocess():
            subprocess.run([sys.executable, "-c", "pass"], check=True)

        def test_socket_free():
            assert sum(range(4)) == 6
        """
    )
    reports = suite.inline_run().getreports("pytest_runtest_logreport")
    failed = {(r.nodeid.split("::")[-1], r.when): str(r.longrepr) for r in reports if r.failed}
    assert set(failed) == {
        ("test_bind", "call"),
        ("test_connect_error_swallowed", "teardown"),  # the code swallowed the refusal
        ("test_asyncio_server", "call"),
        ("test_subprocess", "call"),
    }
    assert all("not marked integration" in message for message in failed.values())


@pytest.mark.integration
def test_marked_tests_may_and_fake_exchange_marks_and_stops(suite: pytest.Pytester) -> None:
    urls = suite.path / "urls.txt"
    suite.makepyfile(
        test_marked=f"""
        import pathlib, socket
        import pytest

        @pytest.mark.integration
        def test_bind():
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))

        async def test_fake_exchanges(fake_exchange):
            fakes = [await fake_exchange("bybit"), await fake_exchange("okx", log_limit=10)]
            assert [f.venue for f in fakes] == ["bybit", "okx"]
            await fakes[0].stop()  # stopping one early is fine
            pathlib.Path({str(urls)!r}).write_text(" ".join(f.rest_url for f in fakes))

        async def test_unknown_venue(fake_exchange):
            with pytest.raises(ValueError, match="mexc"):
                await fake_exchange("mexc")
        """
    )
    suite.runpytest("-m", "not integration").assert_outcomes(deselected=3)
    suite.runpytest("-m", "integration").assert_outcomes(passed=3)
    for url in urls.read_text().split():
        host, port = url.removeprefix("http://").split(":")
        with pytest.raises(ConnectionRefusedError), socket.create_connection((host, int(port))):
            pass
