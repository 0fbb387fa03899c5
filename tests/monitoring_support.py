"""Helpers for the monitoring-stack tests: repository paths, tool lookup, dashboard walking."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from tests.conftest import unavailable

ROOT: Final = Path(__file__).resolve().parent.parent
PROVISIONING: Final = ROOT / "provisioning"
DASHBOARD_DIR: Final = PROVISIONING / "grafana" / "dashboards"
PROMETHEUS_DIR: Final = PROVISIONING / "prometheus"
PROMETHEUS_CONFIG: Final = PROMETHEUS_DIR / "prometheus.yml"
RULE_FILES: Final = tuple(sorted((PROMETHEUS_DIR / "rules").glob("*.yml")))
PROMTOOL_TESTS: Final = tuple(sorted((ROOT / "tests" / "promtool").glob("*.yml")))
DASHBOARD_FILES: Final = tuple(sorted(DASHBOARD_DIR.glob("*.json")))
COMPOSE_FILE: Final = ROOT / "docker-compose.yml"
VMAGENT_CONFIG: Final = PROVISIONING / "vmagent" / "vmagent.yml"
"""The scale profile's scrape configuration (vmagent, remote-writing to VictoriaMetrics)."""

LABEL_VALUES: Final = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


def require_tool(name: str) -> str:
    """Path of a Prometheus tool; skips without it, except in CI, which must install it.

    CI installs Debian's ``prometheus`` package (``.ci/run``); a developer without it still runs
    everything else.
    """
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed", "apt-get install prometheus")
    return path


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def prometheus_features() -> list[str]:
    """The ``--enable-feature`` flags the compose stack starts Prometheus with, so that a native
    Prometheus runs with the same features (exemplar storage: the live liquidations panel)."""
    command = load_yaml(COMPOSE_FILE)["services"]["prometheus"]["command"]
    return [flag for flag in command if flag.startswith("--enable-feature=")]


def load_dashboard(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows."""
    found: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


@dataclass(frozen=True)
class Expression:
    """One PromQL expression of a dashboard, named so that a failure says where it is."""

    name: str
    expr: str


def dashboard_expressions(dashboard: dict[str, Any]) -> list[Expression]:
    """Every panel target's ``expr`` and every query variable's ``label_values(...)``."""
    found = [
        Expression(f"{dashboard['uid']} / {panel['title']} / {target['refId']}", target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]
    found.extend(
        Expression(f"{dashboard['uid']} / ${variable['name']}", variable["query"])
        for variable in dashboard["templating"]["list"]
        if variable["type"] == "query"
    )
    return found


def recording_rules() -> list[str]:
    return [
        rule["record"]
        for path in RULE_FILES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "record" in rule
    ]


def alerting_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
