"""Soak: the real exporter in --demo at high speed for N minutes, scraped like Prometheus does.

Reports RSS, threads, open file descriptors, series, event-loop tasks and scrape
time at the start (after warm-up)
and at the end. `python -m benchmarks.soak --minutes 10` (the README figures); `--minutes 0.5`
for a quick look. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "Threads"}:
            fields[key] = int(value.split()[0])
    fields["fds"] = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    return fields


def asyncio_tasks(text: str) -> float:
    """The exporter's own count of event-loop tasks (``cryptoliq_asyncio_tasks``)."""
    for line in text.splitlines():
        if line.startswith("cryptoliq_asyncio_tasks "):
            return float(line.split()[1])
    return float("nan")


def series_count(text: str) -> float:
    """Samples in a /metrics body: stays flat when label cardinality is bounded."""
    return float(sum(1 for line in text.splitlines() if line and not line.startswith("#")))


async def wait_until_serving(
    session: aiohttp.ClientSession,
    url: str,
    timeout: float = 60.0,  # noqa: ASYNC109 - a deadline
) -> None:
    """Poll ``url`` until it answers (the exporter has started), at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            async with session.get(url) as response:
                await response.read()
        except aiohttp.ClientError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
        else:
            return


async def soak(minutes: float, speed: float, warmup: float) -> dict[str, tuple[float, float]]:
    port = free_port()
    with tempfile.TemporaryDirectory() as state:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "exporter",
            "--demo",
            "--speed",
            str(speed),
            "--port",
            str(port),
            "--listen-address",
            "127.0.0.1",
            "--state-dir",
            state,
            "--log-level",
            "warning",
        )
        url = f"http://127.0.0.1:{port}/metrics"
        samples: list[tuple[float, dict[str, int], float, float, float]] = []
        try:
            async with aiohttp.ClientSession() as session:
                await wait_until_serving(session, url)
                await asyncio.sleep(warmup)  # backfill, heatmap grids, bounded caches filling up
                end = time.monotonic() + minutes * 60
                while time.monotonic() < end:
                    started = time.perf_counter()
                    async with session.get(url) as response:
                        text = await response.text()
                    elapsed = time.perf_counter() - started
                    samples.append(
                        (
                            time.monotonic(),
                            proc_status(process.pid),
                            elapsed,
                            series_count(text),
                            asyncio_tasks(text),
                        )
                    )
                    await asyncio.sleep(5)
        finally:
            process.terminate()
            await process.wait()
    # Second tenth against the last: the first holds the bounded caches still filling up.
    tenth = max(1, len(samples) // 10)
    first, last = samples[tenth : 2 * tenth], samples[-tenth:]

    def avg(rows: list[tuple[float, dict[str, int], float, float, float]], pick: str) -> float:
        values: list[float] = {
            "rss_mb": [r[1]["VmRSS"] / 1024 for r in rows],
            "threads": [float(r[1]["Threads"]) for r in rows],
            "fds": [float(r[1]["fds"]) for r in rows],
            "scrape_ms": [r[2] * 1000 for r in rows],
            "series": [r[3] for r in rows],
            "tasks": [r[4] for r in rows],
        }[pick]
        return statistics.median(values)

    return {
        k: (avg(first, k), avg(last, k))
        for k in ("rss_mb", "threads", "fds", "scrape_ms", "series", "tasks")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--speed", type=float, default=600.0)
    parser.add_argument(
        "--warmup",
        type=float,
        default=60.0,
        help="seconds before measuring: bounded caches (ccxt's, de-duplication) fill up first",
    )
    args = parser.parse_args()
    results = asyncio.run(soak(args.minutes, args.speed, args.warmup))
    print(f"soak: {args.minutes:g} min of --demo at {args.speed:g}x after {args.warmup:g} s")
    print("(medians of the second and the last tenth of the run)")
    print(f"{'what':<10} {'start':>10} {'end':>10} {'change':>8}")
    for name, (start, end) in results.items():
        change = (end - start) / start * 100 if start else float("nan")
        print(f"{name:<10} {start:>10.1f} {end:>10.1f} {change:>7.1f}%")


if __name__ == "__main__":
    main()
