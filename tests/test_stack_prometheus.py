"""The exporter in ``--demo`` mode and a real Prometheus with the project's own configuration.

Docker is not available on CI machines, so this runs the same parts natively: the exporter
process, the ``prometheus`` binary (Debian's package in CI) with a temporary copy of
``provisioning/prometheus/prometheus.yml`` whose target points at the test's port, scrape and
evaluation every second, the real rule files, and the feature flags of the compose stack's
Prometheus (exemplar storage). After a few scrapes every PromQL expression of every dashboard panel
and variable, and every recording rule, must return data, and every rule must be healthy.
Failures name each expression (dashboard / panel / refId). The liquidation orders the exporter
attaches to its size histogram as exemplars must reach Prometheus intact, and a scrape in the
Prometheus text format must leave them out.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from dashboards.config import JOB
from exporter.config import DEFAULT_PORT
from exporter.core import DEFAULT_EXEMPLAR_MIN_USD
from exporter.histogram import SIZE_BUCKETS_USD
from tests.monitoring_support import (
    DASHBOARD_DIR,
    DASHBOARD_FILES,
    LABEL_VALUES,
    PROMETHEUS_CONFIG,
    Expression,
    alerting_rules,
    dashboard_expressions,
    load_dashboard,
    load_yaml,
    panels,
    prometheus_features,
    recording_rules,
    require_tool,
)
from tests.test_lifecycle import free_port, get

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

STARTUP_SECONDS: Final = 30.0
"""Prometheus ready, the exporter scraped a few times."""
DATA_SECONDS: Final = 25.0
"""After startup: time for every expression to return data (rates need two samples, the
exporter's first liquidations and polls take a few seconds)."""

# Grafana's built-in variables, as a dashboard would expand them for a short time range at the
# test's 1 s scrape interval.
BUILTINS: Final = (("$__rate_interval", "5s"), ("$__interval", "5s"), ("$__range", "1m"))


def defaults(dashboard: dict[str, Any]) -> dict[str, str]:
    """``$name`` -> what Grafana puts in a query for the variable's default selection.

    A multi-value variable defaults to All, which is its ``allValue`` (``.*``); a single-value
    one to its ``current`` value (the heatmap's coin, BTC).
    """
    values: dict[str, str] = {}
    for variable in dashboard["templating"]["list"]:
        current = variable.get("current", {}).get("value")
        if variable.get("includeAll") and current == "$__all":
            values[variable["name"]] = variable["allValue"]
        elif isinstance(current, str):
            values[variable["name"]] = current
    return values


def substitute(expr: str, variables: dict[str, str]) -> str:
    for builtin, value in BUILTINS:
        expr = expr.replace(builtin, value)
    for name, value in variables.items():
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    return expr


def as_query(expr: str, variables: dict[str, str]) -> tuple[str, str | None]:
    """PromQL for a dashboard expression; for ``label_values(sel, label)`` the label to expect."""
    variable = LABEL_VALUES.match(expr)
    if variable is None:
        return substitute(expr, variables), None
    label = variable.group("label")
    return f"group by ({label}) ({substitute(variable.group('selector'), variables)})", label


@dataclass
class Stack:
    prometheus_url: str
    exporter_url: str
    started: float
    """Unix time at which the exporter started: exemplar queries cover the test from there."""
    data_deadline: float

    def api(self, path: str, params: dict[str, str] | None = None) -> Any:
        data = urllib.parse.urlencode(params).encode() if params else None
        request = urllib.request.Request(self.prometheus_url + path, data=data)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
                return json.load(response)
        except urllib.error.HTTPError as error:  # a bad query answers 400 with a JSON error
            return json.load(error)

    def problem(self, expr: str, variables: dict[str, str] | None = None) -> str | None:
        """Why ``expr`` does not (yet) return data, or None when it does."""
        promql, label = as_query(expr, variables or {})
        answer = self.api("/api/v1/query", {"query": promql})
        if answer.get("status") != "success":
            return f"error: {answer.get('error')} in {promql}"
        result = answer["data"]["result"]
        if not result:
            return f"no data: {promql}"
        if label is not None and not any(series["metric"].get(label) for series in result):
            return f"no {label} values: {promql}"
        return None


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def wait_for(condition: Callable[[], bool], deadline: float, what: str, logs: list[Path]) -> None:
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in logs)
    pytest.fail(f"timed out waiting for {what}\n{tails}")


