"""Composition root of the notifier."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from services.notifier.adapters.webhook_http import HttpWebhookSender
from services.notifier.dispatch import Dispatcher, WebhookSender
from services.notifier.handlers import NotifierRuntime, NotifyHandler
from services.notifier.metrics import DeliveryMetrics
from services.notifier.settings import NotifierSettings
from services.notifier.workers import DeliveryWorkers
from shared.bus import (
    FASTSTREAM_LOG,
    batch_consumer,
    consume_batch,
    create_broker,
    log_batch,
    records_of,
)
from shared.clock import Clock, SystemClock
from shared.metrics import ConsumerMetrics
from shared.ops_http import Ops, broker_check, consumers_check, redis_check, tasks_alive
from shared.redis_client import create_redis
from shared.rules.delivery_retries import RetryPolicy
from shared.shutdown import Deadline, stop_tasks
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.store.deliveries import DeliveryStore
from shared.topics import CALLS_EVENTS, CAMPAIGN_EVENTS
from shared.tracing import Tracing


@dataclass(slots=True)
class Deps:
    redis: Redis | None = None
    broker: KafkaBroker | None = None
    clock: Clock | None = None
    sender: WebhookSender | None = None
    # Spans go to this provider instead of the one the environment asks for.
    tracer_provider: TracerProvider | None = None


def create_app(settings: NotifierSettings, deps: Deps | None = None) -> FastStream:
    deps = deps or Deps()
    broker = deps.broker or create_broker(
        settings.kafka, "notifier", graceful_timeout=settings.shutdown.drain_seconds
    )
    redis = deps.redis or create_redis(settings.redis)
    clock = deps.clock or SystemClock()
    traced = Tracing.for_service("notifier", settings.log.instance, deps.tracer_provider)
    http_sender = HttpWebhookSender(settings.max_in_flight, settings.allow_private_targets)
    registry = CollectorRegistry()
    metrics = DeliveryMetrics(registry, redis)
    consumer_metrics = ConsumerMetrics(registry, broker)
    catalog = CatalogStore(redis)
    deliveries = DeliveryStore(redis, settings.keep_attempts, keep_ms=settings.keep_deliveries_ms)
    dispatcher = Dispatcher(
        deliveries,
        catalog,
        deps.sender or http_sender,
        clock,
        RetryPolicy(settings.retry_scale, settings.retry_after_max_seconds),
        settings.claim_margin_ms,
        metrics,
        traced,
    )
    workers = DeliveryWorkers(
        deliveries,
        catalog,
        dispatcher,
        clock,
        interval_ms=settings.poll_ms,
        max_in_flight=settings.max_in_flight,
        per_endpoint=settings.endpoint_concurrency,
        lease_ms=settings.lease_ms,
        busy_retry_ms=settings.endpoint_busy_retry_ms,
        waiting_s=settings.endpoint_waiting_ms / 1000,
    )
    runtime = NotifierRuntime(
        catalog=catalog,
        calls=CallStore(redis, due_shards=1),
        broker=broker,
        dispatcher=dispatcher,
        workers=workers,
        store_wait_s=settings.store_wait_ms / 1000,
        tracing=traced,
    )
    handler = NotifyHandler(runtime)

    kafka = settings.kafka
    options = batch_consumer(kafka)

    @broker.subscriber(CALLS_EVENTS, group_id=settings.group_id, **options)
    async def on_call_event(message: KafkaMessage) -> None:
        consumer_metrics.bind()
        records = records_of(message)
        again = await handler.on_call_events(records)
        if not again:
            log_batch(records, CALLS_EVENTS)
            consumer_metrics.consumed(CALLS_EVENTS, len(records))
            return
        await consume_batch(
            broker,
            again,
            CALLS_EVENTS,
            "notifier",
            lambda r: handler.on_call_event(r.value or b"", r.key, r.headers),
            kafka.batch_concurrency,
        )
        consumer_metrics.consumed(CALLS_EVENTS, len(records))

    # A group of its own, as each of the scheduler's consumers has: two consumers with
    # different topics in one group rejoined it unreliably after a clean stop.
    @broker.subscriber(CAMPAIGN_EVENTS, group_id=f"{settings.group_id}-campaigns", **options)
    async def on_campaign_event(message: KafkaMessage) -> None:
        consumer_metrics.bind()
        await consume_batch(
            broker,
            records_of(message),
            CAMPAIGN_EVENTS,
            "notifier",
            lambda r: handler.on_campaign_event(r.value or b"", r.key, r.headers),
            kafka.batch_concurrency,
        )
        consumer_metrics.consumed(CAMPAIGN_EVENTS, len(message.raw_message))

    app = FastStream(broker, logger=FASTSTREAM_LOG)
    tasks: list[asyncio.Task[None]] = []
    ops = Ops(registry)
    ops.checks.update(
        redis=redis_check(redis), kafka=broker_check(broker), consumers=consumers_check(broker)
    )
    ops.liveness.append(tasks_alive(tasks))
    ops.refreshers += [metrics.refresh, consumer_metrics.refresh_lag]

    @app.on_startup
    async def open_pool() -> None:
        await http_sender.start()
        await ops.start(settings.http_host, settings.http_port)

    @app.after_startup
    async def start_workers() -> None:
        tasks.append(asyncio.create_task(workers.run(), name="webhook-deliveries"))

    @app.on_shutdown
    async def stop_workers() -> None:
        # No new claims; the attempts under way get the drain budget, then are cancelled
        # (their claims come back when their leases run out).
        deadline = Deadline(settings.drain_budget)
        workers.stop()
        await stop_tasks(tasks, deadline.left())
        await workers.drain(deadline.left())

    @app.after_shutdown
    async def close() -> None:
        await ops.stop()
        await http_sender.close()
        await asyncio.to_thread(traced.close)
        if deps.redis is None:
            await redis.aclose()

    return app
