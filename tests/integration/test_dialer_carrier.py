"""The dialer on a real carrier protocol: the scheduler and the dialer in-process on the real
broker and Redis, the dialer placing calls through the fake Twilio REST API in tests/ and
learning how they went from its signed callbacks (or, when they do not come, by asking)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiokafka import ConsumerRecord
from redis.asyncio import Redis

from devstack.processes import free_port
from services.dialer.adapters.carrier_twilio import STATUS_CALLBACK_PATH as TWILIO_STATUS_PATH
from services.dialer.settings import TwilioSettings
from shared import keys
from shared.events import CallEventType
from shared.topics import CALLS_EVENTS
from tests.clock import MovableClock
from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.fake_carrier import DROP, FROM_NUMBER, FakeCarrier, ForcedResponse
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

ENDINGS = (
    CallEventType.COMPLETED,
    CallEventType.NO_ANSWER,
    CallEventType.BUSY,
    CallEventType.VOICEMAIL,
    CallEventType.FAILED,
    CallEventType.CANCELLED,
)


@pytest.fixture
async def carrier() -> AsyncIterator[FakeCarrier]:
    fake = await FakeCarrier().start()
    fake.talk_seconds = 0
    try:
        yield fake
    finally:
        await fake.stop()


def twilio_dialer(fake: FakeCarrier, **overrides: Any) -> dict[str, Any]:
    port = free_port()
    return {
        "provider": "twilio",
        "twilio": TwilioSettings(
            account_sid=fake.account_sid,
            auth_token=fake.auth_token,
            from_number=FROM_NUMBER,
            api_url=fake.api_url,
        ),
        "http_port": port,
        "public_url": f"http://127.0.0.1:{port}",
        "watch_interval_ms": 100,
        **overrides,
    }


def _ended(*call_ids: str) -> Callable[[Records], bool]:
    def check(records: Records) -> bool:
        events = Events(records)
        return all(events.of(call_id, *ENDINGS) for call_id in call_ids)

    return check


async def _one_call(
    kafka: KafkaServer,
    redis_server: RedisServer,
    redis: Redis,
    carrier: FakeCarrier,
    *,
    campaign: dict[str, Any],
    dialer: dict[str, Any] | None = None,
    to: str = "+12125550101",
    until: Callable[[Records], bool] | None = None,
    **extra: Any,
) -> Events:
    """One call, requested on the topic, through the scheduler and a dialer on `carrier`;
    the events topic once `until` (by default: the call ended) holds."""
    clock = MovableClock()
    await seed_campaign(redis, clock.now(), **campaign)
    async with running_pipeline(
        kafka.bootstrap,
        redis_server.url,
        clock,
        dialer_overrides=twilio_dialer(carrier, **(dialer or {})),
    ):
        await publish_requests(kafka.bootstrap, request("campaign-1", to, "call-1", **extra))
        records = await read_topic(kafka.bootstrap, CALLS_EVENTS, until or _ended("call-1"))
    return Events(records)


def _one_ending_per_attempt(events: Events, call_id: str) -> None:
    ended = events.of(call_id, CallEventType.ATTEMPT_ENDED)
    attempts = [e.attempt for e in ended]
    assert len(attempts) == len(set(attempts)), [(e.attempt, e.outcome) for e in ended]
    public = events.of(call_id, *ENDINGS)
    assert len(public) == len({e.attempt for e in public})


@pytest.mark.parametrize(
    ("to", "outcome", "error", "answered"),
    [
        pytest.param("+12125550101", "completed", None, True, id="completed"),
        pytest.param("+12125550106", "voicemail", None, True, id="machine"),
        pytest.param("+12125550104", "no_answer", None, False, id="no-answer"),
        pytest.param("+12125550105", "busy", None, False, id="busy"),
        pytest.param("+12125550107", "failed", "carrier_error", False, id="carrier-error"),
        pytest.param("+12125550109", "failed", "invalid_number", False, id="invalid-number"),
    ],
)
@pytest.mark.redis_backends("single")
async def test_a_call_is_placed_with_the_carrier_and_ends_by_its_callbacks(
    kafka_server: KafkaServer,
    redis_server: RedisServer,
    redis: Redis,
    carrier: FakeCarrier,
    to: str,
    outcome: str,
    error: str | None,
    answered: bool,
) -> None:
    events = await _one_call(
        kafka_server, redis_server, redis, carrier, campaign={"max_retries": 0}, to=to
    )
    (ended,) = events.of("call-1", CallEventType.ATTEMPT_ENDED)
    assert (ended.outcome, ended.error) == (outcome, error)
    assert bool(events.of("call-1", CallEventType.ANSWERED)) is answered
    assert len(events.of("call-1", CallEventType.STARTED)) == 1
    (create,) = carrier.creates
    assert create.get("To") == to
    assert create.get("From") == FROM_NUMBER
    assert (create.get("StatusCallback") or "").endswith(TWILIO_STATUS_PATH)
    # Every callback the carrier sent was accepted.
    assert carrier.sent_callbacks
    assert {sent.status for sent in carrier.sent_callbacks} == {200}


async def test_repeated_reversed_and_late_callbacks_end_each_attempt_once(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis, carrier: FakeCarrier
) -> None:
    clock = MovableClock()
    await seed_campaign(redis, clock.now(), max_retries=0)
    numbers = {"repeat": "+12125550111", "reversed": "+12125550121", "late": "+12125550131"}
    async with running_pipeline(
        kafka_server.bootstrap, redis_server.url, clock, dialer_overrides=twilio_dialer(carrier)
    ):
        for mode, to in numbers.items():
            carrier.callbacks = mode  # type: ignore[assignment]
            await publish_requests(
                kafka_server.bootstrap, request("campaign-1", to, f"call-{mode}")
            )
            await read_topic(kafka_server.bootstrap, CALLS_EVENTS, _ended(f"call-{mode}"))
            # Every callback of the call has been answered before the next mode is set.
            await carrier.wait_for(
                lambda: all(s.status is not None for s in carrier.sent_callbacks), within=10
            )
        records = await read_topic(
            kafka_server.bootstrap, CALLS_EVENTS, _ended(*(f"call-{m}" for m in numbers))
        )
    events = Events(records)
    for mode in numbers:
        call_id = f"call-{mode}"
        _one_ending_per_attempt(events, call_id)
        (ended,) = events.of(call_id, CallEventType.ATTEMPT_ENDED)
        assert ended.outcome == "completed", mode
        assert len(events.of(call_id, CallEventType.ANSWERED)) == 1, mode
        # `answered` goes out before the ending, even when the carrier told them reversed.
        kinds = [e.type for e in events.of(call_id)]
        assert kinds.index(CallEventType.ANSWERED) < kinds.index(CallEventType.ATTEMPT_ENDED)
    assert {sent.status for sent in carrier.sent_callbacks} == {200}


async def test_without_a_final_callback_the_dialer_asks_the_carrier(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis, carrier: FakeCarrier
) -> None:
    carrier.callbacks = "withhold_final"
    events = await _one_call(
        kafka_server,
        redis_server,
        redis,
        carrier,
        campaign={"max_retries": 0},
        dialer={"callback_timeout_seconds": 1},
    )
    (ended,) = events.of("call-1", CallEventType.ATTEMPT_ENDED)
    assert ended.outcome == "completed"
    assert [r.path.rsplit("/", 1)[-1] for r in carrier.status_requests] == [
        f"{sid}.json" for sid in carrier.calls
    ]
    # Nothing is left waiting for an outcome.
    shard = keys.awaiting_outcome(keys.awaiting_shard_of("call-1"))
    await wait_until(lambda: _empty(redis, shard))


async def _empty(redis: Redis, key: str) -> bool:
    return int(await redis.zcard(key)) == 0


async def test_a_carrier_that_cannot_tell_ends_the_attempt_as_outcome_unknown(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis, carrier: FakeCarrier
) -> None:
    carrier.callbacks = "none"
    carrier.next_status_responses = [404] * 50
    events = await _one_call(
        kafka_server,
        redis_server,
        redis,
        carrier,
        campaign={"max_retries": 0},
        dialer={"callback_timeout_seconds": 1, "status_lookups": 1, "carrier_max_tries": 1},
    )
    (ended,) = events.of("call-1", CallEventType.ATTEMPT_ENDED)
    assert (ended.outcome, ended.error) == ("failed", "outcome_unknown")


async def test_a_carrier_that_keeps_failing_ends_the_attempt_carrier_unavailable(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis, carrier: FakeCarrier
) -> None:
    carrier.next_create_responses = [503, DROP, 500]
    events = await _one_call(
        kafka_server,
        redis_server,
        redis,
        carrier,
        campaign={"max_retries": 1, "failed_cooldown_hours": 1},
        dialer={"carrier_max_tries": 3},
        until=lambda r: bool(Events(r).of("call-1", CallEventType.RETRY_SCHEDULED)),
    )
    (failed,) = events.of("call-1", CallEventType.FAILED)
    assert failed.error == "carrier_unavailable"
    assert failed.will_retry
    assert len(carrier.creates) == 3
    assert not carrier.calls


async def test_a_retried_create_request_places_the_call_once(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis, carrier: FakeCarrier
) -> None:
    carrier.next_create_responses = [ForcedResponse(429, retry_after="0"), 502]
    events = await _one_call(
        kafka_server, redis_server, redis, carrier, campaign={"max_retries": 0}
    )
    (ended,) = events.of("call-1", CallEventType.ATTEMPT_ENDED)
    assert ended.outcome == "completed"
    assert len(carrier.creates) == 3
    assert len(carrier.calls) == 1


async def test_a_number_the_carrier_refuses_ends_invalid_number_and_is_not_retried(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis, carrier: FakeCarrier
) -> None:
    carrier.next_create_responses = [ForcedResponse(400, code=21211)]
    events = await _one_call(
        kafka_server,
        redis_server,
        redis,
        carrier,
        campaign={"max_retries": 3, "failed_cooldown_hours": 1},
    )
    (failed,) = events.of("call-1", CallEventType.FAILED)
    assert failed.error == "invalid_number"
    assert not failed.will_retry
    assert len(carrier.creates) == 1


async def test_test_calls_go_to_the_sandbox_whatever_the_provider(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis, carrier: FakeCarrier
) -> None:
    events = await _one_call(
        kafka_server,
        redis_server,
        redis,
        carrier,
        campaign={"max_retries": 0},
        is_testing=True,
    )
    (ended,) = events.of("call-1", CallEventType.ATTEMPT_ENDED)
    assert ended.outcome == "completed"
    assert carrier.creates == []


async def test_callbacks_with_a_bad_signature_are_refused_and_unknown_calls_answered(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis, carrier: FakeCarrier
) -> None:
    clock = MovableClock()
    await seed_campaign(redis, clock.now(), max_retries=0)
    carrier.callbacks = "none"
    settings = twilio_dialer(carrier, callback_timeout_seconds=600)
    url = f"{settings['public_url']}{TWILIO_STATUS_PATH}"
    async with running_pipeline(
        kafka_server.bootstrap, redis_server.url, clock, dialer_overrides=settings
    ):
        await publish_requests(
            kafka_server.bootstrap, request("campaign-1", "+12125550101", "call-1")
        )
        await carrier.wait_for(lambda: bool(carrier.calls), within=20)
        (sid,) = carrier.calls
        completed = {
            "AccountSid": carrier.account_sid,
            "CallSid": sid,
            "CallStatus": "completed",
            "AnsweredBy": "human",
            "CallDuration": "7",
        }
        forged = await carrier.send_callback(url, completed, signature="bm90LWEtc2lnbmF0dXJl")
        unsigned = await _post_unsigned(url, completed)
        tampered = await carrier.send_callback(
            url + "?x=1", completed, signature=(await _signature_of(carrier, url, completed))
        )
        assert (forged.status, unsigned, tampered.status) == (403, 403, 403)
        # Nothing changed: the attempt still waits for its outcome.
        assert await redis.hget(keys.call("campaign-1", "call-1"), "ended:1") is None
        unknown = await carrier.send_callback(url, {**completed, "CallSid": "CA" + "f" * 32})
        assert unknown.status == 200
        genuine = await carrier.send_callback(url, completed)
        assert genuine.status == 200
        records = await read_topic(kafka_server.bootstrap, CALLS_EVENTS, _ended("call-1"))
    (ended,) = Events(records).of("call-1", CallEventType.ATTEMPT_ENDED)
    assert (ended.outcome, ended.duration_seconds) == ("completed", 7.0)


async def _signature_of(carrier: FakeCarrier, url: str, params: dict[str, str]) -> str:
    from services.dialer.domain.twilio import twilio_signature

    return twilio_signature(url, params, carrier.auth_token)


async def _post_unsigned(url: str, params: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as session, session.post(url, data=params) as response:
        return response.status


async def test_calls_waiting_behind_the_in_flight_limit_keep_their_slots(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis, carrier: FakeCarrier
) -> None:
    """A carrier slow to take calls, one placement at a time and a one-second lease: the
    calls waiting their turn in the dialer outlive the lease and still ring, none lost."""
    clock = MovableClock()
    await seed_campaign(redis, clock.now(), max_retries=0, max_concurrent_calls=10)
    carrier.create_delay_seconds = 1.5
    async with running_pipeline(
        kafka_server.bootstrap,
        redis_server.url,
        clock,
        reap_interval_ms=100,
        dial_slot_lease_ms=1000,
        dialer_overrides=twilio_dialer(carrier, max_in_flight=1, dial_slot_lease_ms=1000),
    ):
        await publish_requests(
            kafka_server.bootstrap,
            *(request("campaign-1", f"+1212555014{i}", f"call-{i}") for i in range(3)),
        )
        records = await read_topic(
            kafka_server.bootstrap,
            CALLS_EVENTS,
            _ended("call-0", "call-1", "call-2"),
            within=40,
        )
    events = Events(records)
    for i in range(3):
        (ended,) = events.of(f"call-{i}", CallEventType.ATTEMPT_ENDED)
        assert (ended.outcome, ended.error) == ("completed", None)
    assert len(carrier.calls) == 3
