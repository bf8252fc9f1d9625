"""How calls are stored in Redis: a compact call hash, a body key, the per-campaign duplicate
registry and the listing, on a real Redis with its default configuration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
import pytest
from redis.asyncio import Redis

from shared import keys
from shared.clock import to_ms
from shared.models import Call, CallFacts, CallStatus
from shared.store.calls import CallStore, DueCall

pytestmark = pytest.mark.integration

CAMPAIGN = "campaign-1"
NUMBER = "+12125550123"
T0 = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)
TTL_MS = 60_000
PAYLOAD: dict[str, Any] = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "appointment_at": "2026-03-14T15:30:00Z",
    "clinic": "Midtown Dental, 5th Avenue, Suite 1200",
    "account": 12345678901234567890,
    "balance": 1234.5678,
    "tiny": 1e-7,
    "negative": -9007199254740993,
    "nested": {"list": [1, 2.5, None, True, "ünïcödé ☎"], "empty": {}},
}
CONTEXT: dict[str, Any] = {"crm_id": "0042-7731", "score": 0.1, "big": 98765432109876543210 // 10}


def _call(
    call_id: str = "call-1",
    to: str = NUMBER,
    at: datetime = T0,
    **overrides: Any,
) -> Call:
    fields: dict[str, Any] = {
        "id": call_id,
        "campaign_id": CAMPAIGN,
        "environment_id": "env-a",
        "to": to,
        "payload": PAYLOAD,
        "context": CONTEXT,
        "attempt": 1,
        "scheduled_at": at + timedelta(minutes=5),
        "scheduling_reason": "initial_delay",
        "created_at": at,
        "updated_at": at,
        **overrides,
    }
    return Call.model_validate(fields)


@pytest.fixture
def store(redis: Redis) -> CallStore:
    return CallStore(redis, 16)


async def _holder(redis: Redis, number: str = NUMBER) -> str | None:
    return cast(str | None, await redis.hget(keys.active_numbers(CAMPAIGN), number))


async def test_a_call_hash_stays_a_listpack_however_long_its_payload(
    store: CallStore, redis: Redis
) -> None:
    call = _call()
    assert len(orjson.dumps(call.payload)) > 64

    assert (await store.accept(call, TTL_MS)).outcome == "accepted"
    await store.enqueue(call, T0)

    key = keys.call(CAMPAIGN, call.id)
    assert await redis.object("encoding", key) == "listpack"
    fields = cast(dict[str, str], await redis.hgetall(key))
    assert max(len(value.encode()) for value in fields.values()) <= 64
    assert "payload" not in fields
    assert "context" not in fields


async def test_payload_and_context_read_back_exactly(store: CallStore, redis: Redis) -> None:
    call = _call()
    await store.accept(call, TTL_MS)

    stored = await store.get(CAMPAIGN, call.id)

    assert stored == call
    assert stored is not None
    assert stored.payload["account"] == 12345678901234567890
    assert stored.payload["balance"] == 1234.5678
    assert stored.context["score"] == 0.1
    body = await redis.get(keys.call_body(CAMPAIGN, call.id))
    assert body is not None
    assert "12345678901234567890" in body
    assert orjson.loads(body) == [PAYLOAD, CONTEXT]


async def test_times_read_back_to_the_microsecond(store: CallStore) -> None:
    call = _call(scheduled_at=T0 + timedelta(days=400, microseconds=1))
    await store.accept(call, TTL_MS)

    stored = await store.get(CAMPAIGN, call.id)

    assert stored is not None
    assert (stored.created_at, stored.updated_at, stored.scheduled_at) == (
        call.created_at,
        call.updated_at,
        call.scheduled_at,
    )


async def test_flags_read_back(store: CallStore) -> None:
    call = _call(is_testing=True, allow_duplicates=True)
    await store.accept(call, TTL_MS)

    stored = await store.get(CAMPAIGN, call.id)

    assert stored is not None
    assert (stored.is_testing, stored.allow_duplicates) == (True, True)


async def test_a_traced_call_keeps_its_trace_context_in_its_listpack(
    store: CallStore, redis: Redis
) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    traced, untraced = _call(trace=traceparent), _call("call-2", "+12125550199")
    await store.accept(traced, TTL_MS)
    await store.accept(untraced, TTL_MS)

    stored = await store.get_many([(CAMPAIGN, traced.id), (CAMPAIGN, untraced.id)])

    assert [call.trace if call else "gone" for call in stored] == [traceparent, None]
    assert await redis.hget(keys.call(CAMPAIGN, traced.id), "trace") == traceparent
    assert await redis.object("encoding", keys.call(CAMPAIGN, traced.id)) == "listpack"
    assert not await redis.hexists(keys.call(CAMPAIGN, untraced.id), "trace")


async def test_a_call_without_payload_or_context_keeps_no_body_key(
    store: CallStore, redis: Redis
) -> None:
    call = _call(payload={}, context={})
    await store.accept(call, TTL_MS)

    assert await redis.exists(keys.call_body(CAMPAIGN, call.id)) == 0
    assert await store.get(CAMPAIGN, call.id) == call


async def test_get_many_reads_hash_and_body_of_each_call_in_order(store: CallStore) -> None:
    first = _call("call-1", "+12125550101")
    second = _call("call-2", "+12125550102", context={"only": "context"}, payload={})
    await store.accept(first, TTL_MS)
    await store.accept(second, TTL_MS)

    found = await store.get_many([(CAMPAIGN, "call-2"), (CAMPAIGN, "nope"), (CAMPAIGN, "call-1")])

    assert found == [second, None, first]


async def test_get_many_reads_calls_of_several_campaigns_in_the_order_asked(
    store: CallStore,
) -> None:
    first = _call("call-1", "+12125550101")
    other = _call("call-2", "+12125550102", campaign_id="campaign-2")
    third = _call("call-3", "+12125550103", payload={}, context={})
    for call in (first, other, third):
        await store.accept(call, TTL_MS)

    found = await store.get_many(
        [
            (CAMPAIGN, "call-3"),
            ("campaign-2", "call-2"),
            ("campaign-2", "nope"),
            (CAMPAIGN, "call-1"),
        ]
    )

    assert found == [third, other, None, first]


async def test_due_calls_reads_what_a_release_needs_of_each_call_in_order(
    store: CallStore,
) -> None:
    plain = _call("call-1", "+12125550101", attempt=2)
    testing = _call("call-2", "+12125550102", campaign_id="campaign-2", is_testing=True)
    for call in (plain, testing):
        await store.accept(call, TTL_MS)

    found = await store.due_calls(
        [("campaign-2", "call-2"), (CAMPAIGN, "nope"), (CAMPAIGN, "call-1")]
    )

    assert found == [
        DueCall("call-2", "campaign-2", "env-a", "+12125550102", CallStatus.QUEUED, 1, True),
        None,
        DueCall("call-1", CAMPAIGN, "env-a", "+12125550101", CallStatus.QUEUED, 2, False),
    ]


async def test_rescheduled_claims_wait_for_their_times_without_a_lease(
    store: CallStore, redis: Redis
) -> None:
    calls = [_call(f"call-{i}", f"+1212555010{i}", at=T0 - timedelta(hours=1)) for i in range(6)]
    for call in calls:
        await store.accept(call, TTL_MS)
        await store.enqueue(call, T0)
    claims = [
        claim for shard in range(16) for claim in await store.claim_due(shard, T0, 100, 30_000)
    ]
    assert len(claims) == 6
    later = {claim.call_id: T0 + timedelta(seconds=10 * (i + 1)) for i, claim in enumerate(claims)}

    await store.reschedule_many((claim, later[claim.call_id]) for claim in claims)

    for claim in claims:
        score = await redis.zscore(keys.due_queue(claim.shard), claim.member)
        assert score == to_ms(later[claim.call_id])
        assert await redis.zscore(keys.due_inflight(claim.shard), claim.member) is None
    assert [c for s in range(16) for c in await store.claim_due(s, T0, 100, 30_000)] == []


async def _waiting(redis: Redis) -> dict[str, float]:
    rows = await redis.zrange(keys.handoffs(CAMPAIGN), 0, -1, withscores=True)
    return dict(cast(list[tuple[str, float]], rows))


async def test_an_accepted_call_waits_to_be_handed_on_until_it_is_queued(
    store: CallStore, redis: Redis
) -> None:
    call = _call()

    await store.accept(call, TTL_MS)

    assert await _waiting(redis) == {"call-1": to_ms(T0)}
    assert await redis.smembers(keys.campaigns_with_handoffs()) == {CAMPAIGN}
    await store.enqueue(call, T0 + timedelta(seconds=1))
    assert await _waiting(redis) == {}


async def test_many_calls_are_queued_at_once_each_once(store: CallStore, redis: Redis) -> None:
    here = [_call(f"call-{i}", f"+1212555010{i}") for i in range(6)]
    there = [_call(f"other-{i}", f"+1212555020{i}", campaign_id="campaign-2") for i in range(3)]
    for call in (*here, *there):
        assert (await store.accept(call, TTL_MS)).outcome == "accepted"
    # One already queued, then claimed and handed on by the pump: it left the due queue.
    await store.enqueue(here[0], T0)
    (claim,) = [
        c
        for shard in range(16)
        for c in await store.claim_due(shard, T0 + timedelta(hours=1), 100, 30_000)
    ]
    await store.handed_off([claim])
    gone = _call("gone", "+12125550999")

    # Each call once, whatever the order and repeats.
    await store.enqueue_many([*here, *there, here[3], gone], T0 + timedelta(seconds=1))

    for call in (*here[1:], *there):
        shard = keys.due_shard_of(call.id, 16)
        member = keys.due_member(call.campaign_id, call.id)
        assert await redis.zscore(keys.due_queue(shard), member) == to_ms(call.scheduled_at)
        held = await redis.hget(keys.active_numbers(call.campaign_id), call.to)
        assert held == f"{call.id}|"
        assert await redis.hget(keys.call(call.campaign_id, call.id), "enqueued") == "1"
        assert await redis.zscore(keys.handoffs(call.campaign_id), call.id) is None
    queued = sum([await redis.zcard(keys.due_queue(shard)) for shard in range(16)])
    # Neither the claimed call nor the one never stored went (back) in.
    assert queued == len(here) - 1 + len(there)
    assert not await redis.exists(keys.call(CAMPAIGN, gone.id))


async def test_a_call_cancelled_before_it_was_queued_no_longer_waits_to_be_handed_on(
    store: CallStore, redis: Redis
) -> None:
    kept, cancelled = _call("kept", "+12125550101"), _call("cancelled", "+12125550102")
    await store.accept(kept, TTL_MS)
    await store.accept(cancelled, TTL_MS)

    await store.cancel_queued(cancelled, T0)

    assert await _waiting(redis) == {"kept": to_ms(T0)}


async def test_a_duplicate_or_a_second_accept_adds_no_hand_off(
    store: CallStore, redis: Redis
) -> None:
    first = _call("first")
    await store.accept(first, TTL_MS)
    await store.enqueue(first, T0)

    await store.accept(first, TTL_MS)
    await store.accept(_call("second", at=T0 + timedelta(seconds=1)), TTL_MS)

    assert await _waiting(redis) == {}


async def test_stranded_calls_are_those_stored_before_the_given_time_and_not_queued(
    store: CallStore,
) -> None:
    early = _call("early", "+12125550101")
    late = _call("late", "+12125550102", at=T0 + timedelta(seconds=10))
    queued = _call("queued", "+12125550103")
    for call in (early, late, queued):
        await store.accept(call, TTL_MS)
    await store.enqueue(queued, T0)

    assert await store.stranded(T0 + timedelta(seconds=5), 100) == [(CAMPAIGN, "early")]
    assert sorted(await store.stranded(T0 + timedelta(seconds=10), 100)) == [
        (CAMPAIGN, "early"),
        (CAMPAIGN, "late"),
    ]
    assert await store.stranded(T0 + timedelta(seconds=10), 1) == [(CAMPAIGN, "early")]
    await store.drop_handoff(CAMPAIGN, "early")
    assert await store.stranded(T0 + timedelta(seconds=10), 100) == [(CAMPAIGN, "late")]


async def test_a_campaign_leaves_the_hand_off_index_only_when_gone_and_nothing_waits(
    store: CallStore, redis: Redis
) -> None:
    call = _call()
    await store.accept(call, TTL_MS)
    await redis.hset(keys.campaign("other"), "updated_at", "x")
    await redis.sadd(keys.campaigns_with_handoffs(), "other")

    await store.stranded(T0, 100)  # the campaign's hash is absent here, but a call waits
    assert await redis.smembers(keys.campaigns_with_handoffs()) == {CAMPAIGN, "other"}
    await store.enqueue(call, T0)
    await store.stranded(T0, 100)

    assert await redis.smembers(keys.campaigns_with_handoffs()) == {"other"}


async def test_the_listing_is_oldest_first_and_holds_each_call_once(store: CallStore) -> None:
    calls = [_call(f"call-{i}", f"+1212555010{i}") for i in range(5)]
    for call in calls:
        await store.accept(call, TTL_MS)
    assert (await store.accept(calls[2], TTL_MS)).outcome == "exists"

    assert await store.call_ids(CAMPAIGN) == [call.id for call in calls]


async def test_a_second_call_to_a_reserved_number_is_a_duplicate(
    store: CallStore, redis: Redis
) -> None:
    await store.accept(_call("first"), TTL_MS)

    result = await store.accept(_call("second", at=T0 + timedelta(seconds=1)), TTL_MS)

    assert (result.outcome, result.other) == ("duplicate", "first")
    assert await redis.exists(keys.call(CAMPAIGN, "second")) == 0


async def test_a_reservation_never_confirmed_frees_the_number_at_its_deadline(
    store: CallStore, redis: Redis
) -> None:
    await store.accept(_call("first"), TTL_MS)
    deadline = T0 + timedelta(milliseconds=TTL_MS)

    just_before = await store.accept(
        _call("early", at=deadline - timedelta(milliseconds=1)), TTL_MS
    )
    at_deadline = await store.accept(_call("second", at=deadline), TTL_MS)

    assert (just_before.outcome, just_before.other) == ("duplicate", "first")
    assert at_deadline.outcome == "accepted"
    held = await _holder(redis)
    assert held is not None
    assert held.startswith("second|")


async def test_accept_measures_the_deadline_from_the_now_it_is_given(store: CallStore) -> None:
    await store.accept(_call("first"), TTL_MS, now=T0 + timedelta(hours=1))

    later = T0 + timedelta(hours=1, milliseconds=TTL_MS - 1)
    result = await store.accept(_call("second"), TTL_MS, now=later)

    assert result.outcome == "duplicate"


async def test_a_confirmed_reservation_lasts_until_the_call_ends(
    store: CallStore, redis: Redis
) -> None:
    first = _call("first")
    await store.accept(first, TTL_MS)
    await store.enqueue(first, T0 + timedelta(seconds=1))
    assert await _holder(redis) == "first|"

    much_later = T0 + timedelta(days=30)
    result = await store.accept(_call("second", at=much_later), TTL_MS)
    assert (result.outcome, result.other) == ("duplicate", "first")

    await store.cancel_queued(first, much_later)
    assert await _holder(redis) is None
    assert (await store.accept(_call("third", at=much_later), TTL_MS)).outcome == "accepted"


async def test_a_call_that_lost_its_lapsed_reservation_never_frees_the_new_holder(
    store: CallStore, redis: Redis
) -> None:
    first = _call("first")
    await store.accept(first, TTL_MS)
    later = T0 + timedelta(milliseconds=TTL_MS)
    second = _call("second", at=later)
    assert (await store.accept(second, TTL_MS)).outcome == "accepted"

    await store.enqueue(first, later)
    assert await _holder(redis) == f"second|{int(later.timestamp() * 1000) + TTL_MS}"
    await store.cancel_queued(first, later)
    await store.apply_outcome(first, 1, "{}", CallStatus.FAILED, later, terminal=True)

    held = await _holder(redis)
    assert held is not None
    assert held.startswith("second|")


async def test_a_lapsed_reservation_is_taken_again_when_its_call_is_queued(
    store: CallStore, redis: Redis
) -> None:
    call = _call()
    await store.accept(call, TTL_MS)

    await store.enqueue(call, T0 + timedelta(hours=2))

    assert await _holder(redis) == "call-1|"


async def test_a_number_freed_by_an_outcome_can_be_called_again(
    store: CallStore, redis: Redis
) -> None:
    call = _call()
    await store.accept(call, TTL_MS)
    await store.enqueue(call, T0)

    await store.apply_outcome(call, 1, "{}", CallStatus.COMPLETED, T0, terminal=True)

    assert await _holder(redis) is None
    assert (await store.accept(_call("again"), TTL_MS)).outcome == "accepted"


async def test_a_call_id_that_contains_the_separator_is_read_back_whole(
    store: CallStore, redis: Redis
) -> None:
    call = _call("order|42")
    await store.accept(call, TTL_MS)
    await store.enqueue(call, T0)

    result = await store.accept(_call("other", at=T0 + timedelta(days=1)), TTL_MS)

    assert (result.outcome, result.other) == ("duplicate", "order|42")
    await store.cancel_queued(call, T0)
    assert await _holder(redis) is None


async def test_allowed_duplicates_take_no_reservation(store: CallStore, redis: Redis) -> None:
    first = _call("first", allow_duplicates=True)
    second = _call("second", allow_duplicates=True)

    assert (await store.accept(first, TTL_MS)).outcome == "accepted"
    assert (await store.accept(second, TTL_MS)).outcome == "accepted"
    await store.enqueue(first, T0)

    assert await _holder(redis) is None


async def test_a_call_checked_against_an_older_campaign_is_not_stored(
    store: CallStore, redis: Redis
) -> None:
    await redis.hset(keys.campaign(CAMPAIGN), "updated_at", "2026-03-02T09:00:00Z")

    stale = await store.accept(_call("stale"), TTL_MS, campaign_version="2026-03-01T09:00:00Z")
    current = await store.accept(_call("current"), TTL_MS, campaign_version="2026-03-02T09:00:00Z")

    assert stale.outcome == "campaign_changed"
    assert await redis.exists(keys.call(CAMPAIGN, "stale")) == 0
    assert current.outcome == "accepted"
    assert await store.call_ids(CAMPAIGN) == ["current"]


async def test_a_calls_facts_for_webhooks_are_read_without_the_whole_call(
    store: CallStore,
) -> None:
    other_campaign = "campaign-2"
    with_context = _call(is_testing=True)
    bare = _call("call-2", "+12125550199", payload={}, context={})
    elsewhere = _call("call-3", "+12125550188", campaign_id=other_campaign, context={"k": [1]})
    for call in (with_context, bare, elsewhere):
        await store.accept(call, TTL_MS)

    found = await store.facts_many(
        [
            (CAMPAIGN, with_context.id),
            (other_campaign, elsewhere.id),
            (CAMPAIGN, "gone"),
            (CAMPAIGN, bare.id),
        ]
    )

    assert found == [
        CallFacts(True, with_context.scheduled_at, with_context.created_at, CONTEXT),
        CallFacts(False, elsewhere.scheduled_at, elsewhere.created_at, {"k": [1]}),
        None,
        CallFacts(False, bare.scheduled_at, bare.created_at, {}),
    ]
    # The context comes back exactly as given (big integers included).
    assert found[0] is not None
    assert orjson.dumps(found[0].context) == orjson.dumps(CONTEXT)


async def test_a_call_stored_without_its_times_is_no_fact_but_an_error(
    store: CallStore, redis: Redis
) -> None:
    await redis.hset(keys.call(CAMPAIGN, "broken"), mapping={"env": "env-a"})

    with pytest.raises(ValueError, match="broken"):
        await store.facts_many([(CAMPAIGN, "broken")])