def local_config(exporter_port: int, tmp_path: Path) -> Path:
    """The project's prometheus.yml with the target, intervals and rule paths made local."""
    config = load_yaml(PROMETHEUS_CONFIG)
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    (job,) = (job for job in config["scrape_configs"] if job["job_name"] == JOB)
    (static,) = job["static_configs"]
    assert [target.rsplit(":", 1)[1] for target in static["targets"]] == [str(DEFAULT_PORT)]
    static["targets"] = [f"127.0.0.1:{exporter_port}"]
    config["rule_files"] = [str(PROMETHEUS_CONFIG.parent / path) for path in config["rule_files"]]
    config.pop("alerting")  # no Alertmanager here; the rules page still shows every alert
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus = require_tool("prometheus")
    tmp_path = tmp_path_factory.mktemp("stack")
    exporter_port, prometheus_port = free_port(), free_port()
    exporter_log, prometheus_log = tmp_path / "exporter.log", tmp_path / "prometheus.log"
    logs = [exporter_log, prometheus_log]
    started, started_at = time.monotonic(), time.time()
    processes = [
        start(
            [
                sys.executable,
                "-m",
                "exporter",
                "--demo",
                "--port",
                str(exporter_port),
                "--listen-address",
                "127.0.0.1",
            ],
            exporter_log,
        ),
        start(
            [
                prometheus,
                f"--config.file={local_config(exporter_port, tmp_path)}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                *prometheus_features(),
            ],
            prometheus_log,
        ),
    ]
    try:
        url = f"http://127.0.0.1:{prometheus_port}"
        deadline = started + STARTUP_SECONDS
        wait_for(lambda: get(url + "/-/ready") is not None, deadline, "Prometheus ready", logs)
        stack = Stack(
            url, f"http://127.0.0.1:{exporter_port}", started=started_at, data_deadline=0.0
        )
        three_scrapes = f'count_over_time(up{{job="{JOB}"}}[1m]) >= 3 and up{{job="{JOB}"}} == 1'
        wait_for(lambda: stack.problem(three_scrapes) is None, deadline, "3 scrapes", logs)
        stack.data_deadline = time.monotonic() + DATA_SECONDS
        yield stack
    finally:
        for process in processes:
            stop(process)


def assert_all_return_data(
    stack: Stack, expressions: list[Expression], variables: dict[str, str] | None = None
) -> None:
    """Poll until every expression returns data or the shared deadline passes; then name each
    expression that still does not."""
    pending = {expression.name: expression.expr for expression in expressions}
    problems: dict[str, str] = {}
    while True:
        problems = {
            name: problem
            for name, expr in pending.items()
            if (problem := stack.problem(expr, variables)) is not None
        }
        pending = {name: pending[name] for name in problems}
        if not pending or time.monotonic() > stack.data_deadline:
            break
        time.sleep(0.5)
    assert not problems, f"{len(problems)} of {len(expressions)} expressions return no data:\n" + (
        "\n".join(f"  {name}: {problem}" for name, problem in sorted(problems.items()))
    )


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.stem)
def test_every_dashboard_expression_returns_data(stack: Stack, path: Path) -> None:
    dashboard = load_dashboard(path)
    expressions = dashboard_expressions(dashboard)
    assert expressions
    assert_all_return_data(stack, expressions, defaults(dashboard))


