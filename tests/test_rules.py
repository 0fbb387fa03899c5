"""Prometheus config and rules: promtool checks and unit tests, and what every alert must carry.

The promtool unit tests live in ``tests/promtool/`` and are hand-written: they pin the
thresholds of ``dashboards/config.py`` as literal input series and expected annotations, so a
threshold change shows up as a failing case to update rather than silently following the code.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from typing import Any

import pytest

from dashboards.config import JOB, RUNBOOK_URL, THRESHOLDS
from exporter.health import LostReason
from tests.conftest import unavailable
from tests.monitoring_support import (
    PROMETHEUS_CONFIG,
    PROMTOOL_TESTS,
    PROVISIONING,
    ROOT,
    RULE_FILES,
    alerting_rules,
    load_yaml,
    recording_rules,
    require_tool,
)

ALERTMANAGER_CONFIG = PROVISIONING / "alertmanager" / "alertmanager.yml"
RUNBOOKS = ROOT / "docs" / "monitoring-stack.md"
RECORD_NAME = re.compile(r"^[a-z]+(?:_[a-z]+)*:cryptoliq_[a-z0-9_]+:[a-z0-9_]+$")
SEVERITIES = {"critical", "warning", "info"}
ANNOTATIONS = {"summary", "description", "runbook_url"}
ALERT_NAME_MATCHER = re.compile(r'^alertname\s*(=~|=)\s*"([^"]+)"$')
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.integration
def test_promtool_check_config() -> None:
    result = run(require_tool("promtool"), "check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_promtool_check_rules() -> None:
    assert RULE_FILES, "no rule files under provisioning/prometheus/rules"
    result = run(require_tool("promtool"), "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_promtool_unit_tests_pass() -> None:
    assert PROMTOOL_TESTS, "no promtool tests under tests/promtool"
    result = run(require_tool("promtool"), "test", "rules", *map(str, PROMTOOL_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_case_that_fires_and_one_that_does_not() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in PROMTOOL_TESTS:
        for group in load_yaml(path)["tests"]:
            for case in group.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    alerts = {rule["alert"] for rule in alerting_rules()}
    assert alerts - firing == set(), "alerts without a promtool case that fires"
    assert alerts - quiet == set(), "alerts without a promtool case that stays quiet"
    assert (firing | quiet) - alerts == set(), "promtool cases for alerts that do not exist"


def test_firing_cases_assert_labels_and_annotations() -> None:
    for path in PROMTOOL_TESTS:
        for group in load_yaml(path)["tests"]:
            for case in group.get("alert_rule_test", []):
                for expected in case.get("exp_alerts") or []:
                    assert "severity" in expected["exp_labels"], (group["name"], case)
                    assert set(expected["exp_annotations"]) == ANNOTATIONS, (group["name"], case)


@pytest.mark.parametrize("rule", alerting_rules(), ids=lambda rule: str(rule["alert"]))
def test_alert_has_for_severity_summary_description_and_runbook(rule: dict[str, Any]) -> None:
    assert re.fullmatch(r"\d+[smh]", rule["for"])
    assert rule["labels"]["severity"] in SEVERITIES
    assert set(rule["annotations"]) == ANNOTATIONS
    assert rule["annotations"]["summary"].strip()
    assert rule["annotations"]["description"].strip()


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file: the heading's text in lower
    case, punctuation dropped (backticks too), spaces turned into dashes, ``-1``, ``-2`` on
    repeats. Lines in fenced code blocks are no headings."""
    anchors: set[str] = set()
    seen: Counter[str] = Counter()
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        heading = None if fenced else HEADING.match(line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
            anchors.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
            seen[slug] += 1
    return anchors


def test_github_anchors_follow_githubs_rules() -> None:
    text = (
        "# The stack\n"
        "```sh\n# not a heading\n```\n"
        "## `CryptoliqFeedStale`\n"
        "### Run it, now!\n"
        "## Run it, now\n"
    )
    assert github_anchors(text) == {"the-stack", "cryptoliqfeedstale", "run-it-now", "run-it-now-1"}


@pytest.mark.parametrize("rule", alerting_rules(), ids=lambda rule: str(rule["alert"]))
def test_alert_runbook_is_its_own_section_of_the_monitoring_docs(rule: dict[str, Any]) -> None:
    """``runbook_url`` is ``RUNBOOK_URL#<anchor>`` and the anchor is a heading of
    docs/monitoring-stack.md named after the alert, so the link lands on its own runbook."""
    assert RUNBOOK_URL.endswith("/" + RUNBOOKS.relative_to(ROOT).as_posix())
    url, _, anchor = rule["annotations"]["runbook_url"].partition("#")
    assert url == RUNBOOK_URL
    assert anchor == rule["alert"].lower()
    assert anchor in github_anchors(RUNBOOKS.read_text(encoding="utf-8"))


def test_recording_rules_are_named_level_metric_operations() -> None:
    names = recording_rules()
    assert names
    assert [name for name in names if not RECORD_NAME.match(name)] == []
    assert len(names) == len(set(names))


def test_exporter_down_watches_the_configured_job() -> None:
    """The alert and prometheus.yml must agree on the job, or the alert watches nothing."""
    jobs = [job["job_name"] for job in load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]]
    assert JOB in jobs
    (down,) = (rule for rule in alerting_rules() if rule["alert"] == "CryptoliqExporterDown")
    assert f'up{{job="{JOB}"}}' in down["expr"]


