"""Scrape load: N concurrent scrapers against the real exporter (--demo) on loopback.

`python -m benchmarks.scrape_load --clients 50 --seconds 30` (the README figures). Bounded in
count and time; every request goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

import aiohttp

from benchmarks.soak import free_port, wait_until_serving


async def scraper(
    session: aiohttp.ClientSession, url: str, end: float, latencies: list[float], errors: list[str]
) -> None:
    while time.monotonic() < end:
        started = time.perf_counter()
        try:
            async with session.get(url) as response:
                await response.read()
                if response.status != 200:
                    errors.append(str(response.status))
        except aiohttp.ClientError as exc:
            errors.append(type(exc).__name__)
        latencies.append(time.perf_counter() - started)


async def load(clients: int, seconds: float) -> tuple[list[float], list[str]]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exporter",
        "--demo",
        "--port",
        str(port),
        "--listen-address",
        "127.0.0.1",
        "--log-level",
        "warning",
    )
    url = f"http://127.0.0.1:{port}/metrics"
    latencies: list[float] = []
    errors: list[str] = []
    try:
        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=connector) as session:
            await wait_until_serving(session, url)
            await asyncio.sleep(10)  # let the demo fill the heatmaps
            end = time.monotonic() + seconds
            await asyncio.gather(
                *(scraper(session, url, end, latencies, errors) for _ in range(clients))
            )
    finally:
        process.terminate()
        await process.wait()
    return latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    latencies, errors = asyncio.run(load(args.clients, args.seconds))
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(
        f"scrape load: {args.clients} clients for {args.seconds:g} s: {len(latencies)} scrapes, "
        f"{len(errors)} errors, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"{len(latencies) / args.seconds:.0f} scrapes/s"
    )


if __name__ == "__main__":
    main()
