"""The scheduler and the dialer in-process on the real broker and Redis, sharing one clock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
from redis.asyncio import Redis

from devstack.processes import free_port
from services.dialer.app import Deps as DialerDeps
from services.dialer.app import create_app as create_dialer
from services.dialer.settings import DialerSettings
from services.scheduler.app import Deps as SchedulerDeps
from services.scheduler.app import create_app as create_scheduler
from services.scheduler.settings import SchedulerSettings
from shared.events import CallEvent, CallEventType, CallRequested
from shared.models import Agent, Call, Campaign, CampaignRules, CampaignStatus
from shared.settings import KafkaSettings, RedisSettings
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.topics import CALLS_REQUESTED
from tests.clock import MovableClock
from tests.support import ALWAYS_OPEN


def kafka_settings(bootstrap: str) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=bootstrap, session_timeout_ms=2000, heartbeat_interval_ms=300
    )


@contextlib.asynccontextmanager
async def running_pipeline(
    bootstrap: str,
    redis_url: str,
    clock: MovableClock,
    *,
    dialer: bool = True,
    schedulers: int = 1,
    dialer_overrides: dict[str, Any] | None = None,
    dialer_deps: DialerDeps | None = None,
    scheduler_deps: SchedulerDeps | None = None,
    **scheduler_overrides: Any,
) -> AsyncIterator[None]:
    """Starts `schedulers` scheduler apps (one consumer group) and optionally a dialer (its
    settings changed by `dialer_overrides`, its HTTP side on a free port unless they name one).
    `scheduler_deps` replace the schedulers' (the clock given by default)."""
    apps = [
        create_scheduler(
            SchedulerSettings(
                **{
                    "kafka": kafka_settings(bootstrap),
                    "redis": RedisSettings(url=redis_url),
                    "pump_interval_ms": 50,
                    "reap_interval_ms": 200,
                    "http_port": 0,
                    **scheduler_overrides,
                }
            ),
            scheduler_deps or SchedulerDeps(clock=clock),
        )
        for _ in range(schedulers)
    ]
    if dialer:
        apps.append(
            create_dialer(
                DialerSettings(
                    **{
                        "kafka": kafka_settings(bootstrap),
                        "redis": RedisSettings(url=redis_url),
                        "sandbox_ring_ms": 20,
                        "sandbox_talk_ms": 50,
                        "http_port": free_port(),
                        **(dialer_overrides or {}),
                    }
                ),
                dialer_deps or DialerDeps(clock=clock),
            )
        )
    async with contextlib.AsyncExitStack() as stack:
        for app in apps:
            await stack.enter_async_context(app)
        yield


async def seed_campaign(
    redis: Redis, now: datetime, campaign_id: str = "campaign-1", **rules: Any
) -> Campaign:
    """An active campaign (always open unless `rules` say otherwise) stored straight in Redis."""
    catalog = CatalogStore(redis)
    agent = Agent(id="agent-1", environment_id="env-a", name="A", prompt="Hi", created_at=now)
    await catalog.save_agent(agent)
    parsed = CampaignRules.model_validate({**ALWAYS_OPEN, "agent_id": agent.id, **rules})
    campaign = Campaign(
        **parsed.model_dump(),
        id=campaign_id,
        environment_id="env-a",
        status=CampaignStatus.ACTIVE,
        created_at=now,
        updated_at=now,
    )
    await catalog.save_campaign(campaign)
    return campaign


async def publish_requests(bootstrap: str, *messages: tuple[bytes, bytes]) -> None:
    """Publishes (body, key) pairs to the request topic, as another service would."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value, key in messages:
            await producer.send_and_wait(CALLS_REQUESTED, value, key=key)
    finally:
        await producer.stop()


def request(campaign_id: str, to: str, call_id: str, **extra: Any) -> tuple[bytes, bytes]:
    """A topic request and its documented key."""
    message = CallRequested(campaign_id=campaign_id, to=to, call_id=call_id, **extra)
    return message.model_dump_json().encode(), f"{campaign_id}:{to}".encode()


@dataclass
class Events:
    records: list[ConsumerRecord[bytes, bytes]]

    def all(self) -> list[CallEvent]:
        return [CallEvent.model_validate_json(r.value) for r in self.records]

    def of_types(self, *types: CallEventType) -> list[CallEvent]:
        return [e for e in self.all() if e.type in types]

    def of(self, call_id: str, *types: CallEventType) -> list[CallEvent]:
        return [e for e in self.all() if e.call_id == call_id and (not types or e.type in types)]


async def seed_calls(
    redis: Redis, campaign_id: str, count: int, now: datetime, *, enqueue: bool = True
) -> list[Call]:
    """`count` due calls to distinct numbers, stored (and queued) the way the scheduler does."""
    calls = CallStore(redis, 16)
    batch = [
        Call(
            id=f"{campaign_id}-{i}",
            campaign_id=campaign_id,
            environment_id="env-a",
            to=f"+1212555{i:04d}",
            attempt=1,
            scheduled_at=now,
            scheduling_reason="immediate",
            created_at=now,
            updated_at=now,
        )
        for i in range(count)
    ]
    for start in range(0, count, 250):
        chunk = batch[start : start + 250]
        await asyncio.gather(*(calls.accept(call, 3_600_000) for call in chunk))
        if enqueue:
            await asyncio.gather(*(calls.enqueue(call, now) for call in chunk))
    return batch
