"""Service copies killed with SIGKILL mid-work: no call is lost and none is dialed twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from aiokafka import ConsumerRecord
from redis.asyncio import Redis

from devstack.processes import free_port, port_is_open
from shared import keys
from shared.events import CallDue, CallEvent, CallEventType
from shared.store.calls import CallStore
from shared.topics import CALLS_DUE, CALLS_EVENTS
from tests.clock import MovableClock
from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.fake_carrier import FakeCarrier, dialer_env
from tests.integration.pipeline import seed_calls, seed_campaign
from tests.stack import Stack
from tests.support import AUTH, Api, Receiver, read_topic

pytestmark = pytest.mark.fault


Records = list[ConsumerRecord[bytes, bytes]]


def _events(records: Records) -> list[CallEvent]:
    return [CallEvent.model_validate_json(r.value) for r in records]


def _has(call_id: str, *types: CallEventType) -> Callable[[Records], bool]:
    def check(records: Records) -> bool:
        seen = {e.type for e in _events(records) if e.call_id == call_id}
        return set(types) <= seen

    return check


async def test_a_dialer_killed_mid_call_loses_nothing_another_copy_learns_the_outcome(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis, tmp_path: Path
) -> None:
    """The sandbox carrier is in the dialer's process, but a call it placed outlives the
    process as a real carrier's does: the next copy asks how it went once it is overdue."""
    stack = Stack(
        kafka_server.bootstrap,
        redis_server.url,
        tmp_path,
        extra_env={
            "DIALER_SANDBOX_RING_MS": "500",
            "DIALER_SANDBOX_TALK_MS": "4000",
            "DIALER_CALLBACK_TIMEOUT_SECONDS": "1",
            "DIALER_WATCH_INTERVAL_MS": "200",
            # Long enough for the next copy to start before the scheduler gives the call up.
            "DIAL_SLOT_LEASE_MS": "15000",
            "SCHEDULER_REAP_INTERVAL_MS": "200",
        },
    ).start(["ingest", "scheduler", "dialer"])
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, stack.base_url)
            campaign = await api.active_campaign(max_retries=1, max_concurrent_calls=1)
            status, body = await api.call(
                "POST", f"/campaigns/{campaign['id']}/call", {"to": "+12125550100"}
            )
            assert status == 201
            call_id = body["campaign_call"]["id"]
            await read_topic(
                kafka_server.bootstrap, CALLS_EVENTS, _has(call_id, CallEventType.ANSWERED)
            )
            (dialer,) = stack.processes["dialer"]
            dialer.kill()
            stack.start_one("dialer")
            records = await read_topic(
                kafka_server.bootstrap,
                CALLS_EVENTS,
                _has(call_id, CallEventType.COMPLETED),
                within=30,
            )
            events = [e for e in _events(records) if e.call_id == call_id]
            (ended,) = [e for e in events if e.type is CallEventType.ATTEMPT_ENDED]
            assert (ended.outcome, ended.duration_seconds) == ("completed", 4.0)
            assert [e.attempt for e in events if e.type is CallEventType.STARTED] == [1]
            assert len([e for e in events if e.type is CallEventType.COMPLETED]) == 1
            await wait_until(lambda: _no_slots(redis, campaign["id"]))
            _, stored = await api.call("GET", f"/campaigns/{campaign['id']}/calls/{call_id}")
            assert stored["data"]["status"] == "completed"
    finally:
        stack.stop()


async def _no_slots(redis: Redis, campaign_id: str) -> bool:
    return int(await redis.zcard(keys.dial_slots(campaign_id))) == 0


