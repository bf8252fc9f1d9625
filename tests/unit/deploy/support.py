"""What the deployment files are checked against: the environment names each service's settings
accept, the metric names the services export, and the files themselves."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import yaml  # type: ignore[import-untyped]
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from pydantic import AliasChoices
from pydantic_settings import BaseSettings
from redis.asyncio import Redis

from services.dialer.metrics import DialerMetrics
from services.dialer.settings import DialerSettings
from services.ingest.metrics import IngestMetrics
from services.ingest.settings import IngestSettings
from services.notifier.metrics import DeliveryMetrics
from services.notifier.settings import NotifierSettings
from services.scheduler.metrics import SchedulerMetrics
from services.scheduler.settings import SchedulerSettings
from shared.clock import SystemClock
from shared.metrics import PREFIX, ConsumerMetrics

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
K8S = DEPLOY / "k8s"

SETTINGS: dict[str, type[BaseSettings]] = {
    "ingest": IngestSettings,
    "scheduler": SchedulerSettings,
    "dialer": DialerSettings,
    "notifier": NotifierSettings,
}
# Where each service serves /healthz, /readyz and /metrics: its settings' host and port fields.
HTTP_FIELDS = {
    "ingest": ("host", "port"),
    "scheduler": ("http_host", "http_port"),
    "dialer": ("http_host", "http_port"),
    "notifier": ("http_host", "http_port"),
}


def field_env_names(model: type[BaseSettings], field: str) -> frozenset[str]:
    """The environment names that set one field of `model` (not of a nested model)."""
    info = model.model_fields[field]
    prefix = str(model.model_config.get("env_prefix") or "")
    alias = info.validation_alias if info.validation_alias is not None else info.alias
    names: set[str] = set()
    if isinstance(alias, AliasChoices):
        names.update(choice for choice in alias.choices if isinstance(choice, str))
    elif isinstance(alias, str):
        names.add(alias)
    # pydantic-settings reads the prefixed field name when there is no alias, and also beside
    # the alias when the model populates by name.
    if alias is None or model.model_config.get("populate_by_name"):
        names.add(prefix + field)
    return frozenset(name.upper() for name in names)


def env_names(model: type[BaseSettings]) -> frozenset[str]:
    """Every environment name `model` reads: its fields' (aliases included) and those of the
    settings models nested in it, each under its own `env_prefix`."""
    names: set[str] = set()
    for field, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
            names |= env_names(annotation)
        else:
            names |= field_env_names(model, field)
    return frozenset(names)


def http_default(service: str) -> tuple[str, int]:
    model = SETTINGS[service]
    host_field, port_field = HTTP_FIELDS[service]
    return (
        str(model.model_fields[host_field].default),
        int(model.model_fields[port_field].default),
    )


def http_setting(env: dict[str, str], service: str, which: int) -> tuple[str | None, str | None]:
    """(the env name that sets the service's HTTP host or port in `env`, its value), or Nones."""
    field = HTTP_FIELDS[service][which]
    for name in sorted(field_env_names(SETTINGS[service], field)):
        if name in env:
            return name, str(env[name])
    return None, None


def effective_http(env: dict[str, str], service: str) -> tuple[str, int]:
    """Where the service serves its operations routes, given the environment it gets."""
    default_host, default_port = http_default(service)
    _, host = http_setting(env, service, 0)
    _, port = http_setting(env, service, 1)
    return host or default_host, int(port) if port is not None else default_port


def exported_metric_names() -> frozenset[str]:
    """The sample names the services' metrics produce, read from their registries: every
    metrics object is created in-process (none touches Redis or Kafka until scraped)."""
    registry = CollectorRegistry()
    IngestMetrics(registry)
    SchedulerMetrics(registry, cast(Redis, None), 1, SystemClock())
    DialerMetrics(registry)
    DeliveryMetrics(registry, cast(Redis, None))
    ConsumerMetrics(registry, cast(KafkaBroker, None))
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return frozenset(names)


_METRIC = re.compile(rf"\b{PREFIX}_[A-Za-z0-9_]*")


def promql_metric_names(expr: str) -> set[str]:
    """The project's metric names a PromQL expression reads."""
    return set(_METRIC.findall(expr))


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def load_all(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def load(path: Path) -> Any:
    docs = load_all(path)
    assert len(docs) == 1, f"{path} holds {len(docs)} documents"
    return docs[0]


def compose() -> dict[str, Any]:
    return cast(dict[str, Any], load(DEPLOY / "compose.yaml"))


def compose_services() -> dict[str, dict[str, Any]]:
    """The compose services that run one of ours, by service name (from their command)."""
    found: dict[str, dict[str, Any]] = {}
    for spec in compose()["services"].values():
        command = spec.get("command") or []
        if command and str(command[0]).startswith("services."):
            found[str(command[0]).removeprefix("services.")] = spec
    return found


def k8s_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load_all(path):
            yield path, doc


def k8s_objects(kind: str) -> dict[str, dict[str, Any]]:
    """The kustomized manifests' objects of one kind, by name."""
    return {
        doc["metadata"]["name"]: doc
        for path, doc in k8s_documents()
        if path.name != "secret.example.yaml" and doc.get("kind") == kind
    }


def alert_rules() -> list[dict[str, Any]]:
    rules = load(DEPLOY / "prometheus" / "alerts.yml")
    return [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]


def dashboards() -> list[Path]:
    return sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))


def dashboard_exprs(path: Path) -> list[str]:
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    exprs: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            exprs.extend(str(t["expr"]) for t in panel.get("targets", []) if "expr" in t)
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    return exprs


_SELECTOR = re.compile(r"\b([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}")
_MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def label_matchers(expr: str) -> list[tuple[str, str, str, list[str]]]:
    """(metric, label, operator, values) for each label matcher of a selector in `expr`; a
    regular expression's alternatives are its values."""
    found: list[tuple[str, str, str, list[str]]] = []
    for metric, body in _SELECTOR.findall(expr):
        for label, op, value in _MATCHER.findall(body):
            values = value.split("|") if op in ("=~", "!~") else [value]
            found.append((metric, label, op, values))
    return found
