"""The notifier in-process on the real broker and Redis: first attempts, retries from the
delay queue, the deliveries log, redelivery and refused targets, against a local receiver."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaProducer
from faststream import FastStream
from redis.asyncio import Redis
from standardwebhooks.webhooks import Webhook as SignatureVerifier

from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from services.notifier.app import create_app as create_notifier
from services.notifier.settings import NotifierSettings
from shared.bus import DLQ_TOPIC_HEADER
from shared.events import CallEvent, CallEventType, CampaignEventType, campaign_event, event_id_for
from shared.rules.webhook_targets import REFUSED_TARGET
from shared.settings import KafkaSettings
from shared.store.deliveries import DeliveryRef, DeliveryStore
from shared.topics import CALLS_DLQ, CALLS_EVENTS, CAMPAIGN_EVENTS, call_key
from shared.webhooks.dispatch import WEBHOOK_DISABLED
from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.integration.conftest import IngestClient
from tests.support import TOKEN, Receiver, read_topic

pytestmark = pytest.mark.integration

# The retry schedule in milliseconds: 5 ms, 300 ms, 1.8 s, 7.2 s … (each ±20%).
SCALE = 0.001
StartNotifier = Callable[..., Awaitable[FastStream]]


@pytest.fixture
async def api(kafka_server: KafkaServer, redis_server: RedisServer) -> AsyncIterator[IngestClient]:
    settings = IngestSettings(
        kafka=kafka_server.settings(),
        redis=redis_server.settings(),
        api_tokens=f"{TOKEN}:env-a",
        dev_api_token=None,
        allow_private_webhook_targets=True,
    )
    async with TestClient(TestServer(create_ingest(settings))) as client:
        yield IngestClient(client)


@pytest.fixture
async def start_notifier(
    kafka_server: KafkaServer, redis_server: RedisServer
) -> AsyncIterator[StartNotifier]:
    """Starts notifier copies (same consumer group) with short retry waits."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**overrides: Any) -> FastStream:
            values: dict[str, Any] = {
                "kafka": KafkaSettings(
                    bootstrap_servers=kafka_server.bootstrap,
                    session_timeout_ms=2000,
                    heartbeat_interval_ms=300,
                ),
                "redis": redis_server.settings(),
                "retry_scale": SCALE,
                "retry_poll_ms": 10,
                "allow_private_targets": True,
                **overrides,
            }
            return await stack.enter_async_context(create_notifier(NotifierSettings(**values)))

        yield start


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


@pytest.fixture
async def producer(kafka_server: KafkaServer) -> AsyncIterator[AIOKafkaProducer]:
    started = AIOKafkaProducer(bootstrap_servers=kafka_server.bootstrap, acks="all")
    await started.start()
    yield started
    await started.stop()


def call_event(
    campaign_id: str, call_id: str, event_type: CallEventType = CallEventType.COMPLETED
) -> CallEvent:
    return CallEvent(
        event_id=event_id_for(call_id, 1, event_type),
        type=event_type,
        call_id=call_id,
        campaign_id=campaign_id,
        environment_id="env-a",
        to="+12125550100",
        attempt=1,
        max_attempts=1,
        status="completed",
        occurred_at=datetime.now(UTC),
    )


async def publish(producer: AIOKafkaProducer, event: CallEvent) -> None:
    await producer.send_and_wait(
        CALLS_EVENTS, event.model_dump_json().encode(), key=call_key(event.call_id)
    )


