"""Campaign rules end to end through the scheduler and dialer, on the real broker and Redis."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from redis.asyncio import Redis

from shared import keys
from shared.events import CallDue, CallEvent, CallEventType, call_event
from shared.models import Agent, CallStatus, CampaignStatus
from shared.rules.dnc import DncEntry, EntrySource
from shared.rules.outcomes import Outcome
from shared.rules.prompts import MAX_PROMPT_BYTES, PROMPT_TOO_LARGE
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.store.dnc import DncStore
from shared.topics import CALLS_DUE, CALLS_EVENTS
from tests.clock import MovableClock
from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.integration.pipeline import (
    Events,
    publish_requests,
    request,
    running_pipeline,
    seed_campaign,
)
from tests.support import read_topic

pytestmark = pytest.mark.integration
Records = list[ConsumerRecord[bytes, bytes]]


def _has(call_id: str, *types: CallEventType) -> Callable[[Records], bool]:
    def check(records: Records) -> bool:
        seen = {e.type for e in Events(records).of(call_id)}
        return all(t in seen for t in types)

    return check


async def test_a_call_is_released_within_two_seconds_of_its_window_opening(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis
) -> None:
    real = datetime.now(UTC)
    opening = (real + timedelta(minutes=2)).replace(second=0, microsecond=0)
    if opening.hour == 23:
        opening += timedelta(hours=1)
    clock = MovableClock(opening - timedelta(seconds=3))
    start = f"{opening:%H:%M}"
    await seed_campaign(
        redis,
        clock.now(),
        call_time_ranges=[{"start": start, "end": f"{opening.hour + 1:02d}:00"}],
    )
    async with running_pipeline(kafka_server.bootstrap, redis_server.url, clock, dialer=False):
        await publish_requests(
            kafka_server.bootstrap, request("campaign-1", "+12125550101", "call-1")
        )
        records = await read_topic(kafka_server.bootstrap, CALLS_DUE, lambda r: len(r) >= 1)
        arrived = clock.now()
    due = CallDue.model_validate_json(records[0].value)
    assert due.call_id == "call-1"
    assert due.due_at == opening
    assert opening <= due.released_at < opening + timedelta(seconds=2)
    assert arrived - opening < timedelta(seconds=2)


async def test_no_answer_is_retried_after_its_cooldown_then_ends(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis
) -> None:
    clock = MovableClock()
    await seed_campaign(
        redis, clock.now(), max_retries=1, retry_cooldown_hours=1, no_answer_cooldown_hours=2
    )
    async with running_pipeline(kafka_server.bootstrap, redis_server.url, clock):
        await publish_requests(
            kafka_server.bootstrap, request("campaign-1", "+12125550104", "call-1")
        )
        records = await read_topic(
            kafka_server.bootstrap,
            CALLS_EVENTS,
            _has("call-1", CallEventType.NO_ANSWER, CallEventType.RETRY_SCHEDULED),
        )
        first = Events(records).of("call-1", CallEventType.NO_ANSWER)[0]
        retry = Events(records).of("call-1", CallEventType.RETRY_SCHEDULED)[0]
        assert first.will_retry
        assert first.attempt == 1
        assert retry.attempt == 2
        assert first.next_attempt_at == retry.next_attempt_at
        assert first.next_attempt_at is not None
        wait = first.next_attempt_at - first.occurred_at
        assert timedelta(hours=2) <= wait < timedelta(hours=2, seconds=5)
        stored = await redis.hgetall(keys.call("campaign-1", "call-1"))
        assert stored["status"] == "queued"
        assert stored["attempt"] == "2"

        clock.advance(timedelta(hours=2, seconds=1))

        def ended(r: Records) -> bool:
            return any(not e.will_retry for e in Events(r).of("call-1", CallEventType.NO_ANSWER))

        records = await read_topic(kafka_server.bootstrap, CALLS_EVENTS, ended)
    events = Events(records)
    final = next(e for e in events.of("call-1", CallEventType.NO_ANSWER) if not e.will_retry)
    assert final.attempt == 2
    assert final.status == "no_answer"
    assert len(events.of("call-1", CallEventType.STARTED)) == 2
    assert await redis.hget(keys.active_numbers("campaign-1"), "+12125550104") is None


async def test_an_invalid_number_error_ends_the_call_at_once(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis
) -> None:
    clock = MovableClock()
    await seed_campaign(redis, clock.now(), max_retries=3)
    async with running_pipeline(kafka_server.bootstrap, redis_server.url, clock):
        await publish_requests(
            kafka_server.bootstrap, request("campaign-1", "+12125550109", "call-9")
        )
        records = await read_topic(
            kafka_server.bootstrap, CALLS_EVENTS, _has("call-9", CallEventType.FAILED)
        )
    (failed,) = Events(records).of("call-9", CallEventType.FAILED)
    assert failed.error == "invalid_number"
    assert not failed.will_retry
    assert Events(records).of("call-9", CallEventType.RETRY_SCHEDULED) == []
    assert (await redis.hget(keys.call("campaign-1", "call-9"), "status")) == "failed"


async def _publish_call_events(bootstrap: str, *events: CallEvent) -> None:
    """Publishes call events as the dialer does: in order, keyed by call id."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                CALLS_EVENTS, event.model_dump_json().encode(), key=event.call_id.encode()
            )
    finally:
        await producer.stop()


