"""Each service stopped with SIGTERM mid-stream: it exits cleanly within its grace, and every
call still ends exactly once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from redis.asyncio import Redis

from shared.events import CallEvent, CallEventType
from shared.store.calls import CallStore
from shared.topics import CALLS_EVENTS
from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.stack import Stack
from tests.support import AUTH, Api, Receiver, read_topic

pytestmark = pytest.mark.fault
Records = list[ConsumerRecord[bytes, bytes]]

GRACE_SECONDS = 5
# Interpreter teardown and the test's own polling, beyond the grace.
MARGIN_SECONDS = 3
CALLS = 60
ENDINGS = {
    CallEventType.COMPLETED,
    CallEventType.NO_ANSWER,
    CallEventType.BUSY,
    CallEventType.VOICEMAIL,
    CallEventType.FAILED,
    CallEventType.CANCELLED,
    CallEventType.BLOCKED,
    CallEventType.EXPIRED,
    CallEventType.REJECTED,
}


def _events(records: Records) -> list[CallEvent]:
    return [CallEvent.model_validate_json(r.value) for r in records]


async def _post_calls(
    session: aiohttp.ClientSession, url: str, accepted: dict[int, str], every: float
) -> None:
    """Posts CALLS calls, one every `every` s; each is retried under its Idempotency-Key until
    it is answered 201 (the ingest may be stopping or away)."""

    async def one(i: int) -> None:
        headers = {**AUTH, "Idempotency-Key": f"call-{i}"}
        body = {"to": f"+1212555{4000 + i * 10}"}  # ends in 0: every call completes
        while True:
            try:
                async with session.post(url, json=body, headers=headers) as response:
                    if response.status == 201:
                        accepted[i] = (await response.json())["campaign_call"]["id"]
                        return
                    assert response.status in (409, 503), await response.text()
            except aiohttp.ClientError:
                pass  # refused or cut: the request is tried again, as a client would
            await asyncio.sleep(0.1)

    posts = []
    for i in range(CALLS):
        posts.append(asyncio.create_task(one(i)))
        await asyncio.sleep(every)
    await asyncio.wait_for(asyncio.gather(*posts), timeout=60)


async def _follow(bootstrap: str, into: list[CallEvent]) -> None:
    """Appends every call event to `into` as it is published, until cancelled."""
    consumer = AIOKafkaConsumer(
        CALLS_EVENTS,
        bootstrap_servers=bootstrap,
        group_id=f"follow-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        async for record in consumer:
            into.append(CallEvent.model_validate_json(record.value))
    finally:
        await consumer.stop()


async def _terminate_and_restart(session: aiohttp.ClientSession, stack: Stack, name: str) -> float:
    """SIGTERM to the service's current copy; once it has exited (status 0), starts another
    and waits until it is ready. Returns how long the stopping copy took to exit."""
    stopping = stack.processes[name][-1]
    assert stopping.process is not None
    began = time.monotonic()
    stopping.process.terminate()

    async def exited() -> bool:
        return not stopping.alive()

    await wait_until(exited, within=GRACE_SECONDS + MARGIN_SECONDS)
    took = time.monotonic() - began
    assert stopping.process.returncode == 0, stack.logs_text()
    await asyncio.to_thread(stack.start_one, name)
    ready_url = f"{stack.ops_url(name, len(stack.processes[name]) - 1)}/readyz"

    async def ready() -> bool:
        # Ready: Redis and the broker answer and its consumers are in their groups.
        try:
            async with session.get(ready_url) as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    await wait_until(ready, within=30, interval=0.1)
    return took


@pytest.mark.redis_backends("single")
async def test_each_service_stopped_with_sigterm_mid_stream_exits_in_time_and_loses_nothing(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis, tmp_path: Path
) -> None:
    receiver = await Receiver(delay_s=0.2).start()
    stack = Stack(
        kafka_server.bootstrap,
        redis_server.url,
        tmp_path,
        extra_env={
            "SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
            "DIALER_SANDBOX_RING_MS": "500",
            "DIALER_SANDBOX_TALK_MS": "2000",
        },
    ).start()
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, stack.base_url)
            campaign = await api.active_campaign(
                max_concurrent_calls=1000, calls_per_minute=100_000, max_retries=0
            )
            await api.webhook(campaign["id"], receiver.url)
            url = f"{stack.base_url}/api/v1/campaigns/{campaign['id']}/call"
            accepted: dict[int, str] = {}

            def delivered() -> Counter[tuple[str, str]]:
                return Counter(
                    (d.json()["data"]["id"], d.json()["type"]) for d in receiver.deliveries
                )

            stream = asyncio.create_task(_post_calls(session, url, accepted, every=0.2))
            took: dict[str, float] = {}
            seen_events: list[CallEvent] = []
            following = asyncio.create_task(_follow(kafka_server.bootstrap, seen_events))

            def under_way() -> set[str]:
                """Calls a dialer has started and not yet ended."""
                started = {e.call_id for e in seen_events if e.type is CallEventType.STARTED}
                ended = {e.call_id for e in seen_events if e.type is CallEventType.ATTEMPT_ENDED}
                return started - ended

            # Each service stopped in turn while it has work under way: the ingest requests
            # being posted, the scheduler requests to store and calls to release, the dialer
            # calls ringing or talking, the notifier deliveries waiting for their answers.
            busy: dict[str, Callable[[], bool]] = {
                "ingest": lambda: True,
                "scheduler": lambda: True,
                "dialer": lambda: bool(under_way()),
                "notifier": lambda: receiver.busy > 0,
            }
            for turn, name in enumerate(busy):

                async def ready(enough: int = 10 * (turn + 1), name: str = name) -> bool:
                    return len(accepted) >= enough and busy[name]()

                await wait_until(ready, within=30, interval=0.02)
                if name == "dialer":
                    ringing = under_way()
                took[name] = await _terminate_and_restart(session, stack, name)
            await stream
            following.cancel()
            assert all(t <= GRACE_SECONDS + MARGIN_SECONDS for t in took.values()), took

            call_ids = set(accepted.values())
            assert len(call_ids) == CALLS

            def all_ended(records: Records) -> bool:
                ended = {e.call_id for e in _events(records) if e.type in ENDINGS}
                return ended >= call_ids

            records = await read_topic(kafka_server.bootstrap, CALLS_EVENTS, all_ended, within=60)

            async def every_ending_delivered() -> bool:
                seen = delivered()
                return all(seen[(c, CallEventType.COMPLETED.value)] for c in call_ids)

            await wait_until(every_ending_delivered, within=60, interval=0.2)
            assert all(copies[-1].alive() for copies in stack.processes.values()), stack.logs_text()
        # No call was stored twice (a retried request is answered once) nor left out.
        assert set(await CallStore(redis, 16).call_ids(campaign["id"])) == call_ids
        events = [e for e in _events(records) if e.call_id in call_ids]
        started = Counter(e.call_id for e in events if e.type is CallEventType.STARTED)
        endings = Counter((e.call_id, e.type) for e in events if e.type in ENDINGS)
        # One attempt each, placed once, ended once, and completed: none was lost in a stop.
        assert started == Counter(call_ids)
        assert endings == Counter((c, CallEventType.COMPLETED) for c in call_ids)
        assert not [e for e in events if e.error == "dialer_lost"]
        # The dialer was stopped with calls ringing or talking (which completed, above: a
        # sandbox call its process left unfinished could not have).
        assert ringing
        # Every call's ending reached the customer once, under one id.
        seen = delivered()
        assert all(seen[(c, CallEventType.COMPLETED.value)] == 1 for c in call_ids), seen
    finally:
        stack.stop()
        await receiver.stop()
