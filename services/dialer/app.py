"""Composition root of the dialer."""

from __future__ import annotations

from dataclasses import dataclass

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from redis.asyncio import Redis

from services.dialer.adapters.telephony_sandbox import SandboxTelephony
from services.dialer.domain.telephony import Telephony
from services.dialer.handlers import DialerRuntime, DialHandler
from services.dialer.settings import DialerSettings
from shared.bus import batch_consumer, consume_batch, create_broker, records_of
from shared.clock import Clock, SystemClock
from shared.redis_client import create_redis
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.store.dnc import DncStore
from shared.store.limits import DialLimits
from shared.topics import CALLS_DUE


@dataclass(slots=True)
class Deps:
    redis: Redis | None = None
    broker: KafkaBroker | None = None
    clock: Clock | None = None
    telephony: Telephony | None = None


def create_app(settings: DialerSettings, deps: Deps | None = None) -> FastStream:
    deps = deps or Deps()
    broker = deps.broker or create_broker(settings.kafka, "dialer")
    redis = deps.redis or create_redis(settings.redis)
    telephony = deps.telephony or SandboxTelephony(
        settings.sandbox_ring_ms, settings.sandbox_talk_ms
    )
    runtime = DialerRuntime(
        catalog=CatalogStore(redis),
        calls=CallStore(redis, settings.due_shards),
        broker=broker,
        telephony=telephony,
        clock=deps.clock or SystemClock(),
        claim_ttl_ms=settings.claim_ttl_seconds * 1000,
        limits=DialLimits(redis, settings.dial_slot_lease_ms),
        dnc=DncStore(redis),
    )
    handler = DialHandler(runtime, settings.max_in_flight)

    kafka = settings.kafka

    @broker.subscriber(
        CALLS_DUE,
        group_id=settings.group_id,
        **batch_consumer(kafka),
    )
    async def on_call_due(message: KafkaMessage) -> None:
        await consume_batch(
            broker,
            records_of(message),
            CALLS_DUE,
            "dialer",
            lambda r: handler.on_call_due(r.value or b"", r.key),
            kafka.batch_concurrency,
        )

    app = FastStream(broker)

    @app.on_shutdown
    async def drain() -> None:
        await handler.drain(settings.drain_seconds)

    @app.after_shutdown
    async def close_redis() -> None:
        if deps.redis is None:
            await redis.aclose()

    return app
