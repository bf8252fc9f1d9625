"""The due queue and the dial limits with several scheduler copies at once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from shared import keys
from shared.events import CallDue
from shared.topics import CALLS_DUE, CALLS_REQUESTED
from tests.clock import MovableClock
from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.integration.pipeline import request, running_pipeline, seed_calls, seed_campaign
from tests.stack import Stack
from tests.support import read_topic

pytestmark = pytest.mark.integration
SHARDS = 16


async def _queued_scores(redis: Redis, campaign_id: str, call_ids: list[str]) -> list[float]:
    scores = []
    for call_id in call_ids:
        member = keys.due_member(campaign_id, call_id)
        score = await redis.zscore(keys.due_queue(keys.due_shard_of(call_id, SHARDS)), member)
        if score is not None:
            scores.append(score)
    return scores


async def test_max_concurrent_calls_holds_with_two_schedulers(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis
) -> None:
    clock = MovableClock()
    await seed_campaign(redis, clock.now(), max_concurrent_calls=3)
    ids = [f"call-{i}" for i in range(20)]
    async with running_pipeline(
        kafka_server.bootstrap, redis_server.url, clock, dialer=False, schedulers=2
    ):
        producer = AIOKafkaProducer(bootstrap_servers=kafka_server.bootstrap, acks="all")
        await producer.start()
        try:
            for i, call_id in enumerate(ids):
                value, key = request("campaign-1", f"+1212555{1000 + i:04d}", call_id)
                await producer.send_and_wait(CALLS_REQUESTED, value, key=key)
        finally:
            await producer.stop()
        await read_topic(kafka_server.bootstrap, CALLS_DUE, lambda r: len(r) >= 3)
        start_ms = clock.now().timestamp() * 1000

        async def every_waiting_call_was_held_back_again() -> bool:
            scores = await _queued_scores(redis, "campaign-1", ids)
            return len(scores) == 17 and min(scores) > start_ms + 500

        await wait_until(every_waiting_call_was_held_back_again, within=20)
        records = await read_topic(kafka_server.bootstrap, CALLS_DUE, lambda r: len(r) >= 3)
    assert len(records) == 3
    assert await redis.zcard(keys.dial_slots("campaign-1")) == 3


async def test_calls_per_minute_holds(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis
) -> None:
    clock = MovableClock()
    await seed_campaign(redis, clock.now(), calls_per_minute=4, max_concurrent_calls=100)
    ids = [f"call-{i}" for i in range(10)]
    async with running_pipeline(kafka_server.bootstrap, redis_server.url, clock, dialer=False):
        producer = AIOKafkaProducer(bootstrap_servers=kafka_server.bootstrap, acks="all")
        await producer.start()
        try:
            for i, call_id in enumerate(ids):
                value, key = request("campaign-1", f"+1212555{2000 + i:04d}", call_id)
                await producer.send_and_wait(CALLS_REQUESTED, value, key=key)
        finally:
            await producer.stop()
        records = await read_topic(kafka_server.bootstrap, CALLS_DUE, lambda r: len(r) >= 4)
        first_release = min(CallDue.model_validate_json(r.value).released_at for r in records)

        async def the_rest_wait_for_the_next_minute() -> bool:
            scores = await _queued_scores(redis, "campaign-1", ids)
            return len(scores) == 6 and min(scores) >= first_release.timestamp() * 1000 + 59_000

        await wait_until(the_rest_wait_for_the_next_minute, within=20)
        records = await read_topic(kafka_server.bootstrap, CALLS_DUE, lambda r: len(r) >= 4)
    assert len(records) == 4


async def test_ten_thousand_due_calls_are_released_once_each_by_two_scheduler_processes(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis, tmp_path: Path
) -> None:
    clock = MovableClock()
    expected: set[str] = set()
    for c in range(4):
        campaign = await seed_campaign(
            redis,
            clock.now(),
            f"campaign-{c}",
            max_concurrent_calls=10_000,
            calls_per_minute=100_000,
        )
        seeded = await seed_calls(redis, campaign.id, 2500, clock.now())
        expected.update(call.id for call in seeded)
    stack = Stack(kafka_server.bootstrap, redis_server.url, tmp_path)
    stack.start_one("scheduler")
    stack.start_one("scheduler")
    try:
        records = await read_topic(
            kafka_server.bootstrap, CALLS_DUE, lambda r: len(r) >= 10_000, within=120
        )

        async def nothing_left_to_release() -> bool:
            for shard in range(SHARDS):
                if await redis.zcard(keys.due_queue(shard)) or await redis.zcard(
                    keys.due_inflight(shard)
                ):
                    return False
            return True

        await wait_until(nothing_left_to_release, within=30)
        records = await read_topic(kafka_server.bootstrap, CALLS_DUE, lambda r: len(r) >= 10_000)
        assert all(p.alive() for p in stack.all()), stack.logs_text()
    finally:
        stack.stop()
    released = Counter(CallDue.model_validate_json(r.value).call_id for r in records)
    assert set(released) == expected
    assert max(released.values()) == 1
    assert len(records) == 10_000
