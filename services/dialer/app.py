"""Composition root of the dialer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web
from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from services.dialer.adapters.attempts_redis import AttemptStore
from services.dialer.adapters.carrier_sandbox import SandboxCarrier
from services.dialer.adapters.carrier_twilio import (
    TwilioCarrier,
    TwilioConfig,
    open_twilio_carrier,
)
from services.dialer.callbacks import create_http_app
from services.dialer.domain.telephony import Carrier
from services.dialer.handlers import SANDBOX, DialerRuntime, DialHandler
from services.dialer.metrics import DialerMetrics
from services.dialer.settings import DialerSettings
from shared.bus import (
    FASTSTREAM_LOG,
    BulkSender,
    EventPublisher,
    batch_consumer,
    consume_batch,
    create_broker,
    records_of,
)
from shared.clock import Clock, SystemClock
from shared.metrics import ConsumerMetrics
from shared.ops_http import Ops, broker_check, consumers_check, redis_check, tasks_alive
from shared.redis_client import create_redis
from shared.shutdown import Deadline
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.store.dnc import DncStore
from shared.store.limits import DialLimits
from shared.topics import CALLS_DUE
from shared.tracing import Tracing

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Deps:
    redis: Redis | None = None
    broker: KafkaBroker | None = None
    clock: Clock | None = None
    # Spans go to this provider instead of the one the environment asks for.
    tracer_provider: TracerProvider | None = None


def _twilio_config(settings: DialerSettings) -> TwilioConfig:
    twilio = settings.twilio
    return TwilioConfig(
        account_sid=twilio.account_sid,
        auth_token=twilio.auth_token.get_secret_value(),
        from_number=twilio.from_number,
        api_url=twilio.api_url.rstrip("/"),
        public_url=settings.public_url.rstrip("/"),
        stream_url=settings.agent_stream_url,
        ring_timeout_seconds=settings.ring_timeout_seconds,
        request_timeout_seconds=settings.carrier_request_timeout_seconds,
        max_attempts=settings.carrier_max_tries,
    )


def create_app(settings: DialerSettings, deps: Deps | None = None) -> FastStream:
    deps = deps or Deps()
    broker = deps.broker or create_broker(
        settings.kafka, "dialer", graceful_timeout=settings.shutdown.drain_seconds
    )
    redis = deps.redis or create_redis(settings.redis)
    sandbox = SandboxCarrier(settings.sandbox_ring_ms, settings.sandbox_talk_ms)
    carriers: dict[str, Carrier] = {SANDBOX: sandbox}
    # Opened with the app (it needs the running loop); the callbacks work from the settings.
    opened: list[TwilioCarrier] = []
    twilio_wanted = settings.provider == "twilio"
    events = EventPublisher(BulkSender(settings.kafka, "dialer"))
    runtime = DialerRuntime(
        catalog=CatalogStore(redis),
        calls=CallStore(redis, settings.due_shards, settings.retention.call_retention_ms),
        attempts=AttemptStore(redis, settings.claim_ttl_seconds * 1000),
        broker=broker,
        events=events,
        carriers=carriers,
        provider=settings.provider,
        clock=deps.clock or SystemClock(),
        limits=DialLimits(redis, settings.dial_slot_lease_ms),
        dnc=DncStore(redis),
        callback_timeout=timedelta(seconds=settings.callback_timeout_seconds),
        placement_budget=timedelta(seconds=settings.placement_budget_seconds),
        status_lookups=settings.status_lookups,
        tracing=Tracing.for_service("dialer", settings.log.instance, deps.tracer_provider),
    )
    registry = CollectorRegistry()
    metrics = DialerMetrics(registry)
    consumer_metrics = ConsumerMetrics(registry, broker)
    handler = DialHandler(runtime, settings.max_in_flight, metrics)
    metrics.count_in_flight(lambda: handler.in_flight)
    if isinstance(carriers[SANDBOX], SandboxCarrier):
        carriers[SANDBOX].report_to(handler.on_sandbox_event)

    kafka = settings.kafka

    subscriber = broker.subscriber(CALLS_DUE, group_id=settings.group_id, **batch_consumer(kafka))

    @subscriber
    async def on_call_due(message: KafkaMessage) -> None:
        consumer_metrics.bind()
        await consume_batch(
            broker,
            records_of(message),
            CALLS_DUE,
            "dialer",
            lambda r: handler.on_call_due(r.value or b"", r.key, r.headers),
            kafka.batch_concurrency,
        )
        consumer_metrics.consumed(CALLS_DUE, len(message.raw_message))

    app = FastStream(broker, logger=FASTSTREAM_LOG)
    token = settings.twilio.auth_token.get_secret_value() if twilio_wanted else None
    http_app = create_http_app(handler, token, settings.public_url)
    background: list[asyncio.Task[None]] = []
    ops = Ops(registry)
    ops.checks.update(
        redis=redis_check(redis), kafka=broker_check(broker), consumers=consumers_check(broker)
    )
    ops.liveness.append(tasks_alive(background))
    ops.refreshers.append(consumer_metrics.refresh_lag)
    ops.add_routes(http_app)
    runner = web.AppRunner(http_app, access_log=None)

    @app.on_startup
    async def serve_http() -> None:
        await events.start()
        if twilio_wanted:
            twilio = await open_twilio_carrier(_twilio_config(settings))
            opened.append(twilio)
            carriers["twilio"] = twilio
        await runner.setup()
        await web.TCPSite(runner, settings.http_host, settings.http_port).start()

    @app.after_startup
    async def start_background() -> None:
        background.append(asyncio.create_task(handler.keep_held_slots(), name="held-slots"))
        background.append(
            asyncio.create_task(handler.watch(settings.watch_interval_ms / 1000), name="watch")
        )

    @app.on_shutdown
    async def drain() -> None:
        # Stop fetching first, then let what this copy started finish, all within one drain
        # budget.
        deadline = Deadline(settings.drain_budget)
        consumer = subscriber.consumer
        if consumer is not None:
            with contextlib.suppress(Exception):
                consumer.pause(*consumer.assignment())
        await handler.stop(deadline.left())
        await sandbox.drain(deadline.left())

    @app.after_shutdown
    async def close() -> None:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await runner.cleanup()
        await events.stop()
        await asyncio.to_thread(runtime.tracing.close)
        for carrier in opened:
            await carrier.close()
        if deps.redis is None:
            await redis.aclose()

    return app
