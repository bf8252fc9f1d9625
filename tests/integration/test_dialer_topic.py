"""The dialer's topic on the real broker and Redis: a due message nobody can place goes to the
DLQ, the messages around it are placed, and each attempt's events carry the ids of (call,
attempt, type)."""

from __future__ import annotations

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from shared.bus import DLQ_CONSUMER_HEADER, DLQ_ERROR_HEADER, DLQ_TOPIC_HEADER
from shared.events import CallEventType, event_id_for
from shared.topics import CALLS_DLQ, CALLS_DUE, CALLS_EVENTS
from tests.clock import MovableClock
from tests.conftest import KafkaServer, RedisServer
from tests.integration.pipeline import (
    Events,
    publish_requests,
    request,
    running_pipeline,
    seed_campaign,
)
from tests.support import read_topic

pytestmark = pytest.mark.integration

ENDED = (CallEventType.ATTEMPT_ENDED,)


@pytest.mark.redis_backends("single")
async def test_bad_due_messages_go_to_the_dlq_and_the_calls_around_them_are_placed(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis
) -> None:
    clock = MovableClock()
    await seed_campaign(redis, clock.now())
    async with running_pipeline(kafka_server.bootstrap, redis_server.url, clock):
        await publish_requests(
            kafka_server.bootstrap, request("campaign-1", "+12125550101", "call-1")
        )
        producer = AIOKafkaProducer(bootstrap_servers=kafka_server.bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(CALLS_DUE, b"{not json", key=b"bad")
            await producer.send_and_wait(
                CALLS_DUE, orjson.dumps({"call_id": "x", "campaign_id": "y"}), key=b"partial"
            )
        finally:
            await producer.stop()
        await publish_requests(
            kafka_server.bootstrap, request("campaign-1", "+12125550102", "call-2")
        )
        dead = await read_topic(kafka_server.bootstrap, CALLS_DLQ, lambda r: len(r) >= 2)
        records = await read_topic(
            kafka_server.bootstrap,
            CALLS_EVENTS,
            lambda r: all(Events(r).of(c, *ENDED) for c in ("call-1", "call-2")),
        )

    headers = {r.key: {k: v.decode() for k, v in r.headers} for r in dead}
    assert set(headers) == {b"bad", b"partial"}
    for parked in headers.values():
        assert parked[DLQ_CONSUMER_HEADER] == "dialer"
        assert parked[DLQ_TOPIC_HEADER] == CALLS_DUE
    assert "Invalid JSON" in headers[b"bad"][DLQ_ERROR_HEADER]
    assert "environment_id" in headers[b"partial"][DLQ_ERROR_HEADER]
    events = Events(records)
    for call_id in ("call-1", "call-2"):
        mine = events.of(
            call_id, CallEventType.STARTED, CallEventType.ANSWERED, CallEventType.ATTEMPT_ENDED
        )
        assert sorted(e.type.value for e in mine) == sorted(
            t.value
            for t in (CallEventType.STARTED, CallEventType.ANSWERED, CallEventType.ATTEMPT_ENDED)
        )
        for event in mine:
            assert event.event_id == event_id_for(call_id, 1, event.type)
            assert event.attempt == 1
        ended = next(e for e in mine if e.type is CallEventType.ATTEMPT_ENDED)
        assert (ended.status, ended.outcome, ended.error) == ("completed", "completed", None)
        assert ended.duration_seconds == 0.05  # the pipeline's sandbox talk time
