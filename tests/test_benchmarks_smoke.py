"""The benchmarks at smoke sizes: every one runs and the table prints (no thresholds: CI
machines are too noisy for timings; the README's figures come from ``python -m benchmarks``)."""

from __future__ import annotations

import re

import pytest

from benchmarks.__main__ import BENCHMARKS, main

pytestmark = pytest.mark.integration


def test_smoke_run_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--smoke"]) == 0  # smoke results carry no verdict, so never a failure
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    header, rows = rows[0], rows[2:]
    assert header.split(" | ")[:2] == ["| what", "workload"]
    what = {row.split(" | ")[0].removeprefix("| ") for row in rows}
    assert {
        "scrape, 5k series",
        "scrape, 10k series",
        "scrape, event loop",
        "ingest",
        "ingest, end to end",
        "latency",
        "heatmap update, five-point mix",
        "heatmap update, leverage density (default)",
        "backfill",
        "memory",
        "cascade, binance",
        "cascade, bybit",
        "cascade, okx",
        "cascade, bybit (native)",
    } <= what
    assert all(row.endswith("| n/a |") for row in rows)
    assert "nproc:" in out
    assert set(BENCHMARKS) == {"scrape", "ingest", "e2e", "cascade", "heatmap", "memory"}
    # Timings carry no verdict at smoke sizes, completeness does: every entry of the cascade.
    for row in (r for r in rows if r.startswith("| cascade, ")):
        counted = re.findall(r"counted ([\d,]+) of ([\d,]+)", row)
        assert len(counted) == 2, row  # the burst and the big frame
        assert all(got == sent for got, sent in counted), row
        assert row.split(" | ")[3].endswith("lost counter 0"), row