async def test_a_cancelled_outcome_ends_the_call_cancelled_without_a_retry(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis
) -> None:
    clock = MovableClock()
    campaign = await seed_campaign(redis, clock.now(), max_retries=3)
    number = "+12125550102"
    # No dialer: the test reports the attempt as a carrier that cancelled the call would.
    async with running_pipeline(kafka_server.bootstrap, redis_server.url, clock, dialer=False):
        await publish_requests(kafka_server.bootstrap, request(campaign.id, number, "gone"))
        await read_topic(kafka_server.bootstrap, CALLS_DUE, lambda r: len(r) >= 1)
        call = await CallStore(redis, 16).get(campaign.id, "gone")
        assert call is not None
        assert await redis.zscore(keys.dial_slots(campaign.id), keys.slot_member("gone", 1))
        await _publish_call_events(
            kafka_server.bootstrap,
            call_event(
                call,
                CallEventType.STARTED,
                clock.now(),
                attempt=1,
                max_attempts=4,
                status=CallStatus.IN_PROGRESS.value,
            ),
            call_event(
                call,
                CallEventType.ATTEMPT_ENDED,
                clock.now(),
                attempt=1,
                max_attempts=4,
                status=Outcome.CANCELLED.value,
                outcome=Outcome.CANCELLED.value,
            ),
        )
        records = await read_topic(
            kafka_server.bootstrap, CALLS_EVENTS, _has("gone", CallEventType.CANCELLED)
        )
    events = Events(records)
    (cancelled,) = events.of("gone", CallEventType.CANCELLED)
    assert (cancelled.status, cancelled.outcome) == ("cancelled", "cancelled")
    assert (cancelled.attempt, cancelled.will_retry, cancelled.next_attempt_at) == (1, False, None)
    assert events.of("gone", CallEventType.RETRY_SCHEDULED) == []
    stored = await redis.hgetall(keys.call(campaign.id, "gone"))
    assert (stored["status"], stored["attempt"]) == ("cancelled", "1")
    assert await redis.hget(keys.active_numbers(campaign.id), number) is None
    assert await redis.zscore(keys.dial_slots(campaign.id), keys.slot_member("gone", 1)) is None
    stats = await redis.hgetall(keys.campaign_stats(campaign.id))
    assert {name: stats.get(name, "0") for name in ("queued", "in_progress", "cancelled")} == {
        "queued": "0",
        "in_progress": "0",
        "cancelled": "1",
    }