async def test_a_dialer_killed_after_the_carrier_took_the_call_loses_no_outcome(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis, tmp_path: Path
) -> None:
    """Twilio (the fake in tests/) takes a call from one dialer copy, which is then killed;
    the carrier's callbacks reach another copy, which reports the outcome once. Nothing else
    could: the status look-up would come only after ten minutes."""
    carrier = await FakeCarrier().start()
    carrier.callback_delay_seconds = 3
    survivor_port = free_port()
    public_url = f"http://127.0.0.1:{survivor_port}"
    stack = Stack(
        kafka_server.bootstrap,
        redis_server.url,
        tmp_path,
        extra_env=dialer_env(carrier, public_url, DIALER_CALLBACK_TIMEOUT_SECONDS="600"),
    ).start(["ingest", "scheduler", "dialer"])
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, stack.base_url)
            campaign = await api.active_campaign(max_retries=1)
            status, body = await api.call(
                "POST", f"/campaigns/{campaign['id']}/call", {"to": "+12125550101"}
            )
            assert status == 201
            call_id = body["campaign_call"]["id"]

            async def placed() -> bool:
                stored = await redis.hget(keys.call(campaign["id"], call_id), "carrier:1")
                return stored is not None

            await wait_until(placed, within=30)
            (placer,) = stack.processes["dialer"]
            placer.kill()
            survivor = stack.start_one("dialer", env={"DIALER_HTTP_PORT": str(survivor_port)})
            assert survivor.process is not None

            async def serving() -> bool:
                return port_is_open("127.0.0.1", survivor_port)

            # Polled without blocking: the fake carrier runs in this event loop.
            await wait_until(serving, within=30)
            (sid,) = carrier.calls
            completed_sent = carrier.calls[sid]
            assert not completed_sent.done.is_set(), "the survivor came up after the call ended"
            records = await read_topic(
                kafka_server.bootstrap,
                CALLS_EVENTS,
                _has(call_id, CallEventType.COMPLETED),
                within=40,
            )
        events = [e for e in _events(records) if e.call_id == call_id]
        (ended,) = [e for e in events if e.type is CallEventType.ATTEMPT_ENDED]
        assert ended.outcome == "completed"
        assert len([e for e in events if e.type is CallEventType.ANSWERED]) == 1
        assert len(carrier.creates) == 1
        # The outcome came by callback, to the surviving copy; nobody had to ask.
        assert carrier.status_requests == []
        assert any(
            s.status == 200 and s.params["CallStatus"] == "completed"
            for s in carrier.sent_callbacks
        )
    finally:
        stack.stop()
        await carrier.stop()


async def test_a_scheduler_killed_while_releasing_loses_nothing_and_dials_nothing_twice(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis, tmp_path: Path
) -> None:
    clock = MovableClock()
    calls = CallStore(redis, 16)
    campaign = await seed_campaign(
        redis, clock.now(), max_concurrent_calls=10_000, calls_per_minute=100_000
    )
    batch = await seed_calls(redis, campaign.id, 600, clock.now(), enqueue=False)
    expected = {call.id for call in batch}
    stack = Stack(
        kafka_server.bootstrap,
        redis_server.url,
        tmp_path,
        extra_env={
            "DIALER_SANDBOX_RING_MS": "0",
            "DIALER_SANDBOX_TALK_MS": "0",
            "SCHEDULER_LEASE_MS": "2000",
            "SCHEDULER_REAP_INTERVAL_MS": "200",
            "SCHEDULER_CLAIM_BATCH": "50",
        },
    )
    first = stack.start_one("scheduler")
    stack.start_one("scheduler")
    stack.start_one("dialer")
    try:
        # Queue the calls only now, so the copies are mid-release when one of them dies.
        for start in range(0, len(batch), 250):
            await asyncio.gather(
                *(calls.enqueue(call, clock.now()) for call in batch[start : start + 250])
            )
        await read_topic(kafka_server.bootstrap, CALLS_DUE, lambda r: len(r) >= 100)
        first.kill()

        outcomes = {
            CallEventType.COMPLETED,
            CallEventType.NO_ANSWER,
            CallEventType.BUSY,
            CallEventType.VOICEMAIL,
            CallEventType.FAILED,
        }

        def all_ended(records: Records) -> bool:
            ended = {e.call_id for e in _events(records) if e.type in outcomes}
            return ended >= expected

        records = await read_topic(kafka_server.bootstrap, CALLS_EVENTS, all_ended, within=120)
        assert all(p.alive() for p in stack.all() if p is not first), stack.logs_text()
    finally:
        stack.stop()
    started = Counter(e.call_id for e in _events(records) if e.type is CallEventType.STARTED)
    assert set(started) == expected
    assert max(started.values()) == 1
    due = await read_topic(kafka_server.bootstrap, CALLS_DUE, lambda r: len(r) >= 600)
    released = {CallDue.model_validate_json(r.value).call_id for r in due}
    assert released == expected

    async def settled() -> bool:
        for shard in range(16):
            if await redis.zcard(keys.due_inflight(shard)):
                return False
        return True

    await wait_until(settled, within=10)


PUBLIC_PER_CALL = {
    "campaign_call.queued",
    "campaign_call.started",
    "campaign_call.answered",
    "campaign_call.completed",
}


