"""Every deployment file parses, and the helpers the other checks rest on read the settings and
metrics the way the services do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.dialer.settings import DialerSettings
from services.ingest.settings import IngestSettings
from services.notifier.settings import NotifierSettings
from shared.settings import ObservabilitySettings

from .support import (
    DEPLOY,
    env_names,
    exported_metric_names,
    load_all,
    promql_metric_names,
    yaml_files,
)


def test_the_deploy_directory_has_yaml_files() -> None:
    names = {p.relative_to(DEPLOY).as_posix() for p in yaml_files()}
    assert {"compose.yaml", "k8s/kustomization.yaml", "prometheus/alerts.yml"} <= names


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_every_yaml_file_parses(path: Path) -> None:
    assert load_all(path), f"{path} holds no document"


@pytest.mark.parametrize(
    "path",
    sorted(DEPLOY.rglob("*.json")),
    ids=lambda p: p.relative_to(DEPLOY).as_posix(),
)
def test_every_json_file_parses(path: Path) -> None:
    assert json.loads(path.read_text(encoding="utf-8"))


def test_env_names_follow_prefixes_aliases_and_nested_models() -> None:
    ingest = env_names(IngestSettings)
    # Aliases, the prefixed field beside them (populate_by_name), nested models' prefixes.
    assert {"API_PORT", "INGEST_PORT", "API_TOKENS", "DEV_API_TOKEN", "INGEST_DEV_API_TOKEN"} <= (
        ingest
    )
    assert {"INGEST_HEADER_TIMEOUT_SECONDS", "KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"} <= ingest
    assert {"LOG_JSON", "LOG_LEVEL", "SERVICE_INSTANCE", "CALL_RETENTION_SECONDS"} <= ingest
    assert "DIAL_SLOT_LEASE_MS" not in ingest
    # An alias without populate_by_name: only the alias.
    assert "LOG_JSON_LOGS" not in env_names(ObservabilitySettings)
    assert {"TWILIO_AUTH_TOKEN", "DIALER_HTTP_PORT", "AGENT_STREAM_URL"} <= env_names(
        DialerSettings
    )
    assert "CALL_RETENTION_SECONDS" in env_names(NotifierSettings)


def test_exported_metric_names_carry_prometheus_client_suffixes() -> None:
    names = exported_metric_names()
    assert "campaign_calls_webhook_deliveries_total" in names
    assert "campaign_calls_webhook_deliveries" not in names
    assert {
        "campaign_calls_http_request_duration_seconds_bucket",
        "campaign_calls_http_request_duration_seconds_count",
        "campaign_calls_http_request_duration_seconds_sum",
    } <= names
    assert {"campaign_calls_consumer_lag", "campaign_calls_due_oldest_lag_seconds"} <= names


def test_promql_metric_names_ignores_labels_and_functions() -> None:
    expr = (
        'sum by (result) (rate(campaign_calls_webhook_deliveries_total{result="failed"}[5m]))'
        " / on() up{job='campaign_calls_x'}"
    )
    assert promql_metric_names(expr) == {
        "campaign_calls_webhook_deliveries_total",
        "campaign_calls_x",
    }
