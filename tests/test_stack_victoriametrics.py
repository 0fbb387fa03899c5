"""The ``scale`` profile's path, natively: two exporter shards, vmagent, VictoriaMetrics, vmalert.

Docker is not available on CI machines, so this runs the compose profile's parts as processes on
loopback: two ``--demo`` exporters with ``--shard 1/2`` and ``--shard 2/2``, Debian's
``victoria-metrics``, ``vmagent`` and ``vmalert`` (1.79.5 in CI) started with the flags
``docker-compose.yml`` gives them (addresses, paths and intervals made local), vmagent with a
temporary copy of ``provisioning/vmagent/vmagent.yml`` whose targets are the shards, vmalert with
the real rule files and the real Alertmanager as its notifier. Then, through VictoriaMetrics'
Prometheus API (what the scale profile's Grafana reads): every dashboard expression and every
recording rule returns data, every rule is healthy (VictoriaMetrics proxies vmalert's
``/api/v1/rules``, as Grafana asks it), and the shards split the demo's markets by the documented
rule (exporter.shard), each market on exactly one shard.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import pytest
import yaml

from dashboards.config import JOB
from exporter.config import DEFAULT_COINS, DEFAULT_PORT
from exporter.demo import watched_symbol
from exporter.fakeexchange import FakeExchange
from exporter.shard import Shard, shard_of
from exporter.venues import VENUES, exchange_label
from tests.conftest import unavailable
from tests.monitoring_support import (
    COMPOSE_FILE,
    DASHBOARD_FILES,
    PROVISIONING,
    RULE_FILES,
    VMAGENT_CONFIG,
    Expression,
    alerting_rules,
    dashboard_expressions,
    load_dashboard,
    load_yaml,
    recording_rules,
)
from tests.test_lifecycle import free_port, get
from tests.test_stack_prometheus import (
    Stack,
    assert_all_return_data,
    defaults,
    start,
    stop,
    wait_for,
)

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

SHARDS: Final = (Shard(1, 2), Shard(2, 2))
ALERTMANAGER_CONFIG: Final = PROVISIONING / "alertmanager" / "alertmanager.yml"
STARTUP_SECONDS: Final = 30.0
"""Every process up, both shards scraped three times and their samples queryable."""
DATA_SECONDS: Final = 50.0
"""After startup: time for every expression to return data. Longer than Prometheus needs (25 s):
VictoriaMetrics finds a series created in the current hour only after its next 10 s refresh of
that hour's series (currHourMetricIDsUpdateInterval, fixed), so on a fresh store each level of
recording rules that read another's results waits up to 10 s more; the squeeze ratios are three
levels deep (about 40 s here). A store that has been running, as in the compose profile, has no
such wait."""
INTERVAL: Final = "1s"
"""Scrape and evaluation interval here (15s in the compose profile)."""

NOT_IN_1_79: Final = ("label_limit",)
"""vmagent.yml keys that Debian's vmagent 1.79.5 refuses as unknown (label_limit: v1.121.0); the
local copy leaves them out so that the rest is still parsed strictly."""


def victoria_tool(name: str) -> str:
    """Path of a VictoriaMetrics binary; skips without it, except in CI, which installs it."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed", "apt-get install victoria-metrics")
    return path


def alertmanager_tool() -> str:
    """Debian names Alertmanager's binary ``prometheus-alertmanager``; upstream ``alertmanager``."""
    path = shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")
    if path is None:
        unavailable("alertmanager is not installed", "apt-get install prometheus-alertmanager")
    return path


def compose_command(service: str, local: dict[str, str]) -> list[str]:
    """``service``'s command in docker-compose.yml with the flags in ``local`` given local values.

    Every flag named in ``local`` must be in the compose command, so that a renamed flag there
    fails here instead of quietly running the test with a configuration compose does not have.
    """
    command: list[str] = load_yaml(COMPOSE_FILE)["services"][service]["command"]
    names = [argument.lstrip("-").partition("=")[0] for argument in command]
    assert set(local) <= set(names), f"{service}: not in compose: {set(local) - set(names)}"
    return [
        f"-{name}={local[name]}" if name in local else argument
        for name, argument in zip(names, command, strict=True)
    ]


def local_vmagent_config(shard_ports: list[int], tmp_path: Path) -> Path:
    """The shipped vmagent.yml with the shards' loopback ports as targets and 1 s scrapes."""
    config = load_yaml(VMAGENT_CONFIG)
    config["global"].update(scrape_interval=INTERVAL, scrape_timeout=INTERVAL)
    (job,) = config["scrape_configs"]
    assert job["job_name"] == JOB
    (static,) = job["static_configs"]
    assert len(static["targets"]) == len(SHARDS)
    assert {target.rsplit(":", 1)[1] for target in static["targets"]} == {str(DEFAULT_PORT)}
    static["targets"] = [f"127.0.0.1:{port}" for port in shard_ports]
    for key in NOT_IN_1_79:
        job.pop(key)
    path = tmp_path / "vmagent.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def answers(url: str) -> Callable[[], bool]:
    return lambda: get(url) is not None


