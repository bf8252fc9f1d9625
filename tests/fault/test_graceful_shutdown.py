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

from shared import keys
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
# Calls posted at the least, and at the most (their numbers, +1212555<4000 + 10 i>, run out).
CALLS = 60
MAX_CALLS = 600
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
    session: aiohttp.ClientSession,
    url: str,
    accepted: dict[int, str],
    every: float,
    stops_done: asyncio.Event,
) -> None:
    """Posts a call every `every` s until every service has been stopped and started again
    (`stops_done`) and at least CALLS were posted, so each stop finds work flowing however
    long the ones before took; never more than MAX_CALLS. Each call is retried under its
    Idempotency-Key until it is answered 201 (the ingest may be stopping or away)."""

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

    posts: list[asyncio.Task[None]] = []
    while len(posts) < MAX_CALLS and (len(posts) < CALLS or not stops_done.is_set()):
        posts.append(asyncio.create_task(one(len(posts))))
        await asyncio.sleep(every)
    await asyncio.wait_for(asyncio.gather(*posts), timeout=60)


async def _redis_state(redis: Redis, campaign_id: str, call_id: str) -> dict[str, object]:
    """Where a call stands in Redis: its hash, and every queue, slot, claim and index that may
    hold it (shared/keys.py)."""
    fields = {
        k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
        for k, v in (await redis.hgetall(keys.call(campaign_id, call_id))).items()
    }
    attempt = int(fields.get("attempt", 0) or 0)
    due_shard = keys.due_shard_of(call_id, 16)
    due = keys.due_member(campaign_id, call_id)
    member = keys.attempt_member(campaign_id, call_id, attempt)
    awaiting = keys.awaiting_outcome(keys.awaiting_shard_of(call_id))
    slot = keys.slot_member(call_id, attempt)
    return {
        "call": fields,
        "due_queue": await redis.zscore(keys.due_queue(due_shard), due),
        "due_inflight": await redis.zscore(keys.due_inflight(due_shard), due),
        "handoff": await redis.zscore(keys.handoffs(campaign_id), call_id),
        "dial_slot": await redis.zscore(keys.dial_slots(campaign_id), slot),
        "dial_claim": await redis.exists(keys.dial_claim(campaign_id, call_id, attempt)),
        "awaiting_outcome": await redis.zscore(awaiting, member),
        "now_ms": int(time.time() * 1000),
    }


def _log_lines_naming(stack: Stack, call_id: str) -> str:
    """Every line of every service log that names the call, by log file."""
    found = []
    for path in sorted(stack.logs.glob("*.log")):
        lines = [line for line in path.read_text(errors="replace").splitlines() if call_id in line]
        if lines:
            found.append(f"  {path.name}:\n" + "\n".join(f"    {line}" for line in lines))
    return "\n".join(found) or "  (no log line names it)"


async def _missing_endings(
    redis: Redis,
    stack: Stack,
    campaign_id: str,
    call_ids: set[str],
    events: list[CallEvent],
    stops: list[str],
) -> str:
    """What is known about each call with no ending on the topic: its events, its Redis state
    and the log lines naming it; then when each service was stopped, and the logs' tails."""
    ended = {e.call_id for e in events if e.type in ENDINGS}
    missing = sorted(call_ids - ended)
    parts = [f"{len(missing)} of {len(call_ids)} calls have no ending: {missing}"]
    for call_id in missing:
        seen = [
            f"{e.type.value} attempt={e.attempt} at={e.occurred_at.isoformat()}"
            for e in events
            if e.call_id == call_id
        ]
        parts.append(f"- {call_id}")
        parts.append(f"  events: {seen}")
        parts.append(f"  redis: {await _redis_state(redis, campaign_id, call_id)}")
        parts.append(_log_lines_naming(stack, call_id))
    parts.append("stops: " + "; ".join(stops))
    parts.append(stack.logs_text())
    return "\n".join(parts)


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

    answer = ["no answer yet"]

    async def ready() -> bool:
        # Ready: Redis and the broker answer and its consumers are in their groups.
        try:
            async with session.get(ready_url) as response:
                answer[0] = f"{response.status} {await response.text()}"
                return response.status == 200
        except aiohttp.ClientError as exc:
            answer[0] = repr(exc)
            return False

    try:
        await wait_until(ready, within=30, interval=0.1)
    except AssertionError as exc:
        raise AssertionError(
            f"the restarted {name} was not ready: {ready_url} last answered {answer[0]}\n"
            f"{stack.logs_text()}"
        ) from exc
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

            stops_done = asyncio.Event()
            stream = asyncio.create_task(
                _post_calls(session, url, accepted, every=0.2, stops_done=stops_done)
            )
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
            stops: list[str] = []
            wanted = {
                "ingest": "nothing more",
                "scheduler": "nothing more",
                "dialer": "a call started and not ended",
                "notifier": "a delivery being answered",
            }
            for turn, name in enumerate(busy):
                enough = 10 * (turn + 1)

                async def ready(enough: int = enough, name: str = name) -> bool:
                    return len(accepted) >= enough and busy[name]()

                try:
                    await wait_until(ready, within=30, interval=0.02)
                except AssertionError as exc:
                    raise AssertionError(
                        f"{name} was never seen with work under way to stop it with: wanted "
                        f"{enough} calls accepted (have {len(accepted)}) and {wanted[name]} "
                        f"(now {busy[name]()}; calls under way {sorted(under_way())}, "
                        f"receiver answering {receiver.busy}, {len(receiver.deliveries)} "
                        f"deliveries, {len(seen_events)} events seen)\n{stack.logs_text()}"
                    ) from exc
                if name == "dialer":
                    ringing = under_way()
                stopped_at = time.time()
                took[name] = await _terminate_and_restart(session, stack, name)
                stops.append(
                    f"{name} at {stopped_at:.3f} (exited in {took[name]:.2f} s) with "
                    f"{len(accepted)} accepted, under way {sorted(under_way())}"
                )
            stops_done.set()
            await stream
            following.cancel()
            assert all(t <= GRACE_SECONDS + MARGIN_SECONDS for t in took.values()), took

            call_ids = set(accepted.values())
            assert len(call_ids) == len(accepted) >= CALLS

            def all_ended(records: Records) -> bool:
                ended = {e.call_id for e in _events(records) if e.type in ENDINGS}
                return ended >= call_ids

            read: list[Records] = []

            def noting_all_ended(records: Records) -> bool:
                read[:] = [records]
                return all_ended(records)

            try:
                records = await read_topic(
                    kafka_server.bootstrap, CALLS_EVENTS, noting_all_ended, within=60
                )
            except AssertionError as exc:
                events = _events(read[0]) if read else []
                raise AssertionError(
                    f"{exc}\n"
                    + await _missing_endings(redis, stack, campaign["id"], call_ids, events, stops)
                ) from exc

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