def price_table_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Panels that merge instant table queries into one row per ``price`` label value and sort
    the rows by it as a number (the liquidation map and its cumulative curves)."""
    return [
        panel
        for panel in panels(dashboard)
        if any(
            step["id"] == "convertFieldType"
            and any(c["targetField"] == "price" for c in step["options"]["conversions"])
            for step in panel.get("transformations", [])
        )
    ]


def bins_problem(stack: Stack, panel: dict[str, Any], variables: dict[str, str]) -> str | None:
    """Why ``panel``'s queries would not make one row per bin on an even price axis, or None.

    Grafana sends a panel's queries in one request, evaluated at one time: so are these. Each
    must return the same ``price`` values (else the merge leaves rows with holes), each a number
    (else the conversion leaves the row unsortable), and the bins must be contiguous and equally
    wide, because the bar chart draws one evenly spaced slot per row.
    """
    at = f"{time.time() - 1:.3f}"
    prices: dict[str, frozenset[str]] = {}
    for target in panel["targets"]:
        promql = substitute(target["expr"], variables)
        answer = stack.api("/api/v1/query", {"query": promql, "time": at})
        if answer.get("status") != "success":
            return f"error: {answer.get('error')} in {promql}"
        prices[target["refId"]] = frozenset(
            s["metric"].get("price", "") for s in answer["data"]["result"]
        )
    first, *others = prices.values()
    if len(first) < 2:
        return f"fewer than two bins: {prices}"
    if any(other != first for other in others):
        return f"queries return different bins: { {ref: len(p) for ref, p in prices.items()} }"
    try:
        edges = sorted(float(price) for price in first)
    except ValueError:
        return f"a price that is not a number: {sorted(first)}"
    steps = [high - low for low, high in itertools.pairwise(edges)]
    if not all(math.isclose(step, steps[0], rel_tol=1e-6) for step in steps):
        return f"bins not contiguous and equally wide: steps {sorted(set(steps))}"
    return None


def test_map_panels_get_the_same_contiguous_bins_from_every_query(stack: Stack) -> None:
    dashboard = load_dashboard(DASHBOARD_DIR / "cryptoliq-liquidation-heatmap.json")
    variables = defaults(dashboard)
    tables = price_table_panels(dashboard)
    assert len(tables) == 2  # the liquidation map and its cumulative curves
    problems: dict[str, str] = {}
    while True:
        problems = {
            panel["title"]: problem
            for panel in tables
            if (problem := bins_problem(stack, panel, variables)) is not None
        }
        if not problems or time.monotonic() > stack.data_deadline:
            break
        time.sleep(0.5)
    assert problems == {}


def test_every_recording_rule_returns_data(stack: Stack) -> None:
    records = recording_rules()
    assert records
    assert_all_return_data(stack, [Expression(f"record {name}", name) for name in records])


def test_every_rule_is_loaded_and_healthy(stack: Stack) -> None:
    expected = len(recording_rules()) + len(alerting_rules())
    unhealthy: list[str] = []
    rules: list[dict[str, Any]] = []
    while time.monotonic() < stack.data_deadline:
        rules = [
            rule
            for group in stack.api("/api/v1/rules")["data"]["groups"]
            for rule in group["rules"]
        ]
        unhealthy = [
            f"{rule['name']}: {rule['health']} {rule.get('lastError', '')}"
            for rule in rules
            if rule["health"] != "ok"
        ]
        if len(rules) == expected and not unhealthy:
            break
        time.sleep(0.5)
    assert len(rules) == expected, [rule["name"] for rule in rules]
    assert unhealthy == []


ORDER_LABELS: Final = {"exchange", "price", "side", "symbol"}
"""The labels of a liquidation's exemplar."""
SIZE_HISTOGRAM: Final = "cryptoliq_liquidation_size_usd"
TEXT_FORMAT: Final = "text/plain;version=0.0.4"
OPENMETRICS: Final = "application/openmetrics-text;version=1.0.0"


def exemplars(stack: Stack, expr: str) -> list[dict[str, Any]]:
    """Prometheus's exemplars of every series ``expr`` selects, over the whole test."""
    answer = stack.api(
        "/api/v1/query_exemplars",
        {"query": expr, "start": f"{stack.started - 60:.3f}", "end": f"{time.time() + 60:.3f}"},
    )
    assert answer.get("status") == "success", answer
    found: list[dict[str, Any]] = answer["data"]
    return found


def counted_markets(stack: Stack) -> dict[tuple[str, str, str], str]:
    """(exchange, symbol, side) -> coin of every market and side with liquidations counted."""
    answer = stack.api(
        "/api/v1/query",
        {"query": "group by (exchange, symbol, coin, side) (cryptoliq_liquidations_total)"},
    )
    return {
        (labels["exchange"], labels["symbol"], labels["side"]): labels["coin"]
        for labels in (series["metric"] for series in answer["data"]["result"])
    }


def bucket_range(le: str) -> tuple[float, float]:
    """The sizes a bucket counts on its own: above the bound below it, up to its own."""
    upper = float(le)
    return max((bound for bound in SIZE_BUCKETS_USD if bound < upper), default=0.0), upper