async def test_a_call_whose_prompt_is_over_the_limit_fails_without_being_dialed(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis
) -> None:
    clock = MovableClock()
    campaign = await seed_campaign(redis, clock.now(), max_retries=3)
    # Requests published to the topic are not checked against the prompt: the dialer is.
    agent = Agent(
        id=campaign.agent_id,
        environment_id="env-a",
        name="A",
        # Two 8,000-byte values (a payload within its 16 KiB) render past the prompt's limit;
        # a short name and one such topic stay within it.
        prompt="Hello {{name}}, " + "about {{topic}}. " * 4,
        created_at=clock.now(),
    )
    await CatalogStore(redis).save_agent(agent)
    fill = "x" * 8_000
    assert 5 * len(fill) > MAX_PROMPT_BYTES > 4 * len(fill) + 40
    async with running_pipeline(kafka_server.bootstrap, redis_server.url, clock):
        await publish_requests(
            kafka_server.bootstrap,
            # Ends in 7: dialed, the sandbox would fail it with a retryable `carrier_error`.
            request(campaign.id, "+12125550137", "big", payload={"name": fill, "topic": fill}),
            request(campaign.id, "+12125550130", "small", payload={"name": "Ann", "topic": fill}),
        )
        records = await read_topic(
            kafka_server.bootstrap,
            CALLS_EVENTS,
            lambda r: (
                _has("big", CallEventType.FAILED)(r) and _has("small", CallEventType.COMPLETED)(r)
            ),
        )
    events = Events(records)
    assert events.of("big", CallEventType.STARTED) == []
    (failed,) = events.of("big", CallEventType.FAILED)
    assert (failed.status, failed.error, failed.will_retry) == ("failed", PROMPT_TOO_LARGE, False)
    assert events.of("big", CallEventType.RETRY_SCHEDULED) == []
    stored = await redis.hgetall(keys.call(campaign.id, "big"))
    assert stored["status"] == "failed"
    assert "started:1" not in stored
    assert await redis.hget(keys.active_numbers(campaign.id), "+12125550137") is None
    assert await redis.zscore(keys.dial_slots(campaign.id), keys.slot_member("big", 1)) is None
    # The same prompt within the limit is dialed.
    assert len(events.of("small", CallEventType.STARTED)) == 1


async def test_a_paused_campaign_holds_its_calls_and_resuming_releases_them(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis
) -> None:
    clock = MovableClock()
    campaign = await seed_campaign(redis, clock.now())
    catalog = CatalogStore(redis)
    await catalog.transition_campaign(
        campaign.id, CampaignStatus.PAUSED, [CampaignStatus.ACTIVE], clock.now()
    )
    async with running_pipeline(kafka_server.bootstrap, redis_server.url, clock):
        await publish_requests(kafka_server.bootstrap, request(campaign.id, "+12125550120", "held"))
        queued = await read_topic(
            kafka_server.bootstrap, CALLS_EVENTS, _has("held", CallEventType.QUEUED)
        )
        assert Events(queued).of("held", CallEventType.QUEUED)[0].reason == "campaign_paused"
        shard = keys.due_shard_of("held", 16)
        member = keys.due_member(campaign.id, "held")
        first_score = await redis.zscore(keys.due_queue(shard), member)
        assert first_score is not None

        async def looked_at_twice() -> bool:
            score = await redis.zscore(keys.due_queue(shard), member)
            return score is not None and score >= first_score + 2000

        await wait_until(looked_at_twice, within=15)
        assert await redis.hget(keys.call(campaign.id, "held"), "status") == "queued"
        assert not Events(
            await read_topic(kafka_server.bootstrap, CALLS_EVENTS, lambda r: True)
        ).of("held", CallEventType.STARTED)

        await catalog.transition_campaign(
            campaign.id, CampaignStatus.ACTIVE, [CampaignStatus.PAUSED], clock.now()
        )
        await read_topic(
            kafka_server.bootstrap, CALLS_EVENTS, _has("held", CallEventType.COMPLETED)
        )


