"""The notifier's attempt metrics as a scrape shows them, against prometheus_client's own
counter and histogram fed the same attempts."""

from __future__ import annotations

from typing import cast

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from services.notifier.metrics import _DURATION_BUCKETS, DeliveryMetrics
from shared.rules.delivery_retries import DeliveryState

ATTEMPTS = [
    (True, True, 0.004, DeliveryState.DELIVERED),
    (True, True, 0.005, DeliveryState.DELIVERED),  # on a bound: counted in it
    (True, False, 0.3, DeliveryState.PENDING),
    (True, False, 31.0, DeliveryState.FAILED),  # beyond every bound
    (False, False, 0.0, DeliveryState.FAILED),  # not sent: the webhook is disabled
]


def _samples(
    registry: CollectorRegistry, prefix: str
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith(prefix)
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_attempts_are_counted_as_prometheus_client_counts_them() -> None:
    registry = CollectorRegistry()
    metrics = DeliveryMetrics(registry, cast(Redis, None))
    reference = CollectorRegistry()
    results = Counter("campaign_calls_webhook_deliveries", "", ["result"], registry=reference)
    for result in ("delivered", "failed", "retry_scheduled", "disabled"):
        results.labels(result)
    duration = Histogram(
        "campaign_calls_webhook_delivery_duration_seconds",
        "",
        buckets=_DURATION_BUCKETS,
        registry=reference,
    )

    for sent, ok, latency_s, state in ATTEMPTS:
        metrics.attempted(sent, ok, latency_s, state)
        if not sent:
            results.labels("disabled").inc()
            continue
        duration.observe(latency_s)
        result = (
            "delivered" if ok else "retry_scheduled" if state is DeliveryState.PENDING else "failed"
        )
        results.labels(result).inc()

    ours = _samples(registry, "campaign_calls_webhook_deliver")
    assert ours == _samples(reference, "campaign_calls_webhook_deliver")
    assert (
        ours[("campaign_calls_webhook_deliveries_total", frozenset({("result", "delivered")}))] == 2
    )