@dataclass
class Scale:
    """The running stack: VictoriaMetrics' API as a ``Stack``, and each shard's instance label."""

    stack: Stack
    instances: dict[str, Shard]


@pytest.fixture(scope="module")
def scale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scale]:
    tools = {name: victoria_tool(name) for name in ("victoria-metrics", "vmagent", "vmalert")}
    alertmanager = alertmanager_tool()
    tmp_path = tmp_path_factory.mktemp("scale")
    shard_ports = [free_port() for _ in SHARDS]
    vm_port, vmagent_port, vmalert_port, am_port = (free_port() for _ in range(4))
    vm_url = f"http://127.0.0.1:{vm_port}"
    vmalert_url = f"http://127.0.0.1:{vmalert_port}"
    logs: list[Path] = []

    def log(name: str) -> Path:
        logs.append(tmp_path / f"{name}.log")
        return logs[-1]

    started, started_at = time.monotonic(), time.time()
    deadline = started + STARTUP_SECONDS
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for shard, port in zip(SHARDS, shard_ports, strict=True):
            processes.append(
                start(
                    [
                        *(sys.executable, "-m", "exporter", "--demo", "--shard", shard.label),
                        *("--port", str(port), "--listen-address", "127.0.0.1"),
                    ],
                    log(f"exporter-{shard.index}"),
                )
            )
        victoria_metrics = compose_command(
            "victoria-metrics",
            {
                "storageDataPath": str(tmp_path / "victoria-metrics"),
                "httpListenAddr": f"127.0.0.1:{vm_port}",
                "dedup.minScrapeInterval": INTERVAL,
                "vmalert.proxyURL": vmalert_url,
            },
        )
        # Fresh samples are queryable at once (the default hides the last 30 s), and no
        # response cache serves an answer from before the data arrived.
        victoria_metrics += ["-search.latencyOffset=0s", "-search.disableCache"]
        processes.append(start([tools["victoria-metrics"], *victoria_metrics], log("vm")))
        alertmanager_command = [
            alertmanager,
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--storage.path={tmp_path / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",  # no gossip port: a single instance
        ]
        processes.append(start(alertmanager_command, log("alertmanager")))
        # Where vmagent writes and vmalert reads and notifies: up first, or vmalert starts by
        # failing to restore its alerts' state.
        for url in (f"{vm_url}/health", f"http://127.0.0.1:{am_port}/-/ready"):
            wait_for(answers(url), deadline, url, logs)
        vmagent = compose_command(
            "vmagent",
            {
                "promscrape.config": str(local_vmagent_config(shard_ports, tmp_path)),
                "remoteWrite.url": f"{vm_url}/api/v1/write",
                "remoteWrite.tmpDataPath": str(tmp_path / "vmagent"),
                "httpListenAddr": f"127.0.0.1:{vmagent_port}",
            },
        )
        processes.append(start([tools["vmagent"], *vmagent], log("vmagent")))
        (rules,) = {path.parent for path in RULE_FILES}
        vmalert = compose_command(
            "vmalert",
            {
                "rule": str(rules / "*.yml"),
                "evaluationInterval": INTERVAL,
                "datasource.url": vm_url,
                "remoteWrite.url": vm_url,
                "remoteRead.url": vm_url,
                "notifier.url": f"http://127.0.0.1:{am_port}",
                "external.url": vmalert_url,
                "httpListenAddr": f"127.0.0.1:{vmalert_port}",
            },
        )
        # A rule that reads another's results reads them back from VictoriaMetrics, a flush
        # (default 5 s) and about a second of ingestion later; at 1 s evaluations that is older
        # than VictoriaMetrics' staleness window for a 1 s series, and the chained rules would
        # see nothing. Flush every second and evaluate 2 s back (what vmalert >= 1.95 does by
        # default, by 30 s, with -rule.evalDelay; at 15 s intervals the lag is harmless).
        vmalert += [f"-remoteWrite.flushInterval={INTERVAL}", "-datasource.lookback=2s"]
        processes.append(start([tools["vmalert"], *vmalert], log("vmalert")))

        for url in (f"http://127.0.0.1:{vmagent_port}", vmalert_url):
            wait_for(answers(url + "/health"), deadline, url, logs)
        stack = Stack(vm_url, f"http://127.0.0.1:{shard_ports[0]}", started_at, data_deadline=0.0)
        every_shard_scraped = (
            f'count(count_over_time(up{{job="{JOB}"}}[1m]) >= 3 and up{{job="{JOB}"}} == 1)'
            f" == {len(SHARDS)}"
        )
        wait_for(lambda: stack.problem(every_shard_scraped) is None, deadline, "3 scrapes", logs)
        stack.data_deadline = time.monotonic() + DATA_SECONDS
        instances = {f"127.0.0.1:{port}": s for s, port in zip(SHARDS, shard_ports, strict=True)}
        yield Scale(stack, instances)
    finally:
        for process in reversed(processes):  # the readers before what they read
            stop(process)


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.stem)
def test_every_dashboard_expression_returns_data(scale: Scale, path: Path) -> None:
    dashboard = load_dashboard(path)
    expressions = dashboard_expressions(dashboard)
    assert expressions
    assert_all_return_data(scale.stack, expressions, defaults(dashboard))


