"""docker-compose.yml, Dockerfile and provisioning, checked statically (CI has no Docker engine).

What `docker compose up` would trip over, without running it: a mount that does not exist, an
unpinned image, a scrape target or port that disagrees with the exporter's defaults, a Grafana
datasource uid the dashboards do not use, a variable `.env.example` does not define; and in the
`scale` profile, a shard vmagent does not scrape, a rule file vmalert does not load, a Grafana
that does not read VictoriaMetrics.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import PurePosixPath
from typing import Any, Final

import pytest

from dashboards.config import DATASOURCE_UID, JOB
from exporter.config import DEFAULT_PORT
from exporter.healthcheck import TIMEOUT_SECONDS
from tests.monitoring_support import (
    DASHBOARD_FILES,
    PROMETHEUS_CONFIG,
    ROOT,
    RULE_FILES,
    VMAGENT_CONFIG,
    load_dashboard,
    load_yaml,
)

COMPOSE: Final = load_yaml(ROOT / "docker-compose.yml")
SERVICES: Final[dict[str, dict[str, Any]]] = COMPOSE["services"]
EXPORTERS: Final = {name: s for name, s in SERVICES.items() if "build" in s}
SCALE: Final = "scale"
SHARDS: Final = {name: s for name, s in EXPORTERS.items() if SCALE in s.get("profiles", [])}
"""The exporter shards of the scale profile; the other exporters are the ones Prometheus scrapes."""
PROMETHEUS_EXPORTERS: Final = {name: s for name, s in EXPORTERS.items() if name not in SHARDS}
SCALE_DATASOURCES: Final = ROOT / "provisioning/grafana-scale/datasources/victoriametrics.yml"
VICTORIA_METRICS_URL: Final = "http://victoria-metrics:8428"
DOCKERFILE: Final = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
"""The Dockerfile with continuation lines joined: one instruction per line."""
ENV_EXAMPLE: Final = (ROOT / ".env.example").read_text(encoding="utf-8")
PINNED: Final = re.compile(r"^[\w./-]+:v?\d+\.\d+\.\d+$")
INTERPOLATION: Final = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(source, target, mode)`` of every volume entry whose source is a path."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        if source.startswith((".", "/")):
            mounts.append((source, target, mode[0] if mode else "rw"))
    return mounts


def container_path(service: str, host: str) -> str:
    """Where ``host`` (relative to the repository) appears inside ``service``."""
    for source, target, _ in bind_mounts(SERVICES[service]):
        source_path = (ROOT / source).resolve()
        wanted = (ROOT / host).resolve()
        if wanted == source_path or source_path in wanted.parents:
            return str(PurePosixPath(target) / wanted.relative_to(source_path).as_posix())
    pytest.fail(f"{host} is not mounted into {service}")


def hostnames(name: str) -> set[str]:
    """Names other services reach ``name`` by: its own and its network aliases."""
    networks = SERVICES[name].get("networks", {})
    aliases = {a for net in networks.values() if net for a in net.get("aliases", [])}
    return {name, *aliases}


def published(service: dict[str, Any]) -> set[tuple[int, int]]:
    """``(host port, container port)`` pairs of ``ports``."""
    pairs = set()
    for entry in service.get("ports", []):
        *_, host, container = INTERPOLATION.sub("ADDRESS", entry).split(":")
        pairs.add((int(host), int(container)))
    return pairs


def flags(service: str) -> dict[str, list[str]]:
    """``-name=value`` command flags of ``service`` (VictoriaMetrics style) by name."""
    found: dict[str, list[str]] = {}
    for argument in SERVICES[service]["command"]:
        name, _, value = argument.lstrip("-").partition("=")
        found.setdefault(name, []).append(value)
    return found


def flag(service: str, name: str) -> str:
    (value,) = flags(service)[name]
    return value


def test_expected_services() -> None:
    assert set(SERVICES) == {
        "exporter",
        "exporter-demo",
        "prometheus",
        "alertmanager",
        "grafana",
        "exporter-shard-1",
        "exporter-shard-2",
        "victoria-metrics",
        "vmagent",
        "vmalert",
        "grafana-scale",
    }


def test_profiles_keep_the_default_stack_apart_from_scale() -> None:
    """``--profile demo`` and ``live`` run what they ran before; ``--profile scale`` runs the
    shards, the VictoriaMetrics parts and its own Grafana, and neither Prometheus nor the other
    Grafana (both publish :3000). Alertmanager serves both."""
    profiles = {name: set(service.get("profiles", [])) for name, service in SERVICES.items()}
    assert profiles["alertmanager"] == set()
    assert profiles["prometheus"] == profiles["grafana"] == {"live", "demo"}
    assert {name for name, p in profiles.items() if SCALE in p} == {
        *SHARDS,
        "victoria-metrics",
        "vmagent",
        "vmalert",
        "grafana-scale",
    }
    assert all(p == {SCALE} for p in profiles.values() if SCALE in p)


def test_images_are_pinned() -> None:
    for name, service in SERVICES.items():
        image = service["image"]
        if "build" in service:
            assert ":" in image, name
            assert not image.endswith(":latest"), name
        else:
            assert PINNED.match(image), f"{name}: {image} is not pinned to a version"
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert base, "the Dockerfile names its base image in ARG PYTHON_IMAGE"
    assert re.match(r"^python:\d+\.\d+\.\d+-slim-\w+$", base.group(1))


def test_grafana_image_matches_the_dashboard_sdk() -> None:
    """The SDK line and the Grafana image must be the same minor version."""
    grafana = SERVICES["grafana"]["image"].split(":")[1]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extras = pyproject["project"]["optional-dependencies"]
    (sdk,) = (req for reqs in extras.values() for req in reqs if "grafana-foundation-sdk" in req)
    sdk_line = re.search(r"!(\d+\.\d+)\.", sdk)
    assert sdk_line, sdk
    assert grafana.startswith(sdk_line.group(1) + "."), (grafana, sdk)


def test_documented_image_pins_match_compose() -> None:
    """The services table of docs/monitoring-stack.md and the README's Image pins name the tags
    compose runs: a bump that forgets them fails here."""
    docs = (ROOT / "docs" / "monitoring-stack.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pins = readme.partition("\n## Image pins\n")[2].partition("\n## ")[0]
    assert pins, "README.md has no Image pins section"
    for name, service in SERVICES.items():
        if "build" in service:
            continue
        image, _, tag = service["image"].partition(":")
        assert f"`{service['image']}`" in docs, f"{name}: docs/monitoring-stack.md"
        assert f"| `{image}` | `{tag}` |" in pins, f"{name}: README.md, Image pins"


def test_every_mounted_path_exists_and_provisioning_is_read_only() -> None:
    for name, service in SERVICES.items():
        for source, target, mode in bind_mounts(service):
            assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            if source.startswith("./provisioning"):
                assert mode == "ro", f"{name}: {source} -> {target} must be read-only"


def test_named_volumes_are_declared_and_used() -> None:
    used = {
        volume.split(":")[0]
        for service in SERVICES.values()
        for volume in service.get("volumes", [])
        if not volume.startswith((".", "/"))
    }
    assert used == set(COMPOSE["volumes"])


def test_every_service_has_a_health_check() -> None:
    for name, service in SERVICES.items():
        if "build" in service:
            assert re.search(r"^HEALTHCHECK .*--healthcheck", DOCKERFILE, re.MULTILINE), name
        else:
            test = service["healthcheck"]["test"]
            assert test[0] == "CMD", name


def test_dependencies_wait_for_healthy_services() -> None:
    dependencies = [
        (name, dependency, condition)
        for name, service in SERVICES.items()
        for dependency, condition in service.get("depends_on", {}).items()
    ]
    assert ("grafana", "prometheus", {"condition": "service_healthy"}) in dependencies
    for name, dependency, condition in dependencies:
        assert condition["condition"] == "service_healthy", (name, dependency)
        assert "healthcheck" in SERVICES[dependency], (name, dependency)


def test_scrape_target_and_ports_agree_with_the_exporter_defaults() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    (job,) = (job for job in config["scrape_configs"] if job["job_name"] == JOB)
    (target,) = [target for static in job["static_configs"] for target in static["targets"]]
    host, port = target.rsplit(":", 1)
    assert int(port) == DEFAULT_PORT
    assert len(PROMETHEUS_EXPORTERS) == 2
    for name, service in PROMETHEUS_EXPORTERS.items():
        assert host in hostnames(name), f"Prometheus cannot reach {name} as {host}"
        assert (DEFAULT_PORT, DEFAULT_PORT) in published(service), name
        assert "--port" not in service.get("command", []), name
    assert re.search(rf"^EXPOSE {DEFAULT_PORT}$", DOCKERFILE, re.MULTILINE)
    (alertmanager,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanager == "alertmanager:9093"
    assert (9093, 9093) in published(SERVICES["alertmanager"])
    assert (9090, 9090) in published(SERVICES["prometheus"])
    assert (3000, 3000) in published(SERVICES["grafana"])


def test_image_health_check_asks_the_exporter_itself() -> None:
    """A fixed URL fails with basic auth (401), TLS (plain HTTP to a TLS port) or another port;
    ``--healthcheck`` reads the same settings as the exporter to find all three
    (tests/test_healthcheck.py runs it against the real app)."""
    found = re.search(
        r"^HEALTHCHECK (?P<options>.*?)\s*CMD (?P<command>\[.*\])$", DOCKERFILE, re.MULTILINE
    )
    assert found, "the Dockerfile has an exec-form HEALTHCHECK"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (script,) = pyproject["project"]["scripts"]
    assert json.loads(found["command"]) == [script, "--healthcheck"]
    timeout = re.search(r"--timeout=(\d+)s", found["options"])
    assert timeout, found["options"]
    assert int(timeout[1]) > TIMEOUT_SECONDS, "the check must give up before Docker does"
    for name, service in EXPORTERS.items():
        test = service.get("healthcheck", {}).get("test")
        assert test is None or test[:3] == ["CMD", script, "--healthcheck"], name


def test_prometheus_reads_the_mounted_config_and_rules() -> None:
    command = SERVICES["prometheus"]["command"]
    config = container_path("prometheus", "provisioning/prometheus/prometheus.yml")
    assert f"--config.file={config}" in command
    for rule_file in load_yaml(PROMETHEUS_CONFIG)["rule_files"]:
        assert not rule_file.startswith("/"), "rule_files must be relative to prometheus.yml"
        assert list(PROMETHEUS_CONFIG.parent.glob(rule_file)), rule_file
    alertmanager = container_path("alertmanager", "provisioning/alertmanager/alertmanager.yml")
    assert f"--config.file={alertmanager}" in SERVICES["alertmanager"]["command"]


def test_demo_profile_runs_the_exporter_with_demo() -> None:
    assert SERVICES["exporter-demo"]["profiles"] == ["demo"]
    assert "--demo" in SERVICES["exporter-demo"]["command"]
    assert SERVICES["exporter"]["profiles"] == ["live"]
    assert "--demo" not in SERVICES["exporter"].get("command", [])
    # `docker compose up` with .env from .env.example runs the live exporter.
    assert re.search(r"^COMPOSE_PROFILES=live$", ENV_EXAMPLE, re.MULTILINE)


def test_exporter_runs_hardened() -> None:
    for name, service in EXPORTERS.items():
        assert service["read_only"] is True, name
        assert "no-new-privileges:true" in service["security_opt"], name
    stages = re.findall(r"^FROM ", DOCKERFILE, re.MULTILINE)
    assert len(stages) >= 2, "multi-stage build"
    (user,) = re.findall(r"^USER (\S+)$", DOCKERFILE, re.MULTILINE)
    assert user.split(":")[0] not in {"root", "0"}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (script,) = pyproject["project"]["scripts"]
    assert f'ENTRYPOINT ["{script}"]' in DOCKERFILE


def test_build_context_keeps_what_the_dockerfile_copies() -> None:
    """.dockerignore is an allow-list; every COPY source must be on it."""
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    }
    sources = [
        source
        for args in re.findall(r"^COPY (?!--from)(.+)$", DOCKERFILE, re.MULTILINE)
        for source in args.split()[:-1]
    ]
    assert sources
    for source in sources:
        assert source.rstrip("/") in allowed, source
        assert (ROOT / source).exists(), source


def test_grafana_admin_password_comes_from_env_and_viewing_is_anonymous() -> None:
    environment = SERVICES["grafana"]["environment"]
    assert environment["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert environment["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert re.search(r"^GRAFANA_ADMIN_PASSWORD=$", ENV_EXAMPLE, re.MULTILINE), (
        ".env.example must not ship a password"
    )


def test_env_example_defines_every_variable_compose_uses() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(INTERPOLATION.findall(text))
    defined = set(re.findall(r"^(\w+)=", ENV_EXAMPLE, re.MULTILINE))
    assert used <= defined, used - defined


def test_grafana_datasource_and_dashboards_agree() -> None:
    datasources = load_yaml(ROOT / "provisioning/grafana/datasources/prometheus.yml")
    (prometheus,) = (d for d in datasources["datasources"] if d["type"] == "prometheus")
    assert prometheus["uid"] == DATASOURCE_UID
    assert prometheus["url"] == "http://prometheus:9090"
    scrape_interval = load_yaml(PROMETHEUS_CONFIG)["global"]["scrape_interval"]
    assert prometheus["jsonData"]["timeInterval"] == scrape_interval
    (alertmanager,) = (d for d in datasources["datasources"] if d["type"] == "alertmanager")
    assert prometheus["jsonData"]["alertmanagerUid"] == alertmanager["uid"]
    assert alertmanager["url"] == "http://alertmanager:9093"
    for path in DASHBOARD_FILES:
        variables = load_dashboard(path)["templating"]["list"]
        (datasource,) = (v for v in variables if v["type"] == "datasource")
        assert datasource["current"]["value"] == prometheus["uid"], path.name


def test_dashboard_provider_points_at_the_generated_json() -> None:
    provider_file = ROOT / "provisioning/grafana/dashboards/cryptoliq.yml"
    (provider,) = load_yaml(provider_file)["providers"]
    assert provider["options"]["path"] == container_path(
        "grafana", "provisioning/grafana/dashboards"
    )
    assert provider["allowUiUpdates"] is False
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == container_path(
        "grafana", "provisioning/grafana/dashboards/cryptoliq-liquidations.json"
    )
    assert DASHBOARD_FILES
    # The scale profile's Grafana loads the same dashboards through the same provider file.
    for target in (provider["options"]["path"], home):
        assert container_path("grafana-scale", "provisioning/grafana/dashboards") in target
    assert container_path("grafana-scale", "provisioning/grafana/dashboards") == container_path(
        "grafana", "provisioning/grafana/dashboards"
    )


def test_scale_shards_split_the_markets_between_them() -> None:
    """Shards 1/N .. N/N, each once, live by default, each with its own state volume and host
    port, on the exporter's default port inside the container (what vmagent scrapes)."""
    assert len(SHARDS) >= 2
    shards: list[str] = []
    for name, service in SHARDS.items():
        command = service["command"]
        assert "--demo" not in command, name
        assert "--port" not in command, name
        shards.append(command[command.index("--shard") + 1])
        (volume,) = service["volumes"]
        assert volume == f"{name}-state:/var/lib/cryptoliq", name
        (ports,) = published(service)
        assert ports[1] == DEFAULT_PORT, name
    count = len(SHARDS)
    assert sorted(shards) == [f"{index}/{count}" for index in range(1, count + 1)]
    host_ports = [port for s in SHARDS.values() for port, _ in published(s)]
    assert len(set(host_ports)) == count
    assert DEFAULT_PORT not in host_ports  # the live or demo exporter's