async def test_a_notifier_killed_mid_delivery_still_delivers_every_event(
    kafka_server: KafkaServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    receiver = await Receiver(delay_s=0.05).start()
    # What the killed copy had claimed comes back once its claims run out: the webhook's
    # timeout plus the claim margin for a first attempt, the lease for one from the queue.
    stack = Stack(
        kafka_server.bootstrap,
        redis_server.url,
        tmp_path,
        extra_env={"NOTIFIER_CLAIM_MARGIN_MS": "1000", "NOTIFIER_LEASE_MS": "5000"},
    ).start(["ingest", "scheduler", "dialer"])
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, stack.base_url)
            campaign = await api.active_campaign(max_concurrent_calls=100, calls_per_minute=100_000)
            await api.webhook(campaign["id"], receiver.url, timeout=5)
            call_ids = []
            for i in range(30):
                # Numbers ending in 0-3 complete, so every call has the same four events.
                status, body = await api.call(
                    "POST", f"/campaigns/{campaign['id']}/call", {"to": f"+1212555{2000 + i * 10}"}
                )
                assert status == 201, body
                call_ids.append(body["campaign_call"]["id"])
            notifier = stack.start_one("notifier")

            async def some_delivered() -> bool:
                return len(receiver.deliveries) >= 15

            await wait_until(some_delivered, within=30)
            notifier.kill()
            stack.start_one("notifier")

            def delivered() -> dict[str, set[str]]:
                seen: dict[str, set[str]] = {}
                for d in receiver.deliveries:
                    event = d.json()
                    seen.setdefault(event["data"]["id"], set()).add(event["type"])
                return seen

            async def everything_delivered() -> bool:
                seen = delivered()
                return all(seen.get(call_id, set()) >= PUBLIC_PER_CALL for call_id in call_ids)

            await wait_until(everything_delivered, within=60)
        # A redelivered event carries the id it had the first time.
        ids_by_key: dict[tuple[str, str], set[str]] = {}
        for d in receiver.deliveries:
            event = d.json()
            ids_by_key.setdefault((event["data"]["id"], event["type"]), set()).add(
                d.headers["webhook-id"]
            )
        assert all(len(ids) == 1 for ids in ids_by_key.values())
    finally:
        stack.stop()
        await receiver.stop()


async def test_an_ingest_killed_under_load_loses_no_call_it_stored(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis, tmp_path: Path
) -> None:
    """Every call the ingest stored runs to its end, whether or not its request had reached the
    broker (or its client its answer) when the ingest died."""
    stack = Stack(
        kafka_server.bootstrap,
        redis_server.url,
        tmp_path,
        extra_env={"SCHEDULER_HANDOFF_GRACE_MS": "1000", "SCHEDULER_REAP_INTERVAL_MS": "200"},
    ).start(["ingest", "scheduler", "dialer"])
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, stack.base_url)
            campaign = await api.active_campaign(
                max_concurrent_calls=1000, calls_per_minute=100_000
            )
            url = f"{stack.base_url}/api/v1/campaigns/{campaign['id']}/call"
            accepted: list[str] = []

            async def one(i: int) -> None:
                try:
                    async with session.post(
                        url, json={"to": f"+1212555{3000 + i:04d}"}, headers=AUTH
                    ) as response:
                        if response.status == 201:
                            accepted.append((await response.json())["campaign_call"]["id"])
                except aiohttp.ClientError:
                    return  # not accepted: the client would retry

            requests = [asyncio.create_task(one(i)) for i in range(300)]

            async def some_accepted() -> bool:
                return len(accepted) >= 30

            await wait_until(some_accepted, within=30)
            (ingest,) = stack.processes["ingest"]
            ingest.kill()
            await asyncio.gather(*requests)
            assert 30 <= len(accepted) < 300
            stack.start_one("ingest")

            async def all_ended() -> bool:
                for call_id in accepted:
                    _, body = await api.call("GET", f"/campaigns/{campaign['id']}/calls/{call_id}")
                    if body["data"]["status"] in ("queued", "in_progress"):
                        return False
                return True

            await wait_until(all_ended, within=90, interval=0.5)
            store = CallStore(redis, 16)

            async def every_stored_call_ended() -> bool:
                call_ids = await store.call_ids(campaign["id"])
                rows = await store.statuses(campaign["id"], call_ids)
                return all(status not in ("queued", "in_progress") for status, _ in rows)

            await wait_until(every_stored_call_ended, within=90, interval=0.5)
            assert set(accepted) <= set(await store.call_ids(campaign["id"]))
    finally:
        stack.stop()
