"""The notifier in-process on the real broker and Redis: first attempts, retries from the
delay queue, the deliveries log, redelivery and refused targets, against a local receiver."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
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
from services.notifier.dispatch import DISABLED_NOW, WEBHOOK_DISABLED
from shared import keys
from shared.bus import DLQ_TOPIC_HEADER
from shared.events import CallEvent, CallEventType, CampaignEventType, campaign_event, event_id_for
from shared.rules.delivery_retries import delivery_id_for
from shared.rules.webhook_health import FAILING, FAILING_FOR, GONE
from shared.rules.webhook_targets import REFUSED_TARGET
from shared.store.deliveries import DeliveryRef, DeliveryStore, NewDelivery, Recorded
from shared.topics import CALLS_DLQ, CALLS_EVENTS, CAMPAIGN_EVENTS, call_key
from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.integration.conftest import IngestClient, StartNotifier
from tests.support import TOKEN, Receiver, read_topic

pytestmark = pytest.mark.integration

# The retry schedule in milliseconds: 5 ms, 300 ms, 1.8 s, 7.2 s … (each ±20%).
SCALE = 0.001


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
async def start_notifier(start_notifier: StartNotifier) -> StartNotifier:
    """Notifier copies with the retry schedule in milliseconds."""

    async def start(**overrides: Any) -> FastStream:
        return await start_notifier(**{"retry_scale": SCALE, **overrides})

    return start


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

    assert status == 202, again
    assert again["data"] == {"delivery_id": ref.delivery_id, "state": "queued"}

    async def redelivered() -> bool:
        log = await deliveries_log(api, campaign_id, hook["id"])
        return len(log) == 4

    await wait_until(redelivered, within=30)
    (last_entry, *_) = await deliveries_log(api, campaign_id, hook["id"])
    assert (last_entry["attempt"], last_entry["trigger"], last_entry["state"]) == (
        4,
        "redeliver",
        "delivered",
    )
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
    campaign_id, hook = await setup_webhook(api, receiver.url, include_call_events=True)
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
    # Both settled at their first attempt, replay included.
    store = DeliveryStore(redis)
    for event in (first, later):
        ref = DeliveryRef(campaign_id, hook["id"], delivery_id_for(hook["id"], event.event_id))
        stored = await store.get(ref)
        assert stored is not None
        assert (stored.state, stored.attempts) == ("delivered", 1)
    assert len(receiver.deliveries) == 2


async def test_a_receiver_that_never_answers_in_time_holds_up_no_other_webhook(
    api: IngestClient, start_notifier: StartNotifier, producer: AIOKafkaProducer
) -> None:
    await start_notifier(endpoint_concurrency=8)
    # Answers a second after the webhook's shortest timeout (5 s): every attempt times out.
    slow = await Receiver(delay_s=6).start()
    quick = await Receiver().start()
    try:
        slow_campaign, slow_hook = await setup_webhook(api, slow.url, timeout=5, max_retries=0)
        quick_campaign, _ = await setup_webhook(api, quick.url)
        for n in range(40):
            await publish(producer, call_event(slow_campaign, f"slow-{n}"))

        async def slow_is_busy() -> bool:
            return slow.busy >= 8

        await wait_until(slow_is_busy, within=20)
        published_at = time.monotonic()
        await publish(producer, call_event(quick_campaign, "quick-1"))

        async def quick_received() -> bool:
            return len(quick.deliveries) == 1

        await wait_until(quick_received, within=20)
        # On time, while every place the slow endpoint may hold is taken.
        assert quick.deliveries[0].received_at - published_at < 2.5
        assert slow.busy >= 8

        async def slow_received_all() -> bool:
            return len(slow.deliveries) == 40

        await wait_until(slow_received_all, within=90)
        # Never more at once than its cap: each of its 8 places starts an attempt at most
        # once per timeout, so no stretch shorter than the timeout sees more than 8 arrive.
        arrivals = sorted(d.received_at for d in slow.deliveries)
        most = max(
            sum(1 for later in arrivals if start <= later < start + 4.5) for start in arrivals
        )
        assert most == 8
        assert len({d.headers["webhook-id"] for d in slow.deliveries}) == 40

        async def all_failed() -> bool:
            log = await deliveries_log(api, slow_campaign, slow_hook["id"])
            return len(log) == 40 and {e["state"] for e in log} == {"failed"}

        await wait_until(all_failed, within=20)
        log = await deliveries_log(api, slow_campaign, slow_hook["id"])
        assert {e["error"] for e in log} == {"Timed out after 5 s."}
    finally:
        await slow.stop()
        await quick.stop()


async def test_a_webhook_that_answers_fast_gets_a_backlog_without_it_going_back_to_the_queue(
    api: IngestClient, start_notifier: StartNotifier, receiver: Receiver, producer: AIOKafkaProducer
) -> None:
    # Two at a time, and an attempt sent back to the queue would wait a minute.
    await start_notifier(endpoint_concurrency=2, endpoint_busy_retry_ms=60_000)
    campaign_id, _ = await setup_webhook(api, receiver.url)
    for n in range(100):
        await publish(producer, call_event(campaign_id, f"backlog-{n}"))

    async def all_received() -> bool:
        return len(receiver.deliveries) == 100

    await wait_until(all_received, within=30)
    assert len({d.headers["webhook-id"] for d in receiver.deliveries}) == 100


async def test_attempts_waiting_on_a_webhook_that_turned_slow_give_their_places_back(
    api: IngestClient, start_notifier: StartNotifier, producer: AIOKafkaProducer
) -> None:
    await start_notifier(
        max_in_flight=8,
        endpoint_concurrency=2,
        endpoint_waiting_ms=200,
        endpoint_busy_retry_ms=60_000,
    )
    # Not heard from yet, the slow endpoint is taken for fast: it gets every place at first.
    slow = await Receiver(delay_s=6).start()
    quick = await Receiver().start()
    try:
        slow_campaign, _ = await setup_webhook(api, slow.url, timeout=5, max_retries=0)
        quick_campaign, _ = await setup_webhook(api, quick.url)
        for n in range(20):
            await publish(producer, call_event(slow_campaign, f"slow-{n}"))

        async def slow_is_busy() -> bool:
            return slow.busy == 2

        await wait_until(slow_is_busy, within=20)
        published_at = time.monotonic()
        for n in range(4):
            await publish(producer, call_event(quick_campaign, f"quick-{n}"))

        async def quick_received() -> bool:
            return len(quick.deliveries) == 4

        await wait_until(quick_received, within=20)
        # Long before the slow endpoint's first attempts time out (5 s) and free their places:
        # the attempts that waited for its turn gave theirs back after 0.4 s.
        assert max(d.received_at for d in quick.deliveries) - published_at < 3
        assert slow.busy == 2
    finally:
        await slow.stop()
        await quick.stop()


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


async def test_deliveries_of_a_campaign_are_begun_together_and_replays_keep_their_state(
    redis: Redis,
) -> None:
    store = DeliveryStore(redis)
    now = datetime.now(UTC)
    claimed_until = now + timedelta(seconds=30)
    seen = DeliveryRef("camp-1", "wh-1", "d-seen")
    assert await store.begin(seen, "evt-0", "campaign_call.started", b"{}", now) is None
    batch = [
        NewDelivery(seen, "evt-0", "campaign_call.started", b"{}"),
        NewDelivery(DeliveryRef("camp-1", "wh-1", "d-new"), "evt-1", "campaign_call.ended", b"[1]"),
        NewDelivery(
            DeliveryRef("camp-1", "wh-2", "d-mine"),
            "evt-2",
            "campaign_call.completed",
            b"[2]",
            claimed_until,
        ),
    ]

    assert await store.begin_many(batch, now) == ["pending", None, None]
    # The new ones are stored whole; the one claimed for its caller cannot be claimed again
    # until then, the other is due now.
    fresh = await store.claim_attempt(batch[1].ref, now, claimed_until)
    assert (fresh.outcome, fresh.attempt, fresh.event_id, fresh.event_type, fresh.body) == (
        "ok",
        1,
        "evt-1",
        "campaign_call.ended",
        b"[1]",
    )
    mine = await store.claim_attempt(batch[2].ref, now, claimed_until)
    assert mine.outcome == "busy"
    assert mine.until is not None
    assert abs(mine.until - claimed_until) < timedelta(milliseconds=1)
    with pytest.raises(ValueError, match="one campaign"):
        await store.begin_many(
            [batch[1], NewDelivery(DeliveryRef("camp-2", "wh-9", "d-9"), "evt-9", "t", b"{}")], now
        )


async def test_an_attempt_under_way_cannot_be_claimed_twice(redis: Redis) -> None:
    store = DeliveryStore(redis)
    ref = DeliveryRef("camp-1", "wh-1", "d-2")
    now = datetime.now(UTC)
    assert await store.begin(ref, "evt", "campaign_call.completed", b"{}", now) is None
    replay = await store.begin(ref, "evt", "campaign_call.completed", b"{}", now)
    assert replay == "pending"

    first = await store.claim_attempt(ref, now, now + timedelta(seconds=30))
    second = await store.claim_attempt(ref, now, now + timedelta(seconds=30))
    assert await store.request_redelivery(ref, now) == "busy"

    assert (first.outcome, first.attempt, first.body, first.trigger) == ("ok", 1, b"{}", "event")
    assert second.outcome == "busy"
    recorded = await store.record(
        ref, 1, "pending", now + timedelta(seconds=5), now, "{}", delivered=False
    )
    assert recorded.moved
    assert recorded.failing_since is not None
    early = await store.claim_attempt(ref, now, now + timedelta(seconds=30))
    assert early.outcome == "early"
    due = await store.claim_attempt(ref, now + timedelta(seconds=6), now + timedelta(seconds=36))
    assert (due.outcome, due.attempt, due.trigger) == ("ok", 2, "retry")
    assert not (await store.record(ref, 1, "delivered", None, now, "{}", delivered=True)).moved
    settled = await store.record(ref, 2, "delivered", None, now, "{}", delivered=True)
    assert settled == Recorded(moved=True, failing_since=None)
    later = now + timedelta(seconds=60)
    done = await store.claim_attempt(ref, later, later + timedelta(seconds=30))
    assert (done.outcome, done.state) == ("done", "delivered")
    # A redelivery asked for claims the next attempt whatever the state, once.
    assert await store.request_redelivery(ref, later) == "ok"
    manual = await store.claim_attempt(ref, later, later + timedelta(seconds=30))
    assert (manual.outcome, manual.attempt, manual.trigger) == ("ok", 3, "redeliver")
    assert await store.request_redelivery(DeliveryRef("camp-1", "wh-1", "nope"), now) == "missing"


async def test_every_attempt_of_a_delivery_claims_the_trace_context_stored_with_it(
    redis: Redis,
) -> None:
    store = DeliveryStore(redis)
    traced, untraced = DeliveryRef("camp-1", "wh-1", "d-3"), DeliveryRef("camp-1", "wh-1", "d-4")
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 vendor=1"
    now = datetime.now(UTC)
    await store.begin(traced, "evt-3", "campaign_call.completed", b"{}", now, trace=trace)
    await store.begin(untraced, "evt-4", "campaign_call.completed", b"{}", now)

    first = await store.claim_attempt(traced, now, now + timedelta(seconds=30))
    assert (first.outcome, first.trace) == ("ok", trace)
    await store.record(traced, 1, "pending", now, now, "{}", delivered=False)
    retry = await store.claim_attempt(traced, now, now + timedelta(seconds=30))
    assert (retry.outcome, retry.trigger, retry.trace) == ("ok", "retry", trace)
    plain = await store.claim_attempt(untraced, now, now + timedelta(seconds=30))
    assert (plain.outcome, plain.trace) == ("ok", None)


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


async def test_a_410_disables_the_webhook_and_nothing_more_is_sent_to_it(
    api: IngestClient, start_notifier: StartNotifier, receiver: Receiver, producer: AIOKafkaProducer
) -> None:
    await start_notifier()
    campaign_id, hook = await setup_webhook(api, receiver.url, max_retries=3)
    # A second webhook of the campaign shows when later events were handled.
    witness = await Receiver().start()
    try:
        status, created = await api.call(
            "POST",
            f"/campaigns/{campaign_id}/webhooks",
            {"name": "witness", "webhook_url": witness.url, "events": ["campaign_call.completed"]},
        )
        assert status == 201, created
        receiver.status = 410

        await publish(producer, call_event(campaign_id, "call-gone-1"))

        async def disabled() -> bool:
            _, read = await api.call("GET", f"/campaigns/{campaign_id}/webhooks/{hook['id']}")
            return read["data"]["enabled"] is False

        await wait_until(disabled, within=30)
        _, read = await api.call("GET", f"/campaigns/{campaign_id}/webhooks/{hook['id']}")
        assert read["data"]["disabled_reason"] == GONE
        (entry,) = await deliveries_log(api, campaign_id, hook["id"])
        assert (entry["status_code"], entry["state"], entry["next_attempt_at"]) == (
            410,
            "failed",
            None,
        )
        assert entry["error"] == f"{GONE} {DISABLED_NOW}"

        await publish(producer, call_event(campaign_id, "call-gone-2"))

        async def witness_has_both() -> bool:
            return len(witness.deliveries) == 2

        await wait_until(witness_has_both, within=30)
        assert len(receiver.deliveries) == 1
        assert len(await deliveries_log(api, campaign_id, hook["id"])) == 1
    finally:
        await witness.stop()


async def test_a_webhook_failing_every_attempt_for_five_days_is_disabled(
    api: IngestClient,
    start_notifier: StartNotifier,
    receiver: Receiver,
    producer: AIOKafkaProducer,
    redis: Redis,
) -> None:
    await start_notifier()
    campaign_id, hook = await setup_webhook(api, receiver.url, max_retries=3)
    # Its attempts have failed since just over five days ago.
    since = datetime.now(UTC) - FAILING_FOR - timedelta(minutes=1)
    await redis.set(keys.webhook_failing(campaign_id, hook["id"]), int(since.timestamp() * 1000))
    receiver.status = 500

    await publish(producer, call_event(campaign_id, "call-failing"))

    async def stopped() -> bool:
        log = await deliveries_log(api, campaign_id, hook["id"])
        return bool(log) and log[0]["state"] == "failed"

    await wait_until(stopped, within=30)
    _, read = await api.call("GET", f"/campaigns/{campaign_id}/webhooks/{hook['id']}")
    assert (read["data"]["enabled"], read["data"]["disabled_reason"]) == (False, FAILING)
    log = await deliveries_log(api, campaign_id, hook["id"])
    # The failing attempt keeps its retry; the retry is not sent, and says why.
    assert [(e["attempt"], e["status_code"], e["state"], e["error"]) for e in log] == [
        (2, None, "failed", f"The webhook was disabled ({FAILING}); its retries stopped."),
        (1, 500, "pending", None),
    ]
    assert len(receiver.deliveries) == 1

    # Switched on again by its owner, its old run of failures no longer counts.
    status, toggled = await api.call(
        "PATCH", f"/campaigns/{campaign_id}/webhooks/{hook['id']}/toggle"
    )
    assert (status, toggled["data"]["enabled"], toggled["data"]["disabled_reason"]) == (
        200,
        True,
        None,
    )
    assert await redis.get(keys.webhook_failing(campaign_id, hook["id"])) is None


async def test_an_event_whose_call_cannot_be_read_goes_to_the_dlq_and_its_batch_is_delivered(
    kafka_server: KafkaServer,
    api: IngestClient,
    start_notifier: StartNotifier,
    receiver: Receiver,
    producer: AIOKafkaProducer,
    redis: Redis,
) -> None:
    campaign_id, _ = await setup_webhook(api, receiver.url)
    # A stored call that cannot be read back: its events cannot be built.
    await redis.hset(keys.call(campaign_id, "call-broken"), mapping={"env": "env-a"})
    broken = call_event(campaign_id, "call-broken")
    good = [call_event(campaign_id, f"call-fine-{n}") for n in range(5)]
    # All published before the notifier starts, so they reach it in one batch.
    for event in (*good[:2], broken, *good[2:]):
        await publish(producer, event)

    await start_notifier()

    async def fine_delivered() -> bool:
        return len(receiver.deliveries) == 5

    await wait_until(fine_delivered, within=30)
    assert {d.headers["webhook-id"] for d in receiver.deliveries} == {e.event_id for e in good}
    dead = await read_topic(kafka_server.bootstrap, CALLS_DLQ, lambda r: len(r) >= 1)
    assert [(r.key, dict(r.headers)[DLQ_TOPIC_HEADER]) for r in dead] == [
        (call_key("call-broken"), CALLS_EVENTS.encode())
    ]


async def test_the_events_of_one_call_reach_a_webhook_in_the_order_they_happened(
    api: IngestClient, start_notifier: StartNotifier, producer: AIOKafkaProducer
) -> None:
    # Answers slowly enough that events sent side by side would overtake one another.
    receiver = await Receiver(delay_s=0.05).start()
    try:
        campaign_id, _ = await setup_webhook(api, receiver.url, include_call_events=True)
        order = [CallEventType.STARTED, CallEventType.ANSWERED, CallEventType.COMPLETED]
        calls = [f"call-order-{n}" for n in range(20)]
        for event_type in order:
            for call_id in calls:
                await publish(producer, call_event(campaign_id, call_id, event_type))

        await start_notifier()

        async def all_arrived() -> bool:
            return len(receiver.deliveries) == len(calls) * len(order)

        await wait_until(all_arrived, within=30)
        arrived: dict[str, list[str]] = {}
        for delivery in receiver.deliveries:
            body = delivery.json()
            arrived.setdefault(body["data"]["id"], []).append(body["type"])
        assert arrived == {call_id: [t.value for t in order] for call_id in calls}
    finally:
        await receiver.stop()
