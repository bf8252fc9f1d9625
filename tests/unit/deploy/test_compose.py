"""deploy/compose.yaml against the services' settings: every variable it sets is one the service
reads, every service is reachable by Prometheus where it serves /metrics."""

from __future__ import annotations

from typing import Any

import pytest

from .support import (
    DEPLOY,
    SETTINGS,
    compose,
    compose_services,
    effective_http,
    env_names,
    http_default,
    http_setting,
    load,
)

SERVICES = sorted(SETTINGS)


def test_compose_runs_every_service() -> None:
    assert sorted(compose_services()) == SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_every_variable_set_is_read_by_the_service(service: str) -> None:
    env = compose_services()[service]["environment"]
    unknown = set(env) - env_names(SETTINGS[service])
    assert not unknown, f"{service} is given settings it never reads: {sorted(unknown)}"


@pytest.mark.parametrize("service", SERVICES)
def test_operations_routes_listen_on_every_interface(service: str) -> None:
    env = compose_services()[service]["environment"]
    name, value = http_setting(env, service, 0)
    assert name is not None, f"{service} keeps its default host {http_default(service)[0]}"
    assert value == "0.0.0.0"


@pytest.mark.parametrize("service", SERVICES)
def test_prometheus_scrapes_the_port_the_service_serves(service: str) -> None:
    env = compose_services()[service]["environment"]
    _, port = effective_http(env, service)
    config = load(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    job = jobs[service]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets: set[tuple[str, int]] = set()
    for sd in job.get("dns_sd_configs", []):
        targets |= {(name, int(sd["port"])) for name in sd["names"]}
    for static in job.get("static_configs", []):
        for target in static["targets"]:
            host, _, target_port = str(target).rpartition(":")
            targets.add((host, int(target_port)))
    assert targets == {(service, port)}


def test_ingest_publishes_and_probes_its_port() -> None:
    ingest = compose_services()["ingest"]
    _, port = effective_http(ingest["environment"], "ingest")
    published = {str(p).rsplit(":", 1)[1] for p in ingest["ports"]}
    assert published == {str(port)}
    probe = " ".join(ingest["healthcheck"]["test"])
    assert f":{port}/healthz" in probe


def test_settings_that_must_agree_do() -> None:
    services = compose_services()
    for name in ("DUE_SHARDS", "DIAL_SLOT_LEASE_MS", "CALL_RETENTION_SECONDS"):
        values = {
            s: spec["environment"][name]
            for s, spec in services.items()
            if name in spec["environment"]
        }
        readers = {s for s in SERVICES if name in env_names(SETTINGS[s])}
        assert set(values) == readers, (
            f"{name} is set for {sorted(values)}, read by {sorted(readers)}"
        )
        assert len(set(values.values())) == 1, f"{name} differs: {values}"


def test_monitoring_mounts_exist() -> None:
    specs: dict[str, Any] = compose()["services"]
    for service in ("prometheus", "grafana"):
        for volume in specs[service]["volumes"]:
            source = str(volume).split(":", 1)[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), f"{service} mounts missing {source}"


def mounts(service: str) -> dict[str, str]:
    """The service's bind mounts: container path -> path under deploy/."""
    found: dict[str, str] = {}
    for volume in compose()["services"][service]["volumes"]:
        source, target = str(volume).split(":")[:2]
        if source.startswith("./"):
            found[target] = source.removeprefix("./")
    return found


def test_prometheus_reads_its_config_and_rules_where_they_are_mounted() -> None:
    mounted = mounts("prometheus")
    command = compose()["services"]["prometheus"]["command"]
    config_path = next(a.split("=", 1)[1] for a in command if a.startswith("--config.file="))
    assert mounted[config_path] == "prometheus/prometheus.yml"
    config = load(DEPLOY / mounted[config_path])
    for rule_file in config["rule_files"]:
        assert mounted[rule_file] == "prometheus/alerts.yml"


def test_grafana_loads_the_dashboards_where_they_are_mounted() -> None:
    mounted = mounts("grafana")
    provisioning = DEPLOY / mounted["/etc/grafana/provisioning"]
    providers = load(provisioning / "dashboards" / "campaign-calls.yaml")["providers"]
    paths = {p["options"]["path"] for p in providers}
    assert paths == {"/var/lib/grafana/dashboards"}
    assert mounted["/var/lib/grafana/dashboards"] == "grafana/dashboards"
    datasources = load(provisioning / "datasources" / "prometheus.yaml")["datasources"]
    assert [d["url"] for d in datasources] == ["http://prometheus:9090"]
