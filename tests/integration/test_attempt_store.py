"""The dialer's per-attempt carrier state in Redis, on one server and on a cluster."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from services.dialer.adapters.attempts_redis import (
    AttemptRef,
    AttemptStore,
    Ending,
    Refused,
    Report,
    Taken,
)
from shared import keys
from shared.clock import to_ms
from shared.rules.outcomes import Outcome
from shared.store.calls import CallStore
from tests.integration.pipeline import seed_calls, seed_campaign

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
REF = AttemptRef("campaign-1", "call-1", 1)
LATER = NOW + timedelta(minutes=5)
COMPLETED = Ending(Outcome.COMPLETED, 12.0)


async def _with_slot(redis: Redis, ref: AttemptRef = REF) -> AttemptStore:
    await redis.zadd(keys.dial_slots(ref.campaign_id), {ref.slot: to_ms(NOW) + 1000})
    await redis.hset(keys.call(ref.campaign_id, ref.call_id), mapping={"status": "queued"})
    return AttemptStore(redis, claim_ttl_ms=60_000)


async def test_an_attempt_is_taken_once_and_only_while_waiting_with_its_slot_held(
    redis: Redis,
) -> None:
    store = AttemptStore(redis, claim_ttl_ms=60_000)
    calls = CallStore(redis, 16)
    campaign = await seed_campaign(redis, NOW)
    (call, other) = await seed_calls(redis, campaign.id, 2, NOW)
    ref = AttemptRef(campaign.id, call.id, 1)
    await redis.zadd(keys.dial_slots(campaign.id), {ref.slot: to_ms(NOW) + 1000})

    taken = await store.take(ref, LATER)
    again = await store.take(ref, LATER)

    assert isinstance(taken, Taken)
    assert taken.call == await calls.get(campaign.id, call.id)
    assert taken.campaign["id"] == campaign.id
    assert again == Refused("claimed")
    assert await redis.zscore(keys.dial_slots(campaign.id), ref.slot) == to_ms(LATER)
    # Its slot gone (the scheduler took the attempt back): not dialed, and the claim let go.
    no_slot = AttemptRef(campaign.id, other.id, 1)
    assert await store.take(no_slot, LATER) == Refused("lost")
    assert await redis.exists(keys.dial_claim(campaign.id, other.id, 1)) == 0
    # Another attempt than the call's, or no call at all.
    assert await store.take(AttemptRef(campaign.id, other.id, 2), LATER) == Refused(
        "stale", "queued", 1
    )
    assert await store.take(AttemptRef(campaign.id, "nobody", 1), LATER) == Refused("gone")


async def test_attempts_taken_in_one_turn_are_each_decided_as_if_alone(redis: Redis) -> None:
    store = AttemptStore(redis, claim_ttl_ms=60_000)
    calls = CallStore(redis, 16)
    first, second = await seed_campaign(redis, NOW), await seed_campaign(redis, NOW, "campaign-2")
    (a, b, lost) = await seed_calls(redis, first.id, 3, NOW)
    (c,) = await seed_calls(redis, second.id, 1, NOW)
    held = [
        AttemptRef(first.id, a.id, 1),
        AttemptRef(first.id, b.id, 1),
        AttemptRef(second.id, c.id, 1),
    ]
    for ref in held:
        await redis.zadd(keys.dial_slots(ref.campaign_id), {ref.slot: to_ms(NOW) + 1000})
    asked = [
        held[0],
        held[2],
        held[0],  # the same attempt again: claimed by the first
        AttemptRef(first.id, lost.id, 1),
        AttemptRef(first.id, b.id, 2),
        held[1],
        AttemptRef(second.id, "nobody", 1),
    ]

    answers = await asyncio.gather(*(store.take(ref, LATER) for ref in asked))
    # Each step again: every attempt is claimed by now, or still refused.
    again = await asyncio.gather(*(store.take(ref, LATER) for ref in asked))

    for index, call in ((0, a), (1, c), (5, b)):
        taken = answers[index]
        assert isinstance(taken, Taken)
        assert taken.call == await calls.get(call.campaign_id, call.id)
        assert taken.campaign["id"] == call.campaign_id
    assert answers[2] == Refused("claimed")
    assert answers[3] == Refused("lost")
    assert answers[4] == Refused("stale", "queued", 1)
    assert answers[6] == Refused("gone")
    assert again == [
        Refused("claimed"),
        Refused("claimed"),
        Refused("claimed"),
        Refused("lost"),
        Refused("stale", "queued", 1),
        Refused("claimed"),
        Refused("gone"),
    ]
    for ref in held:
        assert await redis.zscore(keys.dial_slots(ref.campaign_id), ref.slot) == to_ms(LATER)


async def test_a_take_that_fails_fails_only_its_campaigns_callers(redis: Redis) -> None:
    store = AttemptStore(redis, claim_ttl_ms=60_000)
    campaign = await seed_campaign(redis, NOW)
    (call,) = await seed_calls(redis, campaign.id, 1, NOW)
    ref = AttemptRef(campaign.id, call.id, 1)
    await redis.zadd(keys.dial_slots(campaign.id), {ref.slot: to_ms(NOW) + 1000})
    # A campaign whose slot set is not a sorted set: its script fails.
    await redis.set(keys.dial_slots("campaign-x"), "not a zset")
    broken = AttemptRef("campaign-x", call.id, 1)
    await redis.hset(keys.call("campaign-x", call.id), mapping={"status": "queued", "attempt": "1"})

    answers = await asyncio.gather(
        store.take(broken, LATER), store.take(ref, LATER), return_exceptions=True
    )

    assert isinstance(answers[0], ResponseError)
    assert isinstance(answers[1], Taken)


async def test_the_first_ending_wins_and_is_published_by_one_caller_at_a_time(
    redis: Redis,
) -> None:
    store = await _with_slot(redis)

    first = await store.record_ended(REF, COMPLETED, True, NOW, LATER)
    again = await store.record_ended(REF, Ending(Outcome.BUSY), False, NOW, LATER)
    after_lease = await store.record_ended(
        REF, Ending(Outcome.BUSY), False, NOW + timedelta(seconds=11), LATER
    )

    assert first is not None
    assert (first.ending, first.answered_too) == (COMPLETED, True)
    assert again is None  # another caller holds the right to publish it
    assert after_lease is not None
    assert (after_lease.ending, after_lease.answered_too) == (COMPLETED, False)
    await store.reported(REF)
    assert await store.record_ended(REF, None, False, NOW + timedelta(minutes=1), LATER) is None
    state = await store.state(REF)
    assert (state.ended, state.settled) == (True, True)


async def test_answered_is_recorded_once_and_never_after_the_ending(redis: Redis) -> None:
    store = await _with_slot(redis)
    second = AttemptRef("campaign-1", "call-1", 2)
    await redis.zadd(keys.dial_slots("campaign-1"), {second.slot: to_ms(NOW)})

    assert await store.record_answered(REF, LATER)
    assert not await store.record_answered(REF, LATER)
    await store.record_ended(second, Ending(Outcome.NO_ANSWER), False, NOW, LATER)
    assert not await store.record_answered(second, LATER)


async def test_an_attempt_the_scheduler_decided_takes_no_carrier_ending(redis: Redis) -> None:
    store = await _with_slot(redis)
    await redis.hset(keys.call("campaign-1", "call-1"), "outcome:1", '{"status": "failed"}')

    assert await store.record_ended(REF, COMPLETED, True, NOW, LATER) is None
    assert await redis.hget(keys.call("campaign-1", "call-1"), "ended:1") is None
    assert (await store.state(REF)).settled


async def test_overdue_attempts_are_taken_once_until_their_next_look(redis: Redis) -> None:
    store = AttemptStore(redis, claim_ttl_ms=60_000)
    refs = [AttemptRef(f"campaign-{i % 3}", f"call-{i}", 1) for i in range(40)]
    for ref in refs:
        await store.look_again_at(ref, NOW)
    await store.look_again_at(AttemptRef("campaign-9", "call-late", 1), LATER)

    taken = await store.overdue(NOW, NOW + timedelta(seconds=15), 100)
    again = await store.overdue(NOW + timedelta(seconds=14), NOW + timedelta(seconds=30), 100)
    later = await store.overdue(NOW + timedelta(seconds=15), NOW + timedelta(seconds=30), 100)

    assert sorted(taken, key=str) == sorted(refs, key=str)
    assert again == []
    assert sorted(later, key=str) == sorted(refs, key=str)
    await store.settled(refs[0])
    await store.look_again_if_waiting(refs[0], NOW)  # settled: not put back
    assert refs[0] not in await store.overdue(LATER, LATER, 100)


async def test_a_placement_is_recorded_with_the_attempts_next_look(redis: Redis) -> None:
    store = await _with_slot(redis)
    shard = keys.awaiting_outcome(keys.awaiting_shard_of(REF.call_id))
    slot_until = NOW + timedelta(minutes=10)

    # Not awaiting an outcome yet (its next look was never set, or it is settled): only
    # recorded, unless the placement itself puts it among those awaiting one.
    await store.record_placement(REF, "twilio", "CA1", slot_until, LATER)
    assert await redis.zscore(shard, REF.member) is None
    for _ in range(2):  # the same step again changes nothing
        await store.record_placement(REF, "sandbox", "SB1", slot_until, LATER, awaiting=True)
        assert await redis.zscore(shard, REF.member) == to_ms(LATER)
    state = await store.state(REF)
    assert (state.carrier, state.carrier_call_id) == ("sandbox", "SB1")
    assert await redis.zscore(keys.dial_slots(REF.campaign_id), REF.slot) == to_ms(slot_until)

    # Awaiting one: its next look moves.
    await store.record_placement(REF, "sandbox", "SB1", slot_until, NOW)
    assert await redis.zscore(shard, REF.member) == to_ms(NOW)
    await store.reported(REF)
    assert await redis.zscore(shard, REF.member) is None
    assert (await store.state(REF)).settled


async def test_a_call_over_as_placed_is_recorded_as_its_placement_then_its_ending(
    redis: Redis,
) -> None:
    store = await _with_slot(redis)
    other = AttemptRef("campaign-1", "call-2", 1)
    await _with_slot(redis, other)
    shard = keys.awaiting_outcome(keys.awaiting_shard_of(REF.call_id))
    placed = (NOW + timedelta(minutes=10), LATER)
    report_slot = NOW + timedelta(minutes=20)

    report = await store.record_placed_and_ended(
        REF, "sandbox", "SB1", placed, COMPLETED, True, NOW, report_slot
    )
    # The same in two steps, for another attempt: the same state.
    await store.record_placement(other, "sandbox", "SB1", *placed, awaiting=True)
    assert await store.record_ended(other, COMPLETED, True, NOW, report_slot) == report

    assert report == Report(COMPLETED, answered_too=True)
    one = await redis.hgetall(keys.call(REF.campaign_id, REF.call_id))
    two = await redis.hgetall(keys.call(other.campaign_id, other.call_id))
    assert one == two
    assert one["carrier:1"] == "sandbox|SB1"
    assert await redis.zscore(shard, REF.member) == to_ms(LATER)
    slots = keys.dial_slots(REF.campaign_id)
    assert await redis.zscore(slots, REF.slot) == await redis.zscore(slots, other.slot)
    assert await redis.zscore(slots, REF.slot) == to_ms(report_slot)
    # Again (a step repeated): the ending stays the first, and is being published already.
    again = await store.record_placed_and_ended(
        REF, "sandbox", "SB1", placed, Ending(Outcome.FAILED), False, NOW, report_slot
    )
    assert again is None
    assert await redis.hgetall(keys.call(REF.campaign_id, REF.call_id)) == one


async def test_a_carrier_call_id_leads_back_to_its_attempt(redis: Redis) -> None:
    store = AttemptStore(redis, claim_ttl_ms=60_000)
    await store.index(REF, "twilio", "CA" + "1" * 32)

    assert await store.find("twilio", "CA" + "1" * 32) == REF
    assert await store.find("twilio", "CA" + "2" * 32) is None
    assert await store.find("other", "CA" + "1" * 32) is None
