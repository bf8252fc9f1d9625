"""Composition root of the scheduler: consumers of requests and outcomes, and the due pump."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from services.scheduler.due_pump import DuePump
from services.scheduler.finisher import CampaignFinisher
from services.scheduler.handlers import OutcomeHandler, RequestHandler, SchedulerRuntime
from services.scheduler.metrics import SchedulerMetrics
from services.scheduler.retention import RetentionSweeper
from services.scheduler.settings import SchedulerSettings
from shared.bus import (
    FASTSTREAM_LOG,
    BulkSender,
    batch_consumer,
    consume_batch,
    create_broker,
    log_batch,
    publish_events,
    records_of,
)
from shared.calls.accept import AcceptCall, StoredCampaigns
from shared.clock import Clock, SystemClock
from shared.metrics import ConsumerMetrics
from shared.ops_http import Ops, broker_check, consumers_check, redis_check, tasks_alive
from shared.phone import warm_up
from shared.redis_client import create_redis
from shared.shutdown import stop_tasks
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.store.dnc import DncStore
from shared.store.limits import DialLimits, NumberCooldowns
from shared.topics import CALLS_EVENTS, CALLS_REQUESTED
from shared.tracing import Tracing


@dataclass(slots=True)
class Deps:
    redis: Redis | None = None
    broker: KafkaBroker | None = None
    clock: Clock | None = None
    # Spans go to this provider instead of the one the environment asks for.
    tracer_provider: TracerProvider | None = None


def create_app(settings: SchedulerSettings, deps: Deps | None = None) -> FastStream:
    deps = deps or Deps()
    broker = deps.broker or create_broker(
        settings.kafka, "scheduler", graceful_timeout=settings.shutdown.drain_seconds
    )
    redis = deps.redis or create_redis(settings.redis)
    catalog = CatalogStore(redis)
    calls = CallStore(redis, settings.due_shards, settings.retention.call_retention_ms)
    clock = deps.clock or SystemClock()
    dnc = DncStore(redis)
    runtime = SchedulerRuntime(
        catalog=catalog,
        calls=calls,
        broker=broker,
        clock=clock,
        # Every request read from the topic is checked against the campaign as stored now.
        accept_call=AcceptCall(
            calls,
            dnc,
            StoredCampaigns(catalog),
            clock,
            settings.reservation_ttl_seconds * 1000,
        ),
        limits=DialLimits(redis, settings.dial_slot_lease_ms),
        dnc=dnc,
        cooldowns=NumberCooldowns(redis),
        sender=BulkSender(settings.kafka, "scheduler"),
        tracing=Tracing.for_service("scheduler", settings.log.instance, deps.tracer_provider),
    )
    registry = CollectorRegistry()
    metrics = SchedulerMetrics(registry, redis, settings.due_shards, clock)
    consumer_metrics = ConsumerMetrics(registry, broker)
    kafka = settings.kafka
    requests = RequestHandler(runtime, kafka.batch_concurrency)
    outcomes = OutcomeHandler(runtime)
    pump = DuePump(
        runtime,
        claim_batch=settings.claim_batch,
        lease_ms=settings.lease_ms,
        interval_ms=settings.pump_interval_ms,
        reap_interval_ms=settings.reap_interval_ms,
        hold_recheck_ms=settings.hold_recheck_ms,
        slot_recheck_ms=settings.slot_recheck_ms,
        claim_ttl_ms=settings.claim_ttl_seconds * 1000,
        handoff_grace_ms=settings.handoff_grace_ms,
        released=metrics.released,
    )
    runtime.queued = pump.wake

    finisher = CampaignFinisher(
        catalog,
        calls,
        clock,
        lambda events: publish_events(broker, events),
        chunk=settings.finish_chunk,
        interval_ms=settings.finish_interval_ms,
        lease_ms=settings.finish_lease_ms,
    )
    sweeper = RetentionSweeper(
        calls,
        clock,
        batch=settings.retention_batch,
        interval_ms=settings.retention_interval_ms,
    )

    @broker.subscriber(
        CALLS_REQUESTED,
        group_id=settings.group_id,
        **batch_consumer(kafka),
    )
    async def on_call_requested(message: KafkaMessage) -> None:
        consumer_metrics.bind()
        records = records_of(message)
        if runtime.tracing.on:
            # Each request in the span of its message's trace: one record at a time.
            await consume_batch(
                broker,
                records,
                CALLS_REQUESTED,
                "scheduler",
                lambda r: requests.on_call_requested(
                    r.value or b"", r.key, r.partition, r.offset, r.headers
                ),
                kafka.batch_concurrency,
            )
        else:
            await requests.on_batch(records)
            log_batch(records, CALLS_REQUESTED)
        consumer_metrics.consumed(CALLS_REQUESTED, len(records))

    @broker.subscriber(
        CALLS_EVENTS,
        group_id=f"{settings.group_id}-outcomes",
        **batch_consumer(kafka),
    )
    async def on_call_event(message: KafkaMessage) -> None:
        consumer_metrics.bind()
        records = records_of(message)
        if runtime.tracing.on:
            # Each outcome in the span of its message's trace: one record at a time.
            await consume_batch(
                broker,
                records,
                CALLS_EVENTS,
                "scheduler",
                lambda r: outcomes.on_call_event(r.value or b"", r.key, r.headers),
                kafka.batch_concurrency,
            )
        else:
            await outcomes.on_batch(records)
            log_batch(records, CALLS_EVENTS)
        consumer_metrics.consumed(CALLS_EVENTS, len(records))

    app = FastStream(broker, logger=FASTSTREAM_LOG)
    tasks: list[asyncio.Task[None]] = []
    ops = Ops(registry)
    ops.checks.update(
        redis=redis_check(redis), kafka=broker_check(broker), consumers=consumers_check(broker)
    )
    ops.liveness.append(tasks_alive(tasks))
    ops.refreshers += [metrics.refresh, consumer_metrics.refresh_lag]

    @app.on_startup
    async def serve_ops() -> None:
        await ops.start(settings.http_host, settings.http_port)
        # Before the consumers start: both consumers publish through it.
        await runtime.sender.start()

    @app.after_startup
    async def start_pump() -> None:
        warm_up()
        tasks.append(asyncio.create_task(pump.run(), name="due-pump"))
        tasks.append(asyncio.create_task(finisher.run(), name="campaign-finisher"))
        tasks.append(asyncio.create_task(sweeper.run(), name="retention-sweep"))

    @app.on_shutdown
    async def stop_pump() -> None:
        # Each loop ends its pass (the pump hands what it claimed to the dialer); a pass
        # still running after the drain budget is cancelled: its claims' leases run out and
        # another copy releases them.
        pump.stop()
        finisher.stop()
        sweeper.stop()
        await stop_tasks(tasks, settings.shutdown.drain_seconds)

    @app.after_shutdown
    async def close_redis() -> None:
        await ops.stop()
        await runtime.sender.stop()
        await asyncio.to_thread(runtime.tracing.close)
        if deps.redis is None:
            await redis.aclose()

    return app