async def setup_webhook(api: IngestClient, url: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    campaign = await api.campaign()
    body = {"name": "CRM", "webhook_url": url, "events": ["campaign_call.completed"], **fields}
    status, created = await api.call("POST", f"/campaigns/{campaign['id']}/webhooks", body)
    assert status == 201, created
    return campaign["id"], dict(created["data"])


async def deliveries_log(api: IngestClient, campaign_id: str, webhook_id: str) -> list[Any]:
    status, body = await api.call(
        "GET", f"/campaigns/{campaign_id}/webhooks/{webhook_id}/deliveries?per_page=100"
    )
    assert status == 200, body
    return list(body["data"])


async def test_a_receiver_failing_twice_gets_the_same_event_three_times_signed(
    api: IngestClient, start_notifier: StartNotifier, receiver: Receiver, producer: AIOKafkaProducer
) -> None:
    await start_notifier()
    campaign_id, hook = await setup_webhook(api, receiver.url, max_retries=3)
    receiver.statuses = [500, 500]
    event = call_event(campaign_id, "call-1")

    await publish(producer, event)

    async def delivered() -> bool:
        log = await deliveries_log(api, campaign_id, hook["id"])
        return bool(log) and log[0]["state"] == "delivered"

    await wait_until(delivered, within=30)
    assert len(receiver.deliveries) == 3
    verifier = SignatureVerifier(hook["webhook_secret"])
    for delivery in receiver.deliveries:
        verifier.verify(delivery.body, delivery.headers)
        assert delivery.headers["webhook-id"] == event.event_id
        assert delivery.json()["id"] == event.event_id
    assert len({d.body for d in receiver.deliveries}) == 1
    first, second, third = (d.received_at for d in receiver.deliveries)
    # The schedule's waits, scaled: 5 s then 5 min become 5 ms then 300 ms (less 20% jitter).
    assert second - first >= 5 * SCALE * 0.8
    assert third - second >= 300 * SCALE * 0.8
    log = await deliveries_log(api, campaign_id, hook["id"])
    assert [(e["attempt"], e["trigger"], e["status_code"], e["state"]) for e in log] == [
        (3, "retry", 200, "delivered"),
        (2, "retry", 500, "pending"),
        (1, "event", 500, "pending"),
    ]
    assert {e["delivery_id"] for e in log} == {log[0]["delivery_id"]}
    assert {e["event_id"] for e in log} == {event.event_id}
    assert all(e["event_type"] == "campaign_call.completed" for e in log)
    assert log[0]["next_attempt_at"] is None
    assert all(e["next_attempt_at"] for e in log[1:])


async def test_a_receiver_that_always_fails_gets_one_plus_max_retries_attempts_then_redelivery(
    api: IngestClient,
    start_notifier: StartNotifier,
    receiver: Receiver,
    producer: AIOKafkaProducer,
    redis: Redis,
) -> None:
    await start_notifier()
    campaign_id, hook = await setup_webhook(api, receiver.url, max_retries=2)
    receiver.status = 503
    event = call_event(campaign_id, "call-2")

    await publish(producer, event)

    async def failed() -> bool:
        log = await deliveries_log(api, campaign_id, hook["id"])
        return bool(log) and log[0]["state"] == "failed"

    await wait_until(failed, within=30)
    log = await deliveries_log(api, campaign_id, hook["id"])
    assert [(e["attempt"], e["status_code"], e["state"]) for e in log] == [
        (3, 503, "failed"),
        (2, 503, "pending"),
        (1, 503, "pending"),
    ]
    # Nothing more is scheduled: no retry waits in the queue or is claimed.
    store = DeliveryStore(redis)
    ref = DeliveryRef(campaign_id, hook["id"], log[0]["delivery_id"])
    assert await store.claim_due(datetime.now(UTC) + timedelta(days=1), 10, datetime.now(UTC)) == []
    stored = await store.get(ref)
    assert stored is not None
    assert (stored.state, stored.attempts) == ("failed", 3)
    assert len(receiver.deliveries) == 3

    receiver.status = 200
    path = f"/campaigns/{campaign_id}/webhooks/{hook['id']}/deliveries/{ref.delivery_id}/redeliver"
    status, again = await api.call("POST", path)

    assert status == 200, again
    assert (again["data"]["attempt"], again["data"]["state"]) == (4, "delivered")
    assert len(receiver.deliveries) == 4
    last = receiver.deliveries[-1]
    assert last.headers["webhook-id"] == event.event_id
    assert last.body == receiver.deliveries[0].body
    SignatureVerifier(hook["webhook_secret"]).verify(last.body, last.headers)


async def test_a_receivers_retry_after_holds_the_retry_back_and_its_answer_is_logged(
    api: IngestClient, start_notifier: StartNotifier, receiver: Receiver, producer: AIOKafkaProducer
) -> None:
    await start_notifier()
    campaign_id, hook = await setup_webhook(api, receiver.url, max_retries=1)
    receiver.statuses = [429]
    receiver.answer_body = b'{"error": "slow down"}'
    # 2 minutes, scaled like the schedule: 120 ms rather than the first wait's 5 ms.
    receiver.answer_headers = {"Retry-After": "120"}

    await publish(producer, call_event(campaign_id, "call-retry-after"))

    async def delivered() -> bool:
        log = await deliveries_log(api, campaign_id, hook["id"])
        return bool(log) and log[0]["state"] == "delivered"

    await wait_until(delivered, within=30)
    first, second = (d.received_at for d in receiver.deliveries)
    assert second - first >= 120 * SCALE
    log = await deliveries_log(api, campaign_id, hook["id"])
    assert [(e["status_code"], e["response_body"], e["response_truncated"]) for e in log] == [
        (200, '{"error": "slow down"}', False),
        (429, '{"error": "slow down"}', False),
    ]
    retry_at = datetime.fromisoformat(log[1]["next_attempt_at"])
    attempted_at = datetime.fromisoformat(log[1]["attempted_at"])
    assert retry_at - attempted_at >= timedelta(milliseconds=120)


async def test_a_replayed_event_is_not_sent_again(
    api: IngestClient,
    start_notifier: StartNotifier,
    receiver: Receiver,
    producer: AIOKafkaProducer,
    redis: Redis,
) -> None:
    await start_notifier()
    campaign_id, _ = await setup_webhook(api, receiver.url, include_call_events=True)
    first = call_event(campaign_id, "call-3", CallEventType.STARTED)
    later = call_event(campaign_id, "call-3", CallEventType.COMPLETED)

    await publish(producer, first)
    await publish(producer, first)
    await publish(producer, later)

    async def later_arrived() -> bool:
        return bool(receiver.of_type("campaign_call.completed"))

    await wait_until(later_arrived, within=30)
    assert [d.json()["type"] for d in receiver.deliveries] == [
        "campaign_call.started",
        "campaign_call.completed",
    ]
    # Delivered at the first attempt, replay included: no retry is left queued.
    far = datetime.now(UTC) + timedelta(days=1)
    assert await DeliveryStore(redis).claim_due(far, 10, far) == []


async def test_two_notifiers_never_send_one_retry_twice(
    api: IngestClient, start_notifier: StartNotifier, receiver: Receiver, producer: AIOKafkaProducer
) -> None:
    # Four retries of the schedule (5 s … 2 h) in under a second.
    await start_notifier(retry_scale=SCALE / 10)
    await start_notifier(retry_scale=SCALE / 10)
    campaign_id, hook = await setup_webhook(api, receiver.url, max_retries=4)
    receiver.status = 500
    for n in range(3):
        await publish(producer, call_event(campaign_id, f"call-4-{n}"))

    async def all_failed() -> bool:
        log = await deliveries_log(api, campaign_id, hook["id"])
        return len([e for e in log if e["state"] == "failed"]) == 3

    await wait_until(all_failed, within=30)
    log = await deliveries_log(api, campaign_id, hook["id"])
    assert len(log) == 15
    attempts = sorted((e["delivery_id"], e["attempt"]) for e in log)
    assert len(set(attempts)) == 15
    assert len(receiver.deliveries) == 15


async def test_a_target_private_at_send_time_fails_at_once_without_retries(
    api: IngestClient, start_notifier: StartNotifier, receiver: Receiver, producer: AIOKafkaProducer
) -> None:
    await start_notifier(allow_private_targets=False)
    campaign_id, hook = await setup_webhook(
        api, f"http://localhost:{receiver.port}/hooks", max_retries=3
    )

    await publish(producer, call_event(campaign_id, "call-5"))

    async def recorded() -> bool:
        return bool(await deliveries_log(api, campaign_id, hook["id"]))

    await wait_until(recorded, within=30)
    (entry,) = await deliveries_log(api, campaign_id, hook["id"])
    assert (entry["attempt"], entry["state"], entry["status_code"]) == (1, "failed", None)
    assert entry["error"] == REFUSED_TARGET
    assert receiver.deliveries == []


async def test_disabling_a_webhook_stops_its_retries(
    api: IngestClient, start_notifier: StartNotifier, receiver: Receiver, producer: AIOKafkaProducer
) -> None:
    # Waits long enough to switch the webhook off between the first attempt and the retry.
    await start_notifier(retry_scale=0.3)  # the first wait: 1.5 s ± 20%
    campaign_id, hook = await setup_webhook(api, receiver.url, max_retries=3)
    receiver.status = 500
    await publish(producer, call_event(campaign_id, "call-6"))

    async def attempted() -> bool:
        return len(receiver.deliveries) == 1

    await wait_until(attempted, within=30)
    status, toggled = await api.call(
        "PATCH", f"/campaigns/{campaign_id}/webhooks/{hook['id']}/toggle"
    )
    assert (status, toggled["data"]["enabled"]) == (200, False)

    async def stopped() -> bool:
        log = await deliveries_log(api, campaign_id, hook["id"])
        return bool(log) and log[0]["state"] == "failed"

    await wait_until(stopped, within=30)
    log = await deliveries_log(api, campaign_id, hook["id"])
    assert [(e["attempt"], e["error"]) for e in log] == [(2, WEBHOOK_DISABLED), (1, None)]
    assert len(receiver.deliveries) == 1


async def test_a_claim_whose_notifier_died_comes_back_after_its_lease(redis: Redis) -> None:
    store = DeliveryStore(redis)
    ref = DeliveryRef("camp-1", "wh-1", "d-1")
    now = datetime.now(UTC)
    await store.schedule(ref, now)

    claimed = await store.claim_due(now, 10, now + timedelta(seconds=30))
    assert claimed == [ref]
    # Claimed and leased: no one else gets it while the lease lasts.
    assert await store.claim_due(now + timedelta(seconds=29), 10, now) == []
    # The claimer died: once the lease ran out the retry is claimed again.
    later = now + timedelta(seconds=31)
    assert await store.claim_due(later, 10, later + timedelta(seconds=30)) == [ref]


async def test_an_attempt_under_way_cannot_be_claimed_twice(redis: Redis) -> None:
    store = DeliveryStore(redis)
    ref = DeliveryRef("camp-1", "wh-1", "d-2")
    now = datetime.now(UTC)
    assert await store.begin(ref, "evt", "campaign_call.completed", b"{}", now, now) is None
    replay = await store.begin(ref, "evt", "campaign_call.completed", b"{}", now, now)
    assert replay == "pending"

    first = await store.claim_attempt(ref, now, now + timedelta(seconds=30), manual=False)
    second = await store.claim_attempt(ref, now, now + timedelta(seconds=30), manual=True)

    assert (first.outcome, first.attempt, first.body) == ("ok", 1, b"{}")
    assert second.outcome == "busy"
    assert await store.record(ref, 1, "pending", now + timedelta(seconds=5), now, "{}")
    early = await store.claim_attempt(ref, now, now + timedelta(seconds=30), manual=False)
    assert early.outcome == "early"
    due = await store.claim_attempt(
        ref, now + timedelta(seconds=6), now + timedelta(seconds=36), manual=False
    )
    assert (due.outcome, due.attempt) == ("ok", 2)
    assert not await store.record(ref, 1, "delivered", None, now, "{}")
    assert await store.record(ref, 2, "delivered", None, now, "{}")
    done = await store.claim_attempt(
        ref, now + timedelta(seconds=60), now + timedelta(seconds=90), manual=False
    )
    assert (done.outcome, done.state) == ("done", "delivered")


async def test_a_campaigns_status_moves_reach_the_webhooks_listening_for_them(
    api: IngestClient, start_notifier: StartNotifier, receiver: Receiver
) -> None:
    await start_notifier()
    campaign = await api.campaign(activate=False, name="Spring")
    path = f"/campaigns/{campaign['id']}"
    lifecycle = ["campaign.started", "campaign.paused", "campaign.resumed", "campaign.cancelled"]
    for name, events, extra in (
        ("lifecycle", lifecycle, {}),
        ("calls only", ["campaign_call.completed"], {"include_call_events": True}),
    ):
        body = {"name": name, "webhook_url": receiver.url, "events": events, **extra}
        status, created = await api.call("POST", f"{path}/webhooks", body)
        assert status == 201, created
    hook = created["data"]

    for target in ("active", "paused", "active", "cancelled"):
        status, moved = await api.call("PATCH", f"{path}/status", {"status": target})
        assert status == 200, moved

    async def four_arrived() -> bool:
        return len(receiver.deliveries) >= 4

    await wait_until(four_arrived, within=30)
    # One campaign's events share a partition, so they arrive in the order the moves were made.
    bodies = [d.json() for d in receiver.deliveries]
    assert [b["type"] for b in bodies] == lifecycle
    assert [(b["data"]["previous_status"], b["data"]["status"]) for b in bodies] == [
        ("draft", "active"),
        ("active", "paused"),
        ("paused", "active"),
        ("active", "cancelled"),
    ]
    assert {b["campaign_id"] for b in bodies} == {campaign["id"]}
    assert {b["data"]["name"] for b in bodies} == {"Spring"}
    assert len({b["id"] for b in bodies}) == 4
    # The calls-only webhook (include_call_events) was told none of it.
    assert await deliveries_log(api, campaign["id"], hook["id"]) == []


async def test_a_bad_campaign_event_goes_to_the_dlq_and_the_next_is_delivered(
    kafka_server: KafkaServer,
    api: IngestClient,
    start_notifier: StartNotifier,
    receiver: Receiver,
    producer: AIOKafkaProducer,
) -> None:
    await start_notifier()
    campaign_id, _ = await setup_webhook(api, receiver.url, events=["campaign.paused"])
    good = campaign_event(
        CampaignEventType.PAUSED, campaign_id, "env-a", "active", "paused", datetime.now(UTC)
    )

    await producer.send_and_wait(CAMPAIGN_EVENTS, b'{"type": "campaign.nope"}', key=b"bad")
    await producer.send_and_wait(
        CAMPAIGN_EVENTS, good.model_dump_json().encode(), key=campaign_id.encode()
    )

    dead = await read_topic(kafka_server.bootstrap, CALLS_DLQ, lambda r: len(r) >= 1)
    assert [(r.key, dict(r.headers)[DLQ_TOPIC_HEADER]) for r in dead] == [
        (b"bad", CAMPAIGN_EVENTS.encode())
    ]

    async def delivered() -> bool:
        return bool(receiver.of_type("campaign.paused"))

    await wait_until(delivered, within=30)
    assert receiver.of_type("campaign.paused")[0].json()["id"] == good.event_id
