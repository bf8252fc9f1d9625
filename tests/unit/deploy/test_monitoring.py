"""The alert rules and dashboards read only metrics the services export, and each alert has its
runbook entry."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from services.dialer import metrics as dialer_metrics
from services.ingest.metrics import CALL_RESULTS
from services.notifier import metrics as notifier_metrics

from .support import (
    DEPLOY,
    SETTINGS,
    alert_rules,
    dashboard_exprs,
    dashboards,
    exported_metric_names,
    label_matchers,
    load,
    promql_metric_names,
)

# What the dashboard must show (by the metric that shows it).
DASHBOARD_METRICS = {
    "campaign_calls_http_requests_total",  # request rate
    "campaign_calls_http_request_duration_seconds_bucket",  # latency
    "campaign_calls_call_requests_total",  # call requests by result
    "campaign_calls_released_total",
    "campaign_calls_due_oldest_lag_seconds",
    "campaign_calls_dial_attempts_total",
    "campaign_calls_dials_in_flight",
    "campaign_calls_webhook_deliveries_total",
    "campaign_calls_webhook_retries_pending",
    "campaign_calls_consumer_lag",
    "campaign_calls_dlq_messages_total",
}
# What the alerts must watch.
ALERTED_METRICS = {
    "campaign_calls_consumer_lag",
    "campaign_calls_due_oldest_lag_seconds",
    "campaign_calls_webhook_deliveries_total",
    "campaign_calls_dlq_messages_total",
}

# The values the services give these labels: a matcher on any other value matches nothing.
LABEL_VALUES = {
    ("campaign_calls_webhook_deliveries_total", "result"): {
        notifier_metrics.DELIVERED,
        notifier_metrics.FAILED,
        notifier_metrics.RETRY_SCHEDULED,
        notifier_metrics.DISABLED,
    },
    ("campaign_calls_call_requests_total", "result"): set(CALL_RESULTS),
    ("campaign_calls_dial_attempts_total", "outcome"): {
        dialer_metrics.PLACED,
        dialer_metrics.FAILED,
    },
    # The scrape jobs are the services.
    ("up", "job"): set(SETTINGS),
}


def all_exprs() -> list[str]:
    return [str(rule["expr"]) for rule in alert_rules()] + [
        e for path in dashboards() for e in dashboard_exprs(path)
    ]


def test_label_matchers_are_found_in_selectors() -> None:
    expr = 'sum(rate(m_total{result=~"a|b", job = "x"}[5m])) / up{job!="y"}'
    assert label_matchers(expr) == [
        ("m_total", "result", "=~", ["a", "b"]),
        ("m_total", "job", "=", ["x"]),
        ("up", "job", "!=", ["y"]),
    ]


def test_label_matchers_name_values_the_services_produce() -> None:
    checked = 0
    for expr in all_exprs():
        for metric, label, _, values in label_matchers(expr):
            allowed = LABEL_VALUES.get((metric, label))
            assert allowed is not None, f"no known values for {metric}{{{label}}} in {expr}"
            assert set(values) <= allowed, f"{metric}{{{label}}}: {set(values) - allowed}"
            checked += 1
    assert checked


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: str(r["alert"]))
def test_alert_reads_only_exported_metrics(rule: dict[str, Any]) -> None:
    used = promql_metric_names(str(rule["expr"]))
    unknown = used - exported_metric_names()
    assert not unknown, f"{rule['alert']} reads metrics no service exports: {sorted(unknown)}"
    assert used or "up" in str(rule["expr"]), f"{rule['alert']} reads no metric"


def test_alerts_cover_lag_dlq_webhooks_and_down_services() -> None:
    exprs = [str(rule["expr"]) for rule in alert_rules()]
    used = set().union(*(promql_metric_names(e) for e in exprs))
    assert used >= ALERTED_METRICS
    assert any(re.search(r"\bup\b.*== 0", e) for e in exprs)
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names))


def test_prometheus_loads_the_alert_rules() -> None:
    config = load(DEPLOY / "prometheus" / "prometheus.yml")
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]


@pytest.mark.parametrize("path", dashboards(), ids=lambda p: p.name)
def test_dashboard_reads_only_exported_metrics(path: Path) -> None:
    exprs = dashboard_exprs(path)
    assert exprs
    used = set().union(*(promql_metric_names(e) for e in exprs))
    unknown = used - exported_metric_names()
    assert not unknown, f"{path.name} reads metrics no service exports: {sorted(unknown)}"


def test_dashboard_shows_every_service() -> None:
    used = set().union(
        *(promql_metric_names(e) for path in dashboards() for e in dashboard_exprs(path))
    )
    assert used >= DASHBOARD_METRICS, sorted(DASHBOARD_METRICS - used)


def test_grafana_panels_use_the_provisioned_datasource() -> None:
    datasources = load(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml")
    uids = {d["uid"] for d in datasources["datasources"]}
    for path in dashboards():
        text = path.read_text(encoding="utf-8")
        used = set(re.findall(r'"uid":\s*"([^"]+)"', text)) - {path.stem}
        assert used <= uids, f"{path.name} names datasources {sorted(used - uids)}"


def test_every_alert_has_a_runbook_entry() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^#+ +`?([A-Za-z]+)`?\s*$", readme, flags=re.MULTILINE))
    for rule in alert_rules():
        assert rule["alert"] in headings, f"deploy/README.md has no runbook for {rule['alert']}"
        anchor = str(rule["annotations"]["runbook"]).split("#", 1)[1]
        assert anchor == str(rule["alert"]).lower()
