"""Calls stored by the ingest whose request never reached the scheduler are queued anyway."""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis.asyncio import Redis

from shared import keys
from shared.clock import to_ms
from shared.events import CallDue, CallEventType
from shared.store.calls import CallStore
from shared.topics import CALLS_DUE, CALLS_EVENTS
from tests.clock import MovableClock
from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.integration.pipeline import Events, running_pipeline, seed_calls, seed_campaign
from tests.support import read_topic

pytestmark = pytest.mark.integration
GRACE_MS = 5_000


async def test_a_call_never_handed_on_is_queued_once_its_hand_off_is_overdue(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis
) -> None:
    clock = MovableClock()
    campaign = await seed_campaign(redis, clock.now())
    # Stored "an hour from now": nothing is overdue until the clock gets there.
    stored_at = clock.now() + timedelta(hours=1)
    *stranded, cancelled = await seed_calls(redis, campaign.id, 4, stored_at, enqueue=False)
    calls = CallStore(redis, 16)
    await calls.cancel_queued(cancelled, stored_at)
    # A mark whose call is gone (what an older copy could leave behind) is dropped, not queued.
    await redis.zadd(keys.handoffs(campaign.id), {"gone": to_ms(stored_at)})
    async with running_pipeline(
        kafka_server.bootstrap,
        redis_server.url,
        clock,
        dialer=False,
        handoff_grace_ms=GRACE_MS,
        claim_batch=2,  # more stranded calls than one look takes
    ):
        clock.set(stored_at + timedelta(milliseconds=GRACE_MS))

        async def none_waits() -> bool:
            return await redis.zcard(keys.handoffs(campaign.id)) == 0

        await wait_until(none_waits, within=20)
        due = await read_topic(kafka_server.bootstrap, CALLS_DUE, lambda r: len(r) >= 3)
        events = Events(
            await read_topic(
                kafka_server.bootstrap,
                CALLS_EVENTS,
                lambda r: len(Events(r).of_types(CallEventType.QUEUED)) >= 3,
            )
        )

    waiting = sorted(call.id for call in stranded)
    assert sorted(CallDue.model_validate_json(r.value).call_id for r in due) == waiting
    assert sorted(e.call_id for e in events.of_types(CallEventType.QUEUED)) == waiting
    for call in stranded:
        assert await redis.hget(keys.active_numbers(campaign.id), call.to) == f"{call.id}|"
    assert (await calls.get(campaign.id, cancelled.id)).status.value == "cancelled"  # type: ignore[union-attr]