def test_vmagent_scrapes_every_shard_with_prometheus_job_and_guards() -> None:
    config = load_yaml(VMAGENT_CONFIG)
    (job,) = config["scrape_configs"]
    assert job["job_name"] == JOB
    targets = [target for static in job["static_configs"] for target in static["targets"]]
    assert sorted(targets) == sorted(f"{name}:{DEFAULT_PORT}" for name in SHARDS)
    (prometheus_job,) = load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]
    for guard in ("sample_limit", "label_limit"):
        assert job[guard] == prometheus_job[guard], guard
    assert flag("vmagent", "promscrape.config") == container_path(
        "vmagent", "provisioning/vmagent/vmagent.yml"
    )
    assert flag("vmagent", "remoteWrite.url") == f"{VICTORIA_METRICS_URL}/api/v1/write"
    # Deduplication keeps one sample per scrape interval: equal, or it thins the data.
    interval = config["global"]["scrape_interval"]
    assert flag("victoria-metrics", "dedup.minScrapeInterval") == interval
    assert flag("victoria-metrics", "httpListenAddr") == ":" + VICTORIA_METRICS_URL.rsplit(":")[-1]


def test_vmalert_evaluates_the_prometheus_rules_against_victoriametrics() -> None:
    (pattern,) = flags("vmalert")["rule"]
    directory, _, glob = pattern.rpartition("/")
    assert directory == container_path("vmalert", "provisioning/prometheus/rules")
    rules = ROOT / "provisioning/prometheus/rules"
    assert tuple(sorted(rules.glob(glob))) == RULE_FILES
    assert RULE_FILES
    for name in ("datasource.url", "remoteWrite.url", "remoteRead.url"):
        assert flag("vmalert", name) == VICTORIA_METRICS_URL, name
    prometheus = load_yaml(PROMETHEUS_CONFIG)
    (alertmanager,) = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert flag("vmalert", "notifier.url") == f"http://{alertmanager}"
    assert flag("vmalert", "evaluationInterval") == prometheus["global"]["evaluation_interval"]
    assert flag("victoria-metrics", "vmalert.proxyURL") == "http://vmalert:8880"
    assert flag("vmalert", "httpListenAddr") == ":8880"


