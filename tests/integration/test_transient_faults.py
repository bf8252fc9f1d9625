"""A consumer on the real broker meets each kind of passing Redis fault: the message is
processed once the fault clears and never reaches the DLQ; a bad message still does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import orjson
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from faststream import FastStream
from faststream.kafka.annotations import KafkaMessage
from redis.asyncio import Redis
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared import bus
from shared.bus import (
    DLQ_ERROR_HEADER,
    DLQ_TOPIC_HEADER,
    batch_consumer,
    consume_batch,
    create_broker,
    ensure_topics,
    records_of,
)
from shared.settings import KafkaSettings
from shared.topics import CALLS_DLQ
from tests.conftest import KafkaServer, wait_until
from tests.support import read_topic

# The faults come from a test double in front of Redis: one backend is enough.
pytestmark = [pytest.mark.integration, pytest.mark.redis_backends("single")]

FAULTS: dict[str, Callable[[], Exception]] = {
    "oom": lambda: ResponseError("OOM command not allowed when used memory > 'maxmemory'."),
    "readonly-reply": lambda: ResponseError("READONLY You can't write against a replica."),
    "readonly": lambda: ReadOnlyError("You can't write against a read only replica."),
    "busy": lambda: ResponseError("BUSY Redis is busy running a script."),
    "loading": lambda: BusyLoadingError("Redis is loading the dataset in memory"),
    "masterdown": lambda: MasterDownError("Link with MASTER is down"),
    "clusterdown": lambda: ClusterDownError("The cluster is down"),
    "tryagain": lambda: TryAgainError("Multiple keys request during rehashing of slot"),
    "connection": lambda: RedisConnectionError("Error 111 connecting. Connection refused."),
    "timeout": lambda: RedisTimeoutError("Timeout reading from socket"),
}


@dataclass
class FlakyRedis:
    """Redis that fails each key's first `times` writes with that key's fault, then writes."""

    redis: Redis
    faults: dict[str, Callable[[], Exception]]
    times: int
    failed: dict[str, int] = field(default_factory=dict)

    async def set(self, key: str, value: bytes) -> None:
        kind = key.rsplit(":", 1)[1]
        if kind in self.faults and self.failed.get(kind, 0) < self.times:
            self.failed[kind] = self.failed.get(kind, 0) + 1
            raise self.faults[kind]()
        await self.redis.set(key, value)


@dataclass
class Consumer:
    topic: str
    flaky: FlakyRedis
    prefix: str


@pytest.fixture
async def consumer(
    kafka_server: KafkaServer, redis: Redis, unique: str, request: pytest.FixtureRequest
) -> AsyncIterator[Consumer]:
    times: int = getattr(request, "param", 2)
    settings = KafkaSettings(
        bootstrap_servers=kafka_server.bootstrap, session_timeout_ms=2000, heartbeat_interval_ms=300
    )
    topic = f"faults-{unique}"
    await ensure_topics(settings, [topic, CALLS_DLQ])
    flaky = FlakyRedis(redis, FAULTS, times)
    prefix = f"faults:{unique}"
    broker = create_broker(settings, "faults")

    async def handle(record: ConsumerRecord[bytes, bytes]) -> None:
        message = orjson.loads(record.value or b"{}")
        if "kind" not in message:
            raise ValueError("a message without a kind")
        await flaky.set(f"{prefix}:{message['kind']}", record.value or b"")

    @broker.subscriber(topic, group_id=f"faults-{unique}", **batch_consumer(settings))
    async def on_records(message: KafkaMessage) -> None:
        await consume_batch(broker, records_of(message), topic, "faults", handle, 64)

    app = FastStream(broker)
    async with app:
        yield Consumer(topic, flaky, prefix)


async def _publish(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


Records = list[ConsumerRecord[bytes, bytes]]


async def _dead_letters_of(bootstrap: str, topic: str, expected: int) -> Records:
    def mine(records: Records) -> Records:
        return [r for r in records if dict(r.headers).get(DLQ_TOPIC_HEADER) == topic.encode()]

    return mine(await read_topic(bootstrap, CALLS_DLQ, lambda r: len(mine(r)) >= expected))


async def _all_stored(redis: Redis, prefix: str, kinds: list[str]) -> bool:
    return all([await redis.exists(f"{prefix}:{kind}") for kind in kinds])


async def test_each_passing_redis_fault_is_retried_and_never_dead_lettered(
    consumer: Consumer, kafka_server: KafkaServer, redis: Redis
) -> None:
    kinds = list(FAULTS)
    messages = [(kind.encode(), orjson.dumps({"kind": kind})) for kind in kinds]
    # A bad message, and after it on its partition (same key) a good one: the consumer moves on.
    messages += [(b"shared", b'{"no": "kind"}'), (b"shared", orjson.dumps({"kind": "after-bad"}))]
    await _publish(kafka_server.bootstrap, consumer.topic, messages)

    await wait_until(lambda: _all_stored(redis, consumer.prefix, [*kinds, "after-bad"]))
    assert consumer.flaky.failed == dict.fromkeys(kinds, 2)
    dead = await _dead_letters_of(kafka_server.bootstrap, consumer.topic, 1)
    # Only the bad message was parked, with its reason and key; the next one was read anew.
    assert [(r.key, r.value) for r in dead] == [(b"shared", b'{"no": "kind"}')]
    assert "a message without a kind" in dict(dead[0].headers)[DLQ_ERROR_HEADER].decode()


@pytest.mark.parametrize("consumer", [4], indirect=True)
async def test_a_fault_that_outlasts_the_retries_hands_the_batch_back_unacknowledged(
    consumer: Consumer, kafka_server: KafkaServer, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No retry in place: every failure hands the batch back, and the consumer reads it again
    # from the same offset.
    monkeypatch.setattr(bus, "TRANSIENT_RETRY_BUDGET_S", 0.0)
    monkeypatch.setattr(bus, "TRANSIENT_BACKOFF_S", 0.05)
    kinds = ["oom", "readonly", "connection"]
    messages = [(kind.encode(), orjson.dumps({"kind": kind})) for kind in kinds]
    messages.append((b"marker", b'{"no": "kind"}'))
    await _publish(kafka_server.bootstrap, consumer.topic, messages)

    await wait_until(lambda: _all_stored(redis, consumer.prefix, kinds))
    assert consumer.flaky.failed == dict.fromkeys(kinds, 4)
    dead = await _dead_letters_of(kafka_server.bootstrap, consumer.topic, 1)
    # A batch handed back is read again whole: the bad message may be parked more than once.
    assert {r.key for r in dead} == {b"marker"}
