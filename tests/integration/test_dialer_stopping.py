"""A dialer copy told to stop while it is still taking a due attempt: the attempt is not placed
there (the copy's drain would not wait for it), it goes back to the scheduler."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

import pytest
from faststream.kafka import KafkaBroker
from redis.asyncio import Redis

from services.dialer.adapters.attempts_redis import AttemptRef, AttemptStore, Refused, Taken
from services.dialer.adapters.carrier_sandbox import SandboxCarrier
from services.dialer.handlers import SANDBOX, DialerRuntime, DialHandler
from shared import keys
from shared.bus import EventPublisher, Record
from shared.clock import SystemClock, to_ms
from shared.events import CallDue
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.store.dnc import DncStore
from shared.store.limits import DialLimits
from tests.integration.pipeline import seed_calls, seed_campaign

pytestmark = pytest.mark.integration


class _HeldTake(AttemptStore):
    """Takes attempts as the store does, then holds the answer until the test lets it go."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis, claim_ttl_ms=60_000)
        self.taken = asyncio.Event()
        self.go_on = asyncio.Event()

    async def take(self, ref: AttemptRef, slot_until: Any) -> Taken | Refused:
        taken = await super().take(ref, slot_until)
        self.taken.set()
        await self.go_on.wait()
        return taken


class _Published:
    """Stands in for the event publisher: keeps what would have been published."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    async def publish_encoded(self, records: Sequence[Record]) -> None:
        self.records.extend(records)

    async def publish(self, events: Any) -> None:
        raise AssertionError("not expected here")


@pytest.mark.redis_backends("single")
async def test_an_attempt_taken_while_the_copy_starts_stopping_goes_back_undialed(
    redis: Redis,
) -> None:
    clock = SystemClock()
    campaign = await seed_campaign(redis, clock.now())
    (call,) = await seed_calls(redis, campaign.id, 1, clock.now())
    ref = AttemptRef(campaign.id, call.id, 1)
    calls = CallStore(redis, 16)
    shard = keys.due_shard_of(call.id, 16)
    # Released by the scheduler: out of the due queue, its slot held.
    await redis.zrem(keys.due_queue(shard), keys.due_member(campaign.id, call.id))
    await redis.zadd(keys.dial_slots(campaign.id), {ref.slot: to_ms(clock.now()) + 60_000})
    attempts = _HeldTake(redis)
    published = _Published()
    sandbox = SandboxCarrier(ring_ms=0, talk_ms=0)
    runtime = DialerRuntime(
        catalog=CatalogStore(redis),
        calls=calls,
        attempts=attempts,
        broker=cast(KafkaBroker, None),
        events=cast(EventPublisher, published),
        carriers={SANDBOX: sandbox},
        provider=SANDBOX,
        clock=clock,
        limits=DialLimits(redis, 120_000),
        dnc=DncStore(redis),
        callback_timeout=timedelta(seconds=300),
        placement_budget=timedelta(seconds=30),
        status_lookups=5,
    )
    handler = DialHandler(runtime, max_in_flight=10)
    sandbox.report_to(handler.on_sandbox_event)
    due = CallDue(
        call_id=call.id,
        campaign_id=campaign.id,
        environment_id=call.environment_id,
        attempt=1,
        to=call.to,
        due_at=clock.now(),
        released_at=clock.now(),
    )

    handling = asyncio.create_task(handler.on_call_due(due.model_dump_json().encode(), None))
    await asyncio.wait_for(attempts.taken.wait(), 5)
    # SIGTERM while the attempt is being taken: the drain finds nothing placing yet.
    await handler.stop(5)
    attempts.go_on.set()
    await asyncio.wait_for(handling, 5)
    await sandbox.drain(5)

    # Not started here; back in the due queue with its claim let go and its slot freed.
    assert published.records == []
    assert handler.in_flight == 0
    stored = await calls.get(campaign.id, call.id)
    assert stored is not None
    assert (stored.status.value, stored.attempt) == ("queued", 1)
    assert await redis.zscore(keys.due_queue(shard), keys.due_member(campaign.id, call.id))
    assert not await redis.exists(keys.dial_claim(campaign.id, call.id, 1))
    assert await redis.zscore(keys.dial_slots(campaign.id), ref.slot) is None
