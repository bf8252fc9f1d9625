"""Prometheus metrics every consumer shares: records handled, records parked on the DLQ and the
lag of each consumer group, in the registry of one app (so several apps in one process keep
their counts apart).

The DLQ is reached from deep inside the handlers (`shared.bus.send_to_dlq`); the counter of the
app whose consumer is handling the batch is found through a context variable each subscriber
sets (`bind`), so no handler needs to carry it.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextvars import ContextVar
from typing import Any

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Counter, Gauge

PREFIX = "campaign_calls"

_current: ContextVar[ConsumerMetrics | None] = ContextVar("consumer_metrics", default=None)


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry, broker: KafkaBroker) -> None:
        self._broker = broker
        self._consumed = Counter(
            f"{PREFIX}_messages_consumed_total",
            "Records a consumer handled, by topic (a batch delivered again after a transient "
            "failure counts again).",
            ["topic"],
            registry=registry,
        )
        self._dlq = Counter(
            f"{PREFIX}_dlq_messages_total",
            "Records parked on the dead-letter topic, by the topic they came from.",
            ["topic"],
            registry=registry,
        )
        self._lag = Gauge(
            f"{PREFIX}_consumer_lag",
            "Records on the partitions this process consumes that it has not fetched yet "
            "(high watermark minus position, summed per topic), read at scrape time.",
            ["topic", "group"],
            registry=registry,
        )
        self._consumed_of: dict[str, Any] = {}
        self._dlq_of: dict[str, Any] = {}

    def bind(self) -> None:
        """Makes this app's counters the ones records parked on the DLQ from here count in."""
        _current.set(self)

    def consumed(self, topic: str, count: int) -> None:
        child = self._consumed_of.get(topic)
        if child is None:
            child = self._consumed_of[topic] = self._consumed.labels(topic)
        child.inc(count)

    def parked(self, topic: str) -> None:
        child = self._dlq_of.get(topic)
        if child is None:
            child = self._dlq_of[topic] = self._dlq.labels(topic)
        child.inc()

    async def refresh_lag(self) -> None:
        """Sets each consumer's lag from its client: what the broker holds beyond where the
        consumer is, over the partitions assigned to it now (0 with none)."""
        for subscriber in self._broker.subscribers:
            consumer: Any = getattr(subscriber, "consumer", None)
            group = str(getattr(subscriber, "group_id", None) or "")
            lags: dict[str, int] = {
                topic: 0 for topic in getattr(subscriber, "topic_names_for_subscribe", ())
            }
            if consumer is not None:
                for partition in list(consumer.assignment()):
                    highwater = consumer.highwater(partition)
                    if highwater is None:
                        continue
                    with contextlib.suppress(Exception):
                        position = await asyncio.wait_for(consumer.position(partition), 0.5)
                        lags[partition.topic] = lags.get(partition.topic, 0) + max(
                            0, highwater - position
                        )
            for topic, lag in lags.items():
                self._lag.labels(topic, group).set(lag)


def parked_on_dlq(topic: str) -> None:
    """Counts a record parked on the DLQ in the metrics of the app handling it, if any."""
    metrics = _current.get()
    if metrics is not None:
        metrics.parked(topic)
