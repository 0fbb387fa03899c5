"""Soak: the real exporter in --demo at high speed for N minutes, scraped like Prometheus does.

Reports RSS, threads, open file descriptors, tasks and scrape time at the start (after warm-up)
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
from prometheus_client.parser import text_string_to_metric_families


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


def gauge(text: str, name: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return float("nan")


async def soak(minutes: float, speed: float) -> dict[str, tuple[float, float]]:
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
        samples: list[tuple[float, dict[str, int], float, float]] = []
        try:
            async with aiohttp.ClientSession() as session:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        async with session.get(url) as response:
                            await response.read()
                        break
                    except aiohttp.ClientError:
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.2)
                await asyncio.sleep(30)  # warm-up: backfill, first heatmap grids, caches
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
                            gauge(text, "cryptoliq_asyncio_tasks"),
                        )
                    )
                    await asyncio.sleep(5)
        finally:
            process.terminate()
            await process.wait()
    first, last = samples[: max(1, len(samples) // 10)], samples[-max(1, len(samples) // 10) :]

    def avg(rows: list[tuple[float, dict[str, int], float, float]], pick: str) -> float:
        values = {
            "rss_mb": [r[1]["VmRSS"] / 1024 for r in rows],
            "threads": [r[1]["Threads"] for r in rows],
            "fds": [r[1]["fds"] for r in rows],
            "scrape_ms": [r[2] * 1000 for r in rows],
            "tasks": [r[3] for r in rows],
        }[pick]
        return statistics.median(values)

    return {
        k: (avg(first, k), avg(last, k)) for k in ("rss_mb", "threads", "fds", "scrape_ms", "tasks")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--speed", type=float, default=600.0)
    args = parser.parse_args()
    results = asyncio.run(soak(args.minutes, args.speed))
    print(f"soak: {args.minutes:g} min of --demo at {args.speed:g}x")
    print("(medians of the first and the last tenth of the run)")
    print(f"{'what':<10} {'start':>10} {'end':>10} {'change':>8}")
    for name, (start, end) in results.items():
        change = (end - start) / start * 100 if start else float("nan")
        print(f"{name:<10} {start:>10.1f} {end:>10.1f} {change:>7.1f}%")


if __name__ == "__main__":
    main()
