"""deploy/k8s against the services' settings and against itself: probes, ports, the Secret's
keys, a PodDisruptionBudget per service, autoscaling, the topics Job and the kustomization."""

from __future__ import annotations

import ast
import importlib
import shutil
import subprocess
from typing import Any

import pytest

from shared.settings import KafkaSettings

from .support import (
    K8S,
    SETTINGS,
    effective_http,
    env_names,
    k8s_objects,
    load,
    load_all,
)

SERVICES = sorted(SETTINGS)


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def plain_env(spec: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: str(e.get("value", "")) for e in spec.get("env", [])}


def configmap() -> dict[str, str]:
    return dict(k8s_objects("ConfigMap")["campaign-calls-config"]["data"])


def secret_example() -> dict[str, dict[str, str]]:
    return {
        doc["metadata"]["name"]: dict(doc["stringData"])
        for doc in load_all(K8S / "secret.example.yaml")
    }


def test_every_service_has_a_deployment() -> None:
    assert sorted(k8s_objects("Deployment")) == SERVICES


def test_configmap_keys_are_read_by_some_service() -> None:
    read = frozenset().union(*(env_names(model) for model in SETTINGS.values()))
    unknown = set(configmap()) - read
    assert not unknown, f"no service reads {sorted(unknown)}"


@pytest.mark.parametrize("service", SERVICES)
def test_deployment_env_is_read_by_its_service(service: str) -> None:
    spec = container(k8s_objects("Deployment")[service])
    names = {e["name"] for e in spec.get("env", [])}
    unknown = names - env_names(SETTINGS[service])
    assert not unknown, f"{service} is given settings it never reads: {sorted(unknown)}"


@pytest.mark.parametrize("service", SERVICES)
def test_probes_and_scrape_annotations_use_the_served_port(service: str) -> None:
    deployment = k8s_objects("Deployment")[service]
    spec = container(deployment)
    env = {**configmap(), **plain_env(spec)}
    host, port = effective_http(env, service)
    assert host == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = spec[probe]["httpGet"]
        assert get["path"] == path
        assert ports.get(get["port"], get["port"]) == port, f"{service} {probe}"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("service", SERVICES)
def test_redis_url_comes_from_the_secret(service: str) -> None:
    spec = container(k8s_objects("Deployment")[service])
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in spec.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs["REDIS_URL"]["name"] == "campaign-calls-secrets"
    assert "REDIS_URL" not in configmap()
    secrets = secret_example()
    for name, ref in refs.items():
        assert ref["key"] in secrets[ref["name"]], f"{ref['name']} has no {ref['key']}"
        assert name in env_names(SETTINGS[service])


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_a_disruption_budget(service: str) -> None:
    labels = k8s_objects("Deployment")[service]["spec"]["template"]["metadata"]["labels"]
    budgets = [
        pdb
        for pdb in k8s_objects("PodDisruptionBudget").values()
        if pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ]
    assert len(budgets) == 1


@pytest.mark.parametrize("service", ["dialer", "notifier"])
def test_dialer_and_notifier_scale_automatically(service: str) -> None:
    hpas = {
        hpa["spec"]["scaleTargetRef"]["name"]: hpa
        for hpa in k8s_objects("HorizontalPodAutoscaler").values()
        if hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    }
    hpa = hpas[service]
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # The autoscaler owns the count: a fixed one would be reset on every apply.
    assert "replicas" not in k8s_objects("Deployment")[service]["spec"]


def test_topics_job_runs_the_projects_topic_creation() -> None:
    job = k8s_objects("Job")["topics"]
    spec = container(job)
    assert spec["command"][:2] == ["python", "-c"]
    tree = ast.parse(spec["command"][2])
    imported = [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    ]
    assert ("shared.bus", "ensure_topics") in imported
    for module, name in imported:
        assert hasattr(importlib.import_module(module), name), f"{module}.{name}"
    env = plain_env(spec)
    assert set(env) <= {f"KAFKA_{n.upper()}" for n in KafkaSettings.model_fields}
    assert int(env["KAFKA_PARTITIONS"]) >= 1


def test_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    kustomization = load(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk - {"secret.example.yaml"}


def test_kustomize_renders() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize deploy/k8s` not checked")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert rendered.returncode == 0, rendered.stderr
    kinds = [
        line.removeprefix("kind: ")
        for line in rendered.stdout.splitlines()
        if line.startswith("kind: ")
    ]
    assert sorted(set(kinds)) == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Job",
        "Namespace",
        "PodDisruptionBudget",
        "Service",
    ]