def test_victoriametrics_images_are_one_release() -> None:
    tags = {SERVICES[name]["image"].partition(":")[2] for name in ("victoria-metrics", "vmagent")}
    tags.add(SERVICES["vmalert"]["image"].partition(":")[2])
    assert len(tags) == 1, tags


def test_scale_grafana_reads_victoriametrics_under_the_dashboards_uid() -> None:
    datasources_dir = container_path(
        "grafana-scale", SCALE_DATASOURCES.parent.relative_to(ROOT).as_posix()
    )
    assert datasources_dir == "/etc/grafana/provisioning/datasources"
    datasources = load_yaml(SCALE_DATASOURCES)["datasources"]
    (victoria,) = (d for d in datasources if d["type"] == "prometheus")
    assert victoria["uid"] == DATASOURCE_UID
    assert victoria["url"] == VICTORIA_METRICS_URL
    scrape_interval = load_yaml(VMAGENT_CONFIG)["global"]["scrape_interval"]
    assert victoria["jsonData"]["timeInterval"] == scrape_interval
    (alertmanager,) = (d for d in datasources if d["type"] == "alertmanager")
    assert victoria["jsonData"]["alertmanagerUid"] == alertmanager["uid"]
    assert alertmanager["url"] == "http://alertmanager:9093"
    # Its own database: the same uid under another name and URL would clash in Grafana's.
    grafana_volumes = {v.split(":")[0] for v in SERVICES["grafana"]["volumes"]}
    scale_volumes = {v.split(":")[0] for v in SERVICES["grafana-scale"]["volumes"]}
    assert not grafana_volumes & scale_volumes - {"./provisioning/grafana/dashboards"}
    assert SERVICES["grafana-scale"]["environment"] == SERVICES["grafana"]["environment"]
    assert SERVICES["grafana-scale"]["image"] == SERVICES["grafana"]["image"]
    depends = SERVICES["grafana-scale"]["depends_on"]
    assert depends == {"victoria-metrics": {"condition": "service_healthy"}}