def order_problems(series: dict[str, Any], counted: dict[tuple[str, str, str], str]) -> list[str]:
    """Why the exemplars of one bucket series are not liquidations the exporter counted there."""
    labels = series["seriesLabels"]
    lower, upper = bucket_range(labels["le"])
    problems: list[str] = []
    for exemplar in series["exemplars"]:
        order, value = exemplar["labels"], float(exemplar["value"])
        where = f"{order} {value} in {labels}"
        if set(order) != ORDER_LABELS:
            problems.append(f"labels {sorted(order)}: {where}")
            continue
        if value < DEFAULT_EXEMPLAR_MIN_USD:
            problems.append(f"below {DEFAULT_EXEMPLAR_MIN_USD:g} USD: {where}")
        if not lower < value <= upper:
            problems.append(f"outside its bucket ({lower:g}, {upper:g}]: {where}")
        if (order["exchange"], order["side"]) != (labels["exchange"], labels["side"]):
            problems.append(f"exchange or side not the series': {where}")
        coin = counted.get((order["exchange"], order["symbol"], order["side"]))
        if coin != labels["coin"]:
            problems.append(f"no counted {labels['coin']} liquidations of that symbol: {where}")
        if not float(order["price"]) > 0:
            problems.append(f"price not positive: {where}")
    return problems


def test_liquidation_exemplars_reach_prometheus_intact(stack: Stack) -> None:
    """Each exemplar is a liquidation the exporter counted in that very series: its venue and
    side are the series', its USD lies in the series' bucket, at least the exemplar floor, and
    its symbol is a market of the series' coin with counted liquidations on that side."""
    assert "--enable-feature=exemplar-storage" in prometheus_features()
    found: list[dict[str, Any]] = []
    while time.monotonic() < stack.data_deadline:
        found = [s for s in exemplars(stack, f"{SIZE_HISTOGRAM}_bucket") if s["exemplars"]]
        if found:
            break
        time.sleep(0.5)
    assert found, "no exemplars: is exemplar storage on, and did the demo liquidate >= 10k?"
    assert all(s["seriesLabels"]["__name__"] == f"{SIZE_HISTOGRAM}_bucket" for s in found)
    counted = counted_markets(stack)
    assert [problem for series in found for problem in order_problems(series, counted)] == []


def test_exemplar_panels_get_the_orders(stack: Stack) -> None:
    """Grafana sends an exemplar target's expression to query_exemplars as it is: each must get
    orders, and only from the size histogram's buckets."""
    targets = [
        (path.stem, panel["title"], target["expr"], defaults(dashboard))
        for path in DASHBOARD_FILES
        for dashboard in [load_dashboard(path)]
        for panel in panels(dashboard)
        for target in panel["targets"]
        if target.get("exemplar")
    ]
    assert targets  # the live liquidations panel
    problems: dict[str, str] = {}
    while True:
        problems = {}
        for uid, title, expr, variables in targets:
            found = [s for s in exemplars(stack, substitute(expr, variables)) if s["exemplars"]]
            names = {s["seriesLabels"]["__name__"] for s in found}
            if names != {f"{SIZE_HISTOGRAM}_bucket"}:
                problems[f"{uid} / {title}"] = f"exemplars of {sorted(names)}"
        if not problems or time.monotonic() > stack.data_deadline:
            break
        time.sleep(0.5)
    assert problems == {}


def scrape(stack: Stack, accept: str) -> tuple[str, str]:
    """(Content-Type, body) of the exporter's /metrics for a scraper sending ``accept``."""
    request = urllib.request.Request(  # noqa: S310 - loopback
        stack.exporter_url + "/metrics", headers={"Accept": accept}
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
        return response.headers["Content-Type"], response.read().decode()


def bucket_lines(body: str) -> list[str]:
    return [line for line in body.splitlines() if line.startswith(f"{SIZE_HISTOGRAM}_bucket{{")]


def test_text_format_scrape_leaves_the_exemplars_out_and_parses(stack: Stack) -> None:
    """A scraper asking for the Prometheus text format (which has no exemplars) gets the
    buckets without them, and a body that parses, while the OpenMetrics scrape carries some."""
    while time.monotonic() < stack.data_deadline:
        if any(" # {" in line for line in bucket_lines(scrape(stack, OPENMETRICS)[1])):
            break
        time.sleep(0.5)
    else:
        pytest.fail("the OpenMetrics scrape never carried an exemplar")
    content_type, body = scrape(stack, TEXT_FORMAT)
    assert content_type.startswith("text/plain"), content_type
    assert "version=0.0.4" in content_type, content_type
    lines = bucket_lines(body)
    assert lines
    assert [line for line in lines if "#" in line] == []
    (histogram,) = (f for f in text_string_to_metric_families(body) if f.name == SIZE_HISTOGRAM)
    assert histogram.type == "histogram"
    assert len(histogram.samples) > len(lines)  # the buckets, _count and _sum
    assert all(sample.exemplar is None for sample in histogram.samples)
