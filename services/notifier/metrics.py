"""The notifier's metrics: webhook attempts by result and duration, and the queue of attempts
waiting for their time (read at scrape time)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate

from prometheus_client import CollectorRegistry, Gauge, Metric
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
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
    """Counted in plain numbers as attempts are made (no lock or metric object per attempt),
    made metric families at scrape time."""

    def __init__(self, registry: CollectorRegistry, redis: Redis) -> None:
        self._redis = redis
        self._results = dict.fromkeys((DELIVERED, FAILED, RETRY_SCHEDULED, DISABLED), 0)
        # Attempts per duration bucket (the last: beyond every bound), and their sum.
        self._buckets = [0] * (len(_DURATION_BUCKETS) + 1)
        self._seconds = 0.0
        self._pending = Gauge(
            f"{PREFIX}_webhook_retries_pending",
            "Attempts queued for later (first attempts, retries, test events and "
            "redeliveries not yet claimed); read at scrape time.",
            registry=registry,
        )
        registry.register(self)

    def attempted(self, sent: bool, ok: bool, latency_s: float, state: DeliveryState) -> None:
        """One attempt made (or skipped, `sent` False) and where it left its delivery."""
        results = self._results
        if not sent:
            results[DISABLED] += 1
            return
        # The first bucket whose bound the duration does not exceed, as Prometheus counts.
        self._buckets[bisect_left(_DURATION_BUCKETS, latency_s)] += 1
        self._seconds += latency_s
        if ok:
            results[DELIVERED] += 1
        elif state is DeliveryState.PENDING:
            results[RETRY_SCHEDULED] += 1
        else:
            results[FAILED] += 1

    def collect(self) -> Iterator[Metric]:
        deliveries = CounterMetricFamily(
            f"{PREFIX}_webhook_deliveries",
            "Webhook attempts, by result: delivered (a 2xx), retry_scheduled (failed, another "
            "attempt queued), failed (failed, no attempt left) or disabled (not sent: the "
            "webhook is disabled).",
            labels=["result"],
        )
        for result, count in self._results.items():
            deliveries.add_metric([result], count)
        cumulative = list(accumulate(self._buckets))
        duration = HistogramMetricFamily(
            f"{PREFIX}_webhook_delivery_duration_seconds",
            "How long a webhook took to answer an attempt (or to fail it), as measured by "
            "the sender.",
            buckets=[
                (repr(bound), float(n))
                for bound, n in zip(_DURATION_BUCKETS, cumulative, strict=False)
            ]
            + [("+Inf", float(cumulative[-1]))],
            sum_value=self._seconds,
        )
        return iter((deliveries, duration))

    async def refresh(self) -> None:
        self._pending.set(await self._redis.zcard(keys.webhook_retry_queue()))
