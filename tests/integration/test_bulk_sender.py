"""Records handed to the producer a lot at a time land where a per-record `send` puts them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from shared.bus import BulkSender, EventPublisher, Record, ensure_topics
from shared.events import CallEvent, CallEventType, call_event
from shared.models import Call
from shared.topics import call_key, requested_key
from tests.conftest import KafkaServer
from tests.support import read_topic

pytestmark = pytest.mark.integration
PARTITIONS = 6


async def test_a_lot_lands_in_the_default_partitioners_partitions_in_order(
    kafka_server: KafkaServer,
) -> None:
    settings = kafka_server.settings().model_copy(update={"partitions": PARTITIONS})
    topic = f"bulk-{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic])
    numbers = [f"+1212555{i:04d}" for i in range(40)]
    # 2,000 records of ~300 B: several full batches per partition.
    records = [
        (requested_key("campaign-1", numbers[i % 40]), orjson.dumps({"seq": i, "pad": "x" * 280}))
        for i in range(2_000)
    ]
    sender = BulkSender(settings, "test")
    await sender.start()
    try:
        await sender.hand_over(topic, records[:1_000])
        await sender.hand_over(topic, records[1_000:])
    finally:
        await sender.stop()  # flushes what the producer still holds

    read = await read_topic(kafka_server.bootstrap, topic, lambda r: len(r) >= 2_000)

    every = list(range(PARTITIONS))
    assert len(read) == 2_000
    for record in read:
        assert record.key is not None
        assert record.partition == DefaultPartitioner()(record.key, every, every)
        assert dict(record.headers)["content-type"] == b"application/json"
    assert len({record.partition for record in read}) == PARTITIONS
    by_key: dict[bytes | None, list[int]] = {}
    for record in sorted(read, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(record.key, []).append(orjson.loads(record.value)["seq"])
    assert all(seqs == sorted(seqs) for seqs in by_key.values())
    assert sorted(s for seqs in by_key.values() for s in seqs) == list(range(2_000))


async def test_records_given_headers_carry_them_beside_the_content_type(
    kafka_server: KafkaServer,
) -> None:
    topic = f"headers-{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_server.settings(), [topic])
    traceparent = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    records: list[Record] = [
        (b"k1", b"1", [("traceparent", traceparent)]),
        (b"k2", b"2"),
        (b"k3", b"3", [("traceparent", traceparent), ("tracestate", b"vendor=1")]),
    ]
    sender = BulkSender(kafka_server.settings(), "test")
    await sender.start()
    try:
        await sender.hand_over(topic, records)
        await sender.send_all(topic, [(b"k4", b"4", [("traceparent", traceparent)])])
    finally:
        await sender.stop()

    read = await read_topic(kafka_server.bootstrap, topic, lambda r: len(r) >= 4)

    headers = {record.value: list(record.headers) for record in read}
    json_type = ("content-type", b"application/json")
    assert headers == {
        b"1": [json_type, ("traceparent", traceparent)],
        b"2": [json_type],
        b"3": [json_type, ("traceparent", traceparent), ("tracestate", b"vendor=1")],
        b"4": [json_type, ("traceparent", traceparent)],
    }


async def test_events_of_many_callers_are_each_acknowledged_and_kept_in_order(
    kafka_server: KafkaServer,
) -> None:
    settings = kafka_server.settings().model_copy(update={"partitions": PARTITIONS})
    topic = f"events-{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic])
    publisher = EventPublisher(BulkSender(settings, "test"), topic=topic, lot=100)
    now = datetime.now(UTC)
    calls = [
        Call(
            id=f"call-{i}",
            campaign_id="campaign-1",
            environment_id="env-a",
            to=f"+1212555{i:04d}",
            scheduled_at=now,
            scheduling_reason="immediate",
            created_at=now,
            updated_at=now,
        )
        for i in range(300)
    ]
    order = [CallEventType.STARTED, CallEventType.ANSWERED, CallEventType.ATTEMPT_ENDED]

    async def caller(call: Call) -> None:
        # One publish awaited before the next, as the dialer does.
        await publisher.publish([call_event(call, order[0], now, attempt=1, max_attempts=1)])
        await publisher.publish(
            [call_event(call, t, now, attempt=1, max_attempts=1) for t in order[1:]]
        )

    await publisher.start()
    try:
        await asyncio.gather(*(caller(call) for call in calls))
    finally:
        await publisher.stop()

    # Every publish returned once its events were acknowledged: they are all there.
    read = await read_topic(kafka_server.bootstrap, topic, lambda r: len(r) >= 900, within=5)
    by_call: dict[str, list[CallEventType]] = {}
    for record in sorted(read, key=lambda r: (r.partition, r.offset)):
        event = CallEvent.model_validate_json(record.value)
        assert record.key == call_key(event.call_id)
        by_call.setdefault(event.call_id, []).append(event.type)
    assert len(read) == 900
    assert by_call == {call.id: order for call in calls}
