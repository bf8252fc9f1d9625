"""Records handed to the producer a lot at a time land where a per-record `send` puts them."""

from __future__ import annotations

import uuid

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from shared.bus import BulkSender, ensure_topics
from shared.topics import requested_key
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