def test_rules_carry_the_configured_thresholds() -> None:
    """Spot-check that generation put config values into the expressions."""
    exprs = {rule["alert"]: rule["expr"] for rule in alerting_rules()}
    assert f">= {THRESHOLDS.cascade_ratio:g}\n" in exprs["LiquidationCascade"]
    assert f"> {THRESHOLDS.stale_liquidations_seconds}\n" in exprs["CryptoliqFeedStale"]
    assert f"<= {THRESHOLDS.cluster_distance:g})" in exprs["LiquidationClusterNearPrice"]
    assert f"[{THRESHOLDS.lost_window}]) > 0" in exprs["CryptoliqLiquidationsLost"]
    assert f"]) >= {THRESHOLDS.restarts_min}" in exprs["CryptoliqTaskCrashLooping"]
    assert f">= {THRESHOLDS.invalid_share:g}\n" in exprs["CryptoliqInvalidMessages"]
    assert f"[{THRESHOLDS.backfill_window}]) > 0\n" in exprs["CryptoliqBackfillFailed"]
    funding = THRESHOLDS.funding_annualised
    assert f">= {funding:g}\n" in exprs["LongSqueezeSetup"]
    assert f"<= {-funding:g}\n" in exprs["ShortSqueezeSetup"]
    for setup in ("LongSqueezeSetup", "ShortSqueezeSetup"):
        assert f"offset {THRESHOLDS.oi_rise_window} >= {1 + THRESHOLDS.oi_rise:g}" in exprs[setup]


def test_lost_liquidations_alert_explains_every_reason_the_exporter_counts() -> None:
    """A new ``reason`` of ``cryptoliq_liquidations_lost_total`` needs its own advice."""
    (lost,) = (rule for rule in alerting_rules() if rule["alert"] == "CryptoliqLiquidationsLost")
    explained = set(re.findall(r'eq \$labels\.reason "(\w+)"', lost["annotations"]["description"]))
    assert explained == {reason.value for reason in LostReason}


def referenced_alert_names(matchers: list[str]) -> set[str]:
    names: set[str] = set()
    for matcher in matchers:
        found = ALERT_NAME_MATCHER.match(matcher.strip())
        if found:
            names.update(found.group(2).split("|"))
    return names


def test_alertmanager_routes_and_inhibitions_name_real_receivers_and_alerts() -> None:
    config = load_yaml(ALERTMANAGER_CONFIG)
    receivers = {receiver["name"] for receiver in config["receivers"]}
    routes = [config["route"], *config["route"].get("routes", [])]
    assert {route["receiver"] for route in routes} <= receivers
    alerts = {rule["alert"] for rule in alerting_rules()}
    named = referenced_alert_names([m for route in routes for m in route.get("matchers", [])])
    for inhibit in config.get("inhibit_rules", []):
        named |= referenced_alert_names(inhibit["source_matchers"] + inhibit["target_matchers"])
    assert named, "expected alert names in routes or inhibit rules"
    assert named - alerts == set(), "Alertmanager refers to alerts the rules do not define"


def require_amtool() -> str:
    """amtool is in Debian's ``prometheus-alertmanager``, not in ``prometheus``: CI installs both
    (``.ci/run``); elsewhere the test skips without it, under ``CI`` it fails."""
    path = shutil.which("amtool")
    if path is None:
        unavailable("amtool is not installed", "apt-get install prometheus-alertmanager")
    return path


@pytest.mark.integration
def test_alertmanager_config_is_valid() -> None:
    amtool = require_amtool()
    result = run(amtool, "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
@pytest.mark.parametrize(
    ("alertname", "receiver"),
    [
        ("LongSqueeze", "market"),
        ("LongSqueezeSetup", "market"),
        ("ShortSqueezeSetup", "market"),
        ("CryptoliqTaskCrashLooping", "default"),
    ],
)
def test_alertmanager_routes_alerts_to_their_receiver(alertname: str, receiver: str) -> None:
    routed = run(
        require_amtool(),
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        f"alertname={alertname}",
        "coin=BTC",
    )
    assert routed.stdout.strip() == receiver, routed.stdout + routed.stderr
