"""Every generated artifact, where it goes, and how ``python -m dashboards`` writes or checks it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from dashboards import (
    exporter_health,
    liquidation_heatmap,
    liquidations,
    market_context,
    open_interest,
    rules,
)
from dashboards.common import render

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from grafana_foundation_sdk.builders.dashboard import Dashboard

ROOT: Final = Path(__file__).resolve().parent.parent
DASHBOARD_DIR: Final = ROOT / "provisioning" / "grafana" / "dashboards"
RULES_DIR: Final = ROOT / "provisioning" / "prometheus" / "rules"

DASHBOARDS: Final[dict[str, Callable[[], Dashboard]]] = {
    liquidations.UID: liquidations.build,
    liquidation_heatmap.UID: liquidation_heatmap.build,
    open_interest.UID: open_interest.build,
    market_context.UID: market_context.build,
    exporter_health.UID: exporter_health.build,
}
"""Dashboard uid -> factory; each is written to ``<uid>.json``."""


def artifacts() -> dict[Path, str]:
    """Every generated file and its exact content."""
    files = {DASHBOARD_DIR / f"{uid}.json": render(build()) for uid, build in DASHBOARDS.items()}
    files[RULES_DIR / "cryptoliq.yml"] = rules.render(rules.rule_groups())
    return files


def stale() -> list[Path]:
    """Generated files whose committed content differs from what the code generates now."""
    return [
        path
        for path, text in artifacts().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dashboards",
        description="Write the Grafana dashboards and Prometheus rules generated from dashboards/.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 listing the files that are out of date",
    )
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale()
        for path in outdated:
            sys.stderr.write(f"out of date: {path.relative_to(ROOT)}\n")
        return 1 if outdated else 0
    for path, text in artifacts().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {path.relative_to(ROOT)}\n")
    return 0
