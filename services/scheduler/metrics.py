"""The scheduler's metrics: calls released to the dialer, and the due queue read at scrape time."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.asyncio import Redis

from shared import keys
from shared.clock import Clock, to_ms
from shared.metrics import PREFIX


class SchedulerMetrics:
    def __init__(
        self, registry: CollectorRegistry, redis: Redis, due_shards: int, clock: Clock
    ) -> None:
        self._redis = redis
        self._shards = due_shards
        self._clock = clock
        self.released = Counter(
            f"{PREFIX}_released_total",
            "Calls the due pump handed to the dialer (one per attempt released).",
            registry=registry,
        )
        self._depth = Gauge(
            f"{PREFIX}_due_queue_depth",
            "Calls waiting in the due queue, over every shard: those due now and those "
            "scheduled for later (a calling window, a retry); read at scrape time.",
            registry=registry,
        )
        self._oldest_lag = Gauge(
            f"{PREFIX}_due_oldest_lag_seconds",
            "How long the earliest call in the due queue has been due (0 when none is due "
            "yet); read at scrape time.",
            registry=registry,
        )

    async def refresh(self) -> None:
        """Reads every due shard's size and earliest due time."""
        shards = range(self._shards)
        sizes, firsts = await asyncio.gather(
            asyncio.gather(*(self._redis.zcard(keys.due_queue(s)) for s in shards)),
            asyncio.gather(
                *(self._redis.zrange(keys.due_queue(s), 0, 0, withscores=True) for s in shards)
            ),
        )
        self._depth.set(sum(int(size) for size in sizes))
        earliest = min((float(first[0][1]) for first in firsts if first), default=None)
        now_ms = to_ms(self._clock.now())
        self._oldest_lag.set(0.0 if earliest is None else max(0.0, (now_ms - earliest) / 1000))
