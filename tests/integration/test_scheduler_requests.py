"""The scheduler's request consumer in-process on the real broker and Redis: a fetched batch
handled in waves, each key's requests in order, accepted requests queued together, a bad record
parked alone, a replayed request publishing what the first delivery did."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from redis.asyncio import Redis

from services.scheduler.app import create_app
from services.scheduler.settings import SchedulerSettings
from shared import keys
from shared.bus import DLQ_ERROR_HEADER
from shared.events import CallEvent, CallEventType, accepted_request, call_event
from shared.models import Agent, Call, Campaign, CampaignRules, CampaignStatus
from shared.settings import KafkaSettings
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.topics import CALLS_DLQ, CALLS_EVENTS, CALLS_REQUESTED, call_key, requested_key
from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.support import ALWAYS_OPEN, read_topic

pytestmark = pytest.mark.integration


async def _campaign(redis: Redis, campaign_id: str, now: datetime) -> Campaign:
    catalog = CatalogStore(redis)
    agent = Agent(id="agent-1", environment_id="env-a", name="A", prompt="p", created_at=now)
    await catalog.save_agent(agent)
    rules = CampaignRules.model_validate({**ALWAYS_OPEN, "agent_id": agent.id, "max_retries": 2})
    campaign = Campaign(
        **rules.model_dump(),
        id=campaign_id,
        environment_id="env-a",
        status=CampaignStatus.ACTIVE,
        created_at=now,
        updated_at=now,
    )
    await catalog.save_campaign(campaign)
    return campaign


async def _stored(redis: Redis, campaign: Campaign, call_id: str, to: str, now: datetime) -> Call:
    """A call as ingest stores it: accepted, not yet queued; due in an hour, so the due pump
    leaves it alone."""
    call = Call(
        id=call_id,
        campaign_id=campaign.id,
        environment_id=campaign.environment_id,
        to=to,
        payload={"name": call_id},
        attempt=1,
        scheduled_at=now + timedelta(hours=1),
        scheduling_reason="immediate",
        created_at=now,
        updated_at=now,
    )
    assert (await CallStore(redis, 16).accept(call, 60_000, now)).outcome == "accepted"
    return call


def _accepted(call: Call) -> tuple[bytes, bytes]:
    """The record ingest publishes for a call it stored."""
    return requested_key(call.campaign_id, call.to), accepted_request(call)


def _settings(kafka_server: KafkaServer, redis_server: RedisServer) -> SchedulerSettings:
    return SchedulerSettings(
        kafka=KafkaSettings(
            bootstrap_servers=kafka_server.bootstrap,
            session_timeout_ms=2000,
            heartbeat_interval_ms=300,
        ),
        redis=redis_server.settings(),
        pump_interval_ms=50,
        http_port=0,
    )


async def _publish(kafka_server: KafkaServer, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_server.bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(CALLS_REQUESTED, value, key=key)
    finally:
        await producer.stop()


async def _in_due_queue(redis: Redis, call: Call) -> bool:
    shard = keys.due_shard_of(call.id, 16)
    member = keys.due_member(call.campaign_id, call.id)
    return await redis.zscore(keys.due_queue(shard), member) is not None


def _queued_event(call: Call, campaign: Campaign) -> bytes:
    return (
        call_event(
            call,
            CallEventType.QUEUED,
            call.created_at,
            attempt=1,
            max_attempts=campaign.max_retries + 1,
            next_attempt_at=call.scheduled_at,
            reason=call.scheduling_reason,
        )
        .model_dump_json()
        .encode()
    )


def _of(records: list[ConsumerRecord[bytes, bytes]], call_id: str) -> list[bytes]:
    return [r.value or b"" for r in records if r.key == call_key(call_id)]


async def test_a_batch_queues_accepted_requests_together_in_key_order_parking_bad_ones(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis
) -> None:
    now = datetime.now(UTC).replace(microsecond=250_000)
    campaign = await _campaign(redis, "campaign-1", now)
    other = await _campaign(redis, "campaign-2", now)
    broken = await _campaign(redis, "campaign-3", now)
    first = await _stored(redis, campaign, "call-1", "+12125550101", now)
    second = await _stored(redis, other, "call-2", "+12125550102", now)
    stuck = await _stored(redis, broken, "call-3", "+12125550103", now)
    never_stored = first.model_copy(update={"id": "call-gone", "to": "+12125550109"})
    # A campaign whose stored rules no longer parse: a fault that fails the wave and, handled
    # again record by record, parks only the request that reads it.
    await redis.hset(keys.campaign(broken.id), "rules", "{not json")
    topic_number = "+12125550104"
    topic_key = requested_key(campaign.id, topic_number)

    def topic_request(call_id: str) -> tuple[bytes, bytes]:
        body = {"campaign_id": campaign.id, "call_id": call_id, "to": topic_number}
        return topic_key, orjson.dumps(body)

    second_key, _ = _accepted(second)
    records = [
        # The first wave: one record of each key, queued together (or, for a topic request,
        # through the use case), the unknown call ignored.
        _accepted(first),
        topic_request("topic-1"),
        (b"bad", b"{not json"),
        _accepted(second),
        _accepted(never_stored),
        # The second wave. The same number again on the same key: handled after the first, so
        # a duplicate.
        topic_request("topic-2"),
        # A redelivery of the first call's request: found queued, told again with the same id.
        _accepted(first),
        # Behind the second call's request on its key, the one request that fails.
        (second_key, accepted_request(stuck)),
    ]
    # Published before the scheduler starts, so that its first fetch holds them all.
    await _publish(kafka_server, records)
    store = CallStore(redis, 16)

    async with create_app(_settings(kafka_server, redis_server)):

        async def all_queued() -> bool:
            queued = [await _in_due_queue(redis, c) for c in (first, second)]
            topic = await store.get(campaign.id, "topic-1")
            return all(queued) and topic is not None

        await wait_until(all_queued)
        dead = await read_topic(kafka_server.bootstrap, CALLS_DLQ, lambda r: len(r) >= 2)
        published = await read_topic(
            kafka_server.bootstrap,
            CALLS_EVENTS,
            lambda r: len(_of(r, first.id)) >= 2 and len(_of(r, "topic-2")) >= 1,
        )

    reasons = {r.key: dict(r.headers)[DLQ_ERROR_HEADER].decode() for r in dead}
    assert set(reasons) == {b"bad", second_key}
    assert "Invalid JSON" in reasons[b"bad"]
    assert reasons[second_key].startswith("unhandled error")
    assert await store.get(campaign.id, never_stored.id) is None
    # The queued events are what the one-record path publishes, byte for byte; the redelivery
    # (handled again on its own, its wave having failed) publishes the same event again.
    assert _of(published, first.id) == [_queued_event(first, campaign)] * 2
    assert _of(published, second.id) == [_queued_event(second, other)]
    assert _of(published, stuck.id) == []
    assert _of(published, never_stored.id) == []
    # Each key's requests in order: the first request for the number took it.
    topic_first = [CallEvent.model_validate_json(v) for v in _of(published, "topic-1")]
    topic_second = [CallEvent.model_validate_json(v) for v in _of(published, "topic-2")]
    assert [e.type for e in topic_first] == [CallEventType.QUEUED]
    # (Its wave failed and was handled again one by one: it may be told twice, with one id.)
    assert {(e.type, e.reason, e.event_id) for e in topic_second} == {
        (CallEventType.REJECTED, "duplicate", topic_second[0].event_id)
    }
    # The reservations of the queued calls are permanent, and none waits to be handed on.
    for call in (first, second):
        held = await redis.hget(keys.active_numbers(call.campaign_id), call.to)
        assert held == f"{call.id}|"
        assert await redis.zscore(keys.handoffs(call.campaign_id), call.id) is None


async def test_a_replayed_accepted_request_never_queues_its_call_again(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis
) -> None:
    now = datetime.now(UTC)
    campaign = await _campaign(redis, "campaign-1", now)
    calls = [await _stored(redis, campaign, f"call-{i}", f"+1212555020{i}", now) for i in range(3)]
    await _publish(kafka_server, [_accepted(call) for call in calls])

    async with create_app(_settings(kafka_server, redis_server)):

        async def queued() -> bool:
            return all([await _in_due_queue(redis, call) for call in calls])

        await wait_until(queued)
        # The pump claims the first call and hands it on: it leaves the due queue.
        shard = keys.due_shard_of(calls[0].id, 16)
        await redis.zrem(keys.due_queue(shard), keys.due_member(campaign.id, calls[0].id))
        # Its request comes again (a batch delivered twice), behind a new call's.
        late = await _stored(redis, campaign, "call-late", "+12125550299", now)
        await _publish(kafka_server, [_accepted(calls[0]), _accepted(late)])
        await wait_until(lambda: _in_due_queue(redis, late))
        published = await read_topic(
            kafka_server.bootstrap,
            CALLS_EVENTS,
            lambda r: len(_of(r, calls[0].id)) >= 2 and len(_of(r, late.id)) >= 1,
        )

    assert not await _in_due_queue(redis, calls[0])
    assert _of(published, calls[0].id) == [_queued_event(calls[0], campaign)] * 2