async def test_a_number_put_on_the_dnc_list_while_queued_is_never_dialed(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis
) -> None:
    clock = MovableClock()
    campaign = await seed_campaign(redis, clock.now())
    catalog = CatalogStore(redis)
    await catalog.transition_campaign(
        campaign.id, CampaignStatus.PAUSED, [CampaignStatus.ACTIVE], clock.now()
    )
    async with running_pipeline(kafka_server.bootstrap, redis_server.url, clock):
        await publish_requests(kafka_server.bootstrap, request(campaign.id, "+12125550130", "dnc"))
        await read_topic(kafka_server.bootstrap, CALLS_EVENTS, _has("dnc", CallEventType.QUEUED))
        entry = DncEntry(
            number="+12125550130",
            scope="environment",
            source=EntrySource.API,
            reason="asked",
            created_at=clock.now(),
        )
        await DncStore(redis).add_many("env-a", "environment", [entry])
        await catalog.transition_campaign(
            campaign.id, CampaignStatus.ACTIVE, [CampaignStatus.PAUSED], clock.now()
        )
        records = await read_topic(
            kafka_server.bootstrap, CALLS_EVENTS, _has("dnc", CallEventType.BLOCKED)
        )
    assert Events(records).of("dnc", CallEventType.STARTED) == []
    assert await redis.hget(keys.call(campaign.id, "dnc"), "status") == "blocked"
    assert await redis.hget(keys.active_numbers(campaign.id), "+12125550130") is None


async def test_after_a_completed_call_the_number_rests_in_every_campaign(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis
) -> None:
    clock = MovableClock()
    await seed_campaign(
        redis,
        clock.now(),
        "campaign-a",
        enable_post_completion_cooldown=True,
        post_completion_cooldown_hours=3,
    )
    await seed_campaign(redis, clock.now(), "campaign-b")
    async with running_pipeline(kafka_server.bootstrap, redis_server.url, clock):
        await publish_requests(
            kafka_server.bootstrap, request("campaign-a", "+12125550140", "first")
        )
        records = await read_topic(
            kafka_server.bootstrap, CALLS_EVENTS, _has("first", CallEventType.COMPLETED)
        )
        completed_at = Events(records).of("first", CallEventType.ANSWERED)[0].occurred_at
        await publish_requests(
            kafka_server.bootstrap, request("campaign-b", "+12125550140", "second")
        )
        records = await read_topic(
            kafka_server.bootstrap, CALLS_EVENTS, _has("second", CallEventType.QUEUED)
        )
    (queued,) = Events(records).of("second", CallEventType.QUEUED)
    assert queued.reason == "cooldown"
    assert queued.next_attempt_at is not None
    rest = queued.next_attempt_at - completed_at
    assert timedelta(hours=3) <= rest < timedelta(hours=3, seconds=5)
    assert Events(records).of("second", CallEventType.STARTED) == []


async def test_a_call_still_queued_after_the_end_date_expires(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis
) -> None:
    clock = MovableClock()
    today = clock.now().date()
    campaign = await seed_campaign(
        redis,
        clock.now(),
        start_date=str(today - timedelta(days=1)),
        end_date=str(today + timedelta(days=1)),
    )
    catalog = CatalogStore(redis)
    await catalog.transition_campaign(
        campaign.id, CampaignStatus.PAUSED, [CampaignStatus.ACTIVE], clock.now()
    )
    async with running_pipeline(kafka_server.bootstrap, redis_server.url, clock):
        await publish_requests(kafka_server.bootstrap, request(campaign.id, "+12125550150", "late"))
        await read_topic(kafka_server.bootstrap, CALLS_EVENTS, _has("late", CallEventType.QUEUED))
        clock.advance(timedelta(days=3))
        await catalog.transition_campaign(
            campaign.id, CampaignStatus.ACTIVE, [CampaignStatus.PAUSED], clock.now()
        )
        records = await read_topic(
            kafka_server.bootstrap, CALLS_EVENTS, _has("late", CallEventType.EXPIRED)
        )
    assert Events(records).of("late", CallEventType.STARTED) == []
    assert await redis.hget(keys.call(campaign.id, "late"), "status") == "expired"
    assert await redis.hget(keys.active_numbers(campaign.id), "+12125550150") is None
