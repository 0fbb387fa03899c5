"""``python -m benchmarks [--smoke] [--runs N] [--memory-seconds S] [NAME ...]``"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from typing import TYPE_CHECKING

from benchmarks import capacity, cascade, e2e, heatmap, ingest, memory, scrape
from benchmarks.common import Result, Size, machine, table

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

BENCHMARKS: dict[str, Callable[[Size], list[Result]]] = {
    "scrape": scrape.run,
    "ingest": ingest.run,
    "e2e": e2e.run,
    "cascade": cascade.run,
    "heatmap": heatmap.run,
    "memory": memory.run,
    "capacity": capacity.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)"
    )
    parser.add_argument("--smoke", action="store_true", help="small sizes, seconds in all")
    parser.add_argument("--runs", type=int, help="runs per median (default 7, smoke 1)")
    parser.add_argument(
        "--memory-seconds",
        type=float,
        help="wall time of the accelerated memory run (default 600, smoke 2)",
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    size = Size(
        smoke=args.smoke,
        runs=args.runs or (1 if args.smoke else 7),
        memory_seconds=args.memory_seconds or (2.0 if args.smoke else 600.0),
    )
    results: list[Result] = []
    started = time.perf_counter()
    for name in args.names or BENCHMARKS:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results.extend(BENCHMARKS[name](size))
    if size.smoke:  # small sizes: the targets do not apply
        results = [dataclasses.replace(r, passed=None) for r in results]
    print(table(results))
    print()
    for note in (n for r in results for n in r.notes):
        print(f"- {note}")
    print(f"\n{time.perf_counter() - started:.0f} s; runs per median: {size.runs}")
    print(machine())
    return 1 if any(r.passed is False for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
