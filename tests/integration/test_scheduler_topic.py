"""The scheduler in-process on the real broker and Redis: requests published to the topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from faststream import FastStream
from redis.asyncio import Redis

from services.scheduler.app import create_app
from services.scheduler.settings import SchedulerSettings
from shared.bus import DLQ_ERROR_HEADER
from shared.events import CallEvent, CallEventType
from shared.models import Agent, Campaign, CampaignRules, CampaignStatus
from shared.rules.input_bounds import MAX_CALL_JSON_BYTES
from shared.settings import KafkaSettings
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.topics import CALLS_DLQ, CALLS_EVENTS, CALLS_REQUESTED
from tests.conftest import KafkaServer, RedisServer
from tests.support import ALWAYS_OPEN, read_topic

pytestmark = pytest.mark.integration


@pytest.fixture
async def scheduler(
    kafka_server: KafkaServer, redis_server: RedisServer
) -> AsyncIterator[FastStream]:
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
    app = create_app(settings)
    async with app:
        yield app


async def _active_campaign(redis: Redis) -> Campaign:
    catalog = CatalogStore(redis)
    now = datetime.now(UTC)
    agent = Agent(id="agent-1", environment_id="env-a", name="A", prompt="p", created_at=now)
    await catalog.save_agent(agent)
    rules = CampaignRules.model_validate({**ALWAYS_OPEN, "agent_id": agent.id})
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


def _events(records: list[ConsumerRecord[bytes, bytes]]) -> list[CallEvent]:
    return [CallEvent.model_validate_json(r.value) for r in records]


async def test_a_bad_message_goes_to_the_dlq_and_the_consumer_keeps_going(
    scheduler: FastStream, kafka_server: KafkaServer, redis: Redis
) -> None:
    campaign = await _active_campaign(redis)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_server.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(CALLS_REQUESTED, b"{not json", key=b"bad")
        await producer.send_and_wait(
            CALLS_REQUESTED, orjson.dumps({"campaign_id": campaign.id}), key=b"no-to"
        )
        good = {"campaign_id": campaign.id, "to": "+44 20 7946 0018", "context": {"a": 1}}
        await producer.send_and_wait(CALLS_REQUESTED, orjson.dumps(good), key=b"good")
    finally:
        await producer.stop()

    dead = await read_topic(kafka_server.bootstrap, CALLS_DLQ, lambda r: len(r) >= 2)
    # Parked under their own keys, so on different partitions: compare without order.
    reasons = {r.key: dict(r.headers)[DLQ_ERROR_HEADER].decode() for r in dead}
    assert set(reasons) == {b"bad", b"no-to"}
    assert "Invalid JSON" in reasons[b"bad"]
    assert reasons[b"no-to"].startswith("to:")

    records = await read_topic(
        kafka_server.bootstrap,
        CALLS_EVENTS,
        lambda r: any(e.type is CallEventType.QUEUED for e in _events(r)),
    )
    queued = next(e for e in _events(records) if e.type is CallEventType.QUEUED)
    assert queued.to == "+442079460018"
    stored = await CallStore(redis, 16).get(campaign.id, queued.call_id)
    assert stored is not None
    assert stored.context == {"a": 1}


async def test_a_refused_topic_request_becomes_a_rejected_event(
    scheduler: FastStream, kafka_server: KafkaServer, redis: Redis
) -> None:
    campaign = await _active_campaign(redis)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_server.bootstrap, acks="all")
    await producer.start()
    try:
        for fields in (
            {"campaign_id": "no-such-campaign", "to": "+12125550123", "call_id": "c-unknown"},
            {"campaign_id": campaign.id, "to": "12", "call_id": "c-invalid"},
            {"campaign_id": campaign.id, "to": "+12125550123", "call_id": "c-first"},
            {"campaign_id": campaign.id, "to": "+1 212 555 0123", "call_id": "c-dup"},
        ):
            context = {"crm_id": fields["call_id"], "nested": {"tags": ["a", "ü"]}}
            body = {**fields, "context": context}
            # Keyed as the README says, so requests for one number keep their order.
            key = f"{body['campaign_id']}:+12125550123".encode()
            await producer.send_and_wait(CALLS_REQUESTED, orjson.dumps(body), key=key)
    finally:
        await producer.stop()

    def settled(records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        ids = {e.call_id for e in _events(records) if e.type.value.endswith(("rejected", "queued"))}
        return ids >= {"c-unknown", "c-invalid", "c-first", "c-dup"}

    records = await read_topic(kafka_server.bootstrap, CALLS_EVENTS, settled)
    events = _events(records)
    outcome = {
        e.call_id: (e.type, e.reason)
        for e in events
        if e.type in (CallEventType.REJECTED, CallEventType.QUEUED)
    }
    assert outcome["c-unknown"] == (CallEventType.REJECTED, "campaign_not_found")
    assert outcome["c-invalid"] == (CallEventType.REJECTED, "invalid_number")
    assert outcome["c-first"][0] is CallEventType.QUEUED
    assert outcome["c-dup"] == (CallEventType.REJECTED, "duplicate")
    # A rejected call is never stored: its event carries the request's context for webhooks;
    # no other event's message has a context.
    for record in records:
        message = orjson.loads(record.value)
        if message["type"] == CallEventType.REJECTED.value:
            expected = {"crm_id": message["call_id"], "nested": {"tags": ["a", "ü"]}}
            assert message["context"] == expected, message
        else:
            assert "context" not in message, message


async def test_a_topic_request_over_the_size_bound_goes_to_the_dlq(
    scheduler: FastStream, kafka_server: KafkaServer, redis: Redis
) -> None:
    campaign = await _active_campaign(redis)
    big = {"k": "x" * MAX_CALL_JSON_BYTES}
    producer = AIOKafkaProducer(bootstrap_servers=kafka_server.bootstrap, acks="all")
    await producer.start()
    try:
        for name in ("payload", "context"):
            body = {"campaign_id": campaign.id, "to": "+12125550123", name: big}
            await producer.send_and_wait(CALLS_REQUESTED, orjson.dumps(body), key=name.encode())
        fits = {"campaign_id": campaign.id, "to": "+12125550124", "call_id": "c-fits"}
        await producer.send_and_wait(CALLS_REQUESTED, orjson.dumps(fits), key=b"fits")
    finally:
        await producer.stop()

    dead = await read_topic(kafka_server.bootstrap, CALLS_DLQ, lambda r: len(r) >= 2)
    reasons = {r.key: dict(r.headers)[DLQ_ERROR_HEADER].decode() for r in dead}
    assert set(reasons) == {b"payload", b"context"}
    for name in ("payload", "context"):
        assert (
            f"{name} must not be greater than {MAX_CALL_JSON_BYTES} bytes" in reasons[name.encode()]
        )
    records = await read_topic(
        kafka_server.bootstrap,
        CALLS_EVENTS,
        lambda r: any(e.call_id == "c-fits" for e in _events(r)),
    )
    assert {e.call_id for e in _events(records)} == {"c-fits"}
