"""The notifier's metrics: webhook attempts by result and duration, and the queue of attempts
waiting for their time (read at scrape time)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from redis.asyncio import Redis

from shared import keys
from shared.metrics import PREFIX
from shared.rules.delivery_retries import DeliveryState

DELIVERED = "delivered"
FAILED = "failed"
RETRY_SCHEDULED = "retry_scheduled"
DISABLED = "disabled"
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class DeliveryMetrics:
    def __init__(self, registry: CollectorRegistry, redis: Redis) -> None:
        self._redis = redis
        deliveries = Counter(
            f"{PREFIX}_webhook_deliveries_total",
            "Webhook attempts, by result: delivered (a 2xx), retry_scheduled (failed, another "
            "attempt queued), failed (failed, no attempt left) or disabled (not sent: the "
            "webhook is disabled).",
            ["result"],
            registry=registry,
        )
        self._delivered = deliveries.labels(DELIVERED)
        self._failed = deliveries.labels(FAILED)
        self._retry = deliveries.labels(RETRY_SCHEDULED)
        self._disabled = deliveries.labels(DISABLED)
        self._duration = Histogram(
            f"{PREFIX}_webhook_delivery_duration_seconds",
            "How long a webhook took to answer an attempt (or to fail it), as measured by "
            "the sender.",
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self._pending = Gauge(
            f"{PREFIX}_webhook_retries_pending",
            "Attempts queued for later (first attempts, retries, test events and "
            "redeliveries not yet claimed); read at scrape time.",
            registry=registry,
        )

    def attempted(self, sent: bool, ok: bool, latency_s: float, state: DeliveryState) -> None:
        """One attempt made (or skipped, `sent` False) and where it left its delivery."""
        if not sent:
            self._disabled.inc()
            return
        self._duration.observe(latency_s)
        if ok:
            self._delivered.inc()
        elif state is DeliveryState.PENDING:
            self._retry.inc()
        else:
            self._failed.inc()

    async def refresh(self) -> None:
        self._pending.set(await self._redis.zcard(keys.webhook_retry_queue()))
