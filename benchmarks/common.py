"""What every benchmark shares: results, medians of interleaved runs, the table, the machine."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


@dataclass(frozen=True, slots=True)
class Size:
    """How big and how long: ``full`` for the README figures, ``smoke`` for CI (seconds)."""

    smoke: bool
    runs: int  # repetitions a median is taken over
    memory_seconds: float  # wall time of the accelerated memory run


@dataclass(frozen=True, slots=True)
class Result:
    """One row of the table. ``passed`` is None where there is nothing to judge."""

    what: str
    workload: str
    baseline: str
    measured: str
    ratio: str
    target: str
    passed: bool | None
    notes: tuple[str, ...] = field(default=())


def median_ratio(
    baseline: Callable[[], float], measured: Callable[[], float], runs: int
) -> tuple[float, float, float]:
    """Median baseline seconds, median measured seconds and the median of the per-run ratios,
    with the two run alternately so that both see the same machine noise."""
    base_times: list[float] = []
    times: list[float] = []
    ratios: list[float] = []
    for _ in range(runs):
        b = baseline()
        m = measured()
        base_times.append(b)
        times.append(m)
        ratios.append(b / m if m > 0 else float("inf"))
    return statistics.median(base_times), statistics.median(times), statistics.median(ratios)


def timed(action: Callable[[], object]) -> float:
    """Seconds ``action`` took."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def timed_without_gc(action: Callable[[], object]) -> float:
    """Seconds ``action`` took with the garbage collector paused (for comparisons where one
    side's objects would make collections of the whole heap its main cost)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return timed(action)
    finally:
        if enabled:
            gc.enable()


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms" if seconds >= 0.01 else f"{seconds * 1e3:,.2f} ms"


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p99 of 200 samples is the 198th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process (Linux /proc)."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc status")


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table of ``header`` and ``rows`` (pastes into the docs as is)."""
    lines = [header, tuple("---" for _ in header), *rows]
    return "\n".join("| " + " | ".join(row) + " |" for row in lines)


def table(results: Sequence[Result]) -> str:
    """The results as the README's table."""
    header = ("what", "workload", "baseline (same run)", "measured", "ratio", "target", "pass")
    rows = []
    for r in results:
        verdict = "n/a" if r.passed is None else ("yes" if r.passed else "**NO**")
        rows.append((r.what, r.workload, r.baseline, r.measured, r.ratio, r.target, verdict))
    return markdown(header, rows)


def machine() -> str:
    """The machine the figures come from: CPUs, memory, Python, load."""

    def command(*args: str) -> str:
        try:
            done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=5)  # noqa: S603 - fixed commands
        except OSError:
            return ""
        return done.stdout.strip()

    lscpu = command("lscpu")
    wanted = ("Architecture", "CPU(s)", "Model name", "Thread(s) per core", "Hypervisor vendor")
    cpu = [line for line in lscpu.splitlines() if line.split(":")[0].strip() in wanted]
    memory = command("free", "-h").splitlines()
    load = os.getloadavg()
    return "\n".join(
        [
            f"nproc: {os.cpu_count()}",
            *cpu,
            *(memory[:2] if memory else []),
            f"python: {platform.python_version()} ({platform.python_implementation()})",
            f"load average at the end (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        ]
    )
