"""The scheduler's outcome consumer in-process on the real broker and Redis: a fetched batch
handled in waves, each call's records in order, a bad record parked alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from services.scheduler.app import create_app
from services.scheduler.settings import SchedulerSettings
from shared.bus import DLQ_ERROR_HEADER
from shared.events import CallEvent, CallEventType, call_event
from shared.models import Agent, Call, CallStatus, Campaign, CampaignRules, CampaignStatus
from shared.settings import KafkaSettings
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.topics import CALLS_DLQ, CALLS_EVENTS, call_key
from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.support import ALWAYS_OPEN, read_topic

pytestmark = pytest.mark.integration


async def _campaign(redis: Redis, now: datetime) -> Campaign:
    catalog = CatalogStore(redis)
    agent = Agent(id="agent-1", environment_id="env-a", name="A", prompt="p", created_at=now)
    await catalog.save_agent(agent)
    rules = CampaignRules.model_validate(
        {**ALWAYS_OPEN, "agent_id": agent.id, "max_retries": 1, "no_answer_cooldown_hours": 1}
    )
    campaign = Campaign(
        **rules.model_dump(),
        id="campaign-1",
        environment_id="env-a",
        status=CampaignStatus.ACTIVE,
        created_at=now,
        updated_at=now,
    )
    await catalog.save_campaign(campaign)
    return campaign


async def _stored_calls(redis: Redis, campaign: Campaign, now: datetime, count: int) -> list[Call]:
    """Queued calls not due for an hour, so the due pump leaves them alone."""
    store = CallStore(redis, 16)
    calls = []
    for index in range(count):
        call = Call(
            id=f"call-{index}",
            campaign_id=campaign.id,
            environment_id=campaign.environment_id,
            to=f"+1212555010{index}",
            attempt=1,
            scheduled_at=now + timedelta(hours=1),
            scheduling_reason="immediate",
            created_at=now,
            updated_at=now,
        )
        assert (await store.accept(call, 60_000, now)).outcome == "accepted"
        await store.enqueue(call, now)
        calls.append(call)
    return calls


def _ended(call: Call, outcome: str, now: datetime) -> CallEvent:
    return call_event(
        call,
        CallEventType.ATTEMPT_ENDED,
        now,
        attempt=1,
        max_attempts=2,
        status=outcome,
        outcome=outcome,
    )


async def test_a_batch_keeps_each_calls_order_and_parks_only_its_bad_records(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis
) -> None:
    now = datetime.now(UTC)
    campaign = await _campaign(redis, now)
    answered, unknown, unanswered = await _stored_calls(redis, campaign, now, 3)
    started = call_event(
        answered,
        CallEventType.STARTED,
        now,
        attempt=1,
        max_attempts=2,
        status=CallStatus.IN_PROGRESS.value,
    )
    records = [
        (call_key(answered.id), started.model_dump_json().encode()),
        (call_key(unknown.id), _ended(unknown, "exploded", now).model_dump_json().encode()),
        (b"bad", b"{not json"),
        (call_key(answered.id), _ended(answered, "completed", now).model_dump_json().encode()),
        (call_key(unanswered.id), _ended(unanswered, "no_answer", now).model_dump_json().encode()),
    ]
    # Published before the scheduler starts, so that its first fetch holds them all.
    producer = AIOKafkaProducer(bootstrap_servers=kafka_server.bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(CALLS_EVENTS, value, key=key)
    finally:
        await producer.stop()
    settings = SchedulerSettings(
        kafka=KafkaSettings(
            bootstrap_servers=kafka_server.bootstrap,
            session_timeout_ms=2000,
            heartbeat_interval_ms=300,
        ),
        redis=redis_server.settings(),
        pump_interval_ms=50,
        http_port=0,
    )
    store = CallStore(redis, 16)

    async with create_app(settings):

        async def both_outcomes_applied() -> bool:
            first = await store.get(campaign.id, answered.id)
            second = await store.get(campaign.id, unanswered.id)
            return (
                first is not None
                and first.status is CallStatus.COMPLETED
                and second is not None
                and second.attempt == 2
            )

        await wait_until(both_outcomes_applied)
        dead = await read_topic(kafka_server.bootstrap, CALLS_DLQ, lambda r: len(r) >= 2)
        published = await read_topic(
            kafka_server.bootstrap,
            CALLS_EVENTS,
            lambda r: sum(1 for x in r if b"retry_scheduled" in (x.value or b"")) >= 1,
        )

    # The started record was handled before the outcome that followed it.
    history = await store.history(campaign.id, answered.id)
    assert set(history) == {"started:1", "outcome:1"}
    reasons = {r.key: dict(r.headers)[DLQ_ERROR_HEADER].decode() for r in dead}
    assert set(reasons) == {b"bad", call_key(unknown.id)}
    assert "Invalid JSON" in reasons[b"bad"]
    assert reasons[call_key(unknown.id)] == "unknown outcome 'exploded'"
    still = await store.get(campaign.id, unknown.id)
    assert still is not None
    assert still.status is CallStatus.QUEUED
    assert "outcome:1" not in await store.history(campaign.id, unknown.id)
    told = [
        CallEvent.model_validate_json(r.value or b"")
        for r in published
        if r.key in (call_key(answered.id), call_key(unanswered.id))
    ]
    public = [(e.call_id, e.type) for e in told if e.type.is_public]
    assert public.count((answered.id, CallEventType.COMPLETED)) == 1
    retried = [e.type for e in told if e.call_id == unanswered.id and e.type.is_public]
    assert retried == [CallEventType.NO_ANSWER, CallEventType.RETRY_SCHEDULED]
