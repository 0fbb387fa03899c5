"""The benchmarks at smoke sizes: every one runs and the table prints (no thresholds: CI
machines are too noisy for timings; the README's figures come from ``python -m benchmarks``)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest

from benchmarks import capacity
from benchmarks.__main__ import BENCHMARKS, main
from exporter.metrics import FAMILIES

if TYPE_CHECKING:
    from pathlib import Path

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
        "capacity, 3 x 10",
        "capacity, 3 x 20",
    } <= what
    assert all(row.endswith("| n/a |") for row in rows)
    assert "nproc:" in out
    assert set(BENCHMARKS) == {
        "scrape",
        "ingest",
        "e2e",
        "cascade",
        "heatmap",
        "memory",
        "capacity",
    }
    # Timings carry no verdict at smoke sizes, completeness does: every entry of the cascade.
    for row in (r for r in rows if r.startswith("| cascade, ")):
        counted = re.findall(r"counted ([\d,]+) of ([\d,]+)", row)
        assert len(counted) == 2, row  # the burst and the big frame
        assert all(got == sent for got, sent in counted), row
        assert row.split(" | ")[3].endswith("lost counter 0"), row


def test_capacity_smoke_counts_every_family(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The capacity run at tiny sizes: every family populated, its groups adding up to the
    series the writer counted, the JSON and the machine written."""
    out_file = tmp_path / "capacity.json"
    assert capacity.main(["--smoke", "--json", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "| 3 x 10 | 30 |" in out
    assert "nproc:" in out
    figures = json.loads(out_file.read_text())
    for case in figures["cases"]:
        families = case["families"]
        assert set(families) == {f.exposed_name for f in FAMILIES}
        assert all(count > 0 for count in families.values()), families
        assert sum(case["groups"].values()) == sum(families.values()) == case["series"]
        assert 0 < case["heatmaps"] <= capacity.HEATMAP_COINS
        assert sum(case["heatmap_series_per_coin"].values()) == case["groups"]["heatmap"]
    model = figures["model"]
    assert model["series_per_market"] > 0
    assert model["series_per_heatmap_coin"] > 0