def test_every_recording_rule_returns_data(scale: Scale) -> None:
    """vmalert evaluated each rule and wrote the result back into VictoriaMetrics."""
    records = recording_rules()
    assert records
    expressions = [Expression(f"record {name}", name) for name in records]
    assert_all_return_data(scale.stack, expressions)


def test_every_rule_is_loaded_and_healthy(scale: Scale) -> None:
    """As Grafana's alert-rule view sees them: VictoriaMetrics' ``/api/v1/rules``, proxied to
    vmalert (-vmalert.proxyURL)."""
    expected = len(recording_rules()) + len(alerting_rules())
    while True:
        answer = scale.stack.api("/api/v1/rules")
        rules = [rule for group in answer["data"]["groups"] for rule in group["rules"]]
        unhealthy = [
            f"{rule['name']}: {rule.get('health')} {rule.get('lastError', '')}"
            for rule in rules
            if rule.get("health") != "ok" or rule.get("lastError")
        ]
        if len(rules) == expected and not unhealthy:
            break
        if time.monotonic() > scale.stack.data_deadline:
            break
        time.sleep(0.5)
    assert len(rules) == expected, [rule["name"] for rule in rules]
    assert unhealthy == []


PER_PROCESS: Final = (
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
    "cryptoliq_build_info",
    "cryptoliq_scrape_render_seconds",
)
"""Series of each exporter process (vmagent writes the ``up`` and ``scrape_*`` ones, as
Prometheus records them): the Exporter health dashboard draws them per instance."""


def test_per_process_series_come_from_every_shard(scale: Scale) -> None:
    missing: dict[str, list[str]] = {}
    while True:
        missing = {}
        for name in PER_PROCESS:
            answer = scale.stack.api(
                "/api/v1/query", {"query": f'group by (instance) ({name}{{job="{JOB}"}})'}
            )
            found = {series["metric"]["instance"] for series in answer["data"]["result"]}
            if found != set(scale.instances):
                missing[name] = sorted(set(scale.instances) - found)
        if not missing or time.monotonic() > scale.stack.data_deadline:
            break
        time.sleep(0.5)
    assert missing == {}


def expected_markets() -> dict[tuple[str, str], int]:
    """(exchange, symbol) -> shard of every market the demo watches (every venue, the default
    coins), by the documented rule (exporter.shard), which hashes the series' own labels."""
    markets = {
        (exchange_label(venue), watched_symbol(fake, coin))
        for venue in VENUES
        for fake in [FakeExchange(venue)]
        for coin in DEFAULT_COINS
    }
    return {market: shard_of(*market, len(SHARDS)) for market in markets}


def served_markets(scale: Scale) -> dict[int, set[tuple[str, str]]]:
    """Shard index -> the (exchange, symbol) of its open-interest series in VictoriaMetrics."""
    answer = scale.stack.api(
        "/api/v1/query",
        {"query": "group by (instance, exchange, symbol) (cryptoliq_open_interest_usd)"},
    )
    served: dict[int, set[tuple[str, str]]] = {shard.index: set() for shard in SHARDS}
    for series in answer["data"]["result"]:
        labels = series["metric"]
        shard = scale.instances[labels["instance"]]
        served[shard.index].add((labels["exchange"], labels["symbol"]))
    return served


def test_shards_partition_the_markets(scale: Scale) -> None:
    """Each market's open interest comes from exactly the shard the rule names, and together
    the shards serve every market of the demo."""
    expected = expected_markets()
    wanted = {
        shard.index: {market for market, index in expected.items() if index == shard.index}
        for shard in SHARDS
    }
    assert all(wanted.values()), "the demo's markets should fall on both shards"
    while True:
        served = served_markets(scale)
        if served == wanted or time.monotonic() > scale.stack.data_deadline:
            break
        time.sleep(0.5)
    first, second = (served.get(shard.index, set()) for shard in SHARDS)
    assert first & second == set(), "markets served by both shards"
    assert first | second == set(expected), "markets missing or unexpected"
    misplaced = {
        index: {"missing": sorted(wanted[index] - got), "extra": sorted(got - wanted[index])}
        for index, got in served.items()
        if got != wanted[index]
    }
    assert misplaced == {}, "markets on another shard than the rule names"
