"""Two copies of every service share the work, and the outcome is what one copy gives."""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiokafka import ConsumerRecord

from devstack.processes import free_port
from shared.events import CallEvent, CallEventType
from shared.topics import CALLS_DUE, CALLS_EVENTS, CALLS_REQUESTED, CAMPAIGN_EVENTS
from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.stack import Stack
from tests.support import AUTH, Api, Receiver, read_topic, wait_for_stable_groups

pytestmark = pytest.mark.e2e

COPIES = 2
CAMPAIGNS = 3
CALLS_PER_CAMPAIGN = 30

# The sandbox carrier's outcome by the number's last digit (README "The sandbox carrier"):
# the terminal webhook event and the call's final status, its campaign allowing no retries.
BY_LAST_DIGIT = {
    **dict.fromkeys("01238", ("campaign_call.completed", "completed")),
    "4": ("campaign_call.no_answer", "no_answer"),
    "5": ("campaign_call.busy", "busy"),
    "6": ("campaign_call.voicemail", "voicemail"),
    "7": ("campaign_call.failed", "failed"),
    "9": ("campaign_call.failed", "failed"),
}
TERMINAL = {event for event, _ in BY_LAST_DIGIT.values()}
# The topics each service consumes, and the consumer groups (with their members) they join.
CONSUMES = {
    "scheduler": {CALLS_REQUESTED, CALLS_EVENTS},
    "dialer": {CALLS_DUE},
    "notifier": {CALLS_EVENTS, CAMPAIGN_EVENTS},
}
GROUPS = {
    "scheduler": COPIES,
    "scheduler-outcomes": COPIES,
    "dialer": COPIES,
    "notifier": COPIES,
    "notifier-campaigns": COPIES,
}


@pytest.fixture
def stack(kafka_server: KafkaServer, redis_server: RedisServer, tmp_path: Path) -> Iterator[Stack]:
    running = Stack(
        kafka_server.bootstrap,
        redis_server.url,
        tmp_path,
        extra_env={
            "LOG_JSON": "true",
            "DIALER_SANDBOX_RING_MS": "20",
            "DIALER_SANDBOX_TALK_MS": "50",
        },
    )
    yield running
    running.stop()


def handled_records(log: Path) -> Counter[str]:
    """Records a service copy handled, by topic, from its one-line-per-batch log entries."""
    handled: Counter[str] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue  # a line of a library that writes its own format
        entry = json.loads(line)
        if entry.get("event") == "batch_handled":
            handled[entry["topic"]] += entry["records"]
    return handled


async def test_two_copies_of_each_service_share_the_calls_and_end_each_exactly_once(
    stack: Stack, kafka_server: KafkaServer
) -> None:
    api_ports = [stack.api_port, *(free_port() for _ in range(COPIES - 1))]
    for port in api_ports:
        stack.start_one("ingest", api_port=port)
    for name in CONSUMES:
        for _ in range(COPIES):
            stack.start_one(name)
    receiver = await Receiver().start()
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, stack.base_url)
            campaigns = []
            for _ in range(CAMPAIGNS):
                campaign = await api.active_campaign(
                    max_concurrent_calls=100, calls_per_minute=100_000
                )
                await api.webhook(campaign["id"], receiver.url)
                campaigns.append(campaign["id"])
            # Every copy of every consumer holds partitions before the calls come.
            await wait_for_stable_groups(kafka_server.bootstrap, GROUPS, within=60)

            async def post(i: int, campaign_id: str, number: str) -> tuple[int, str]:
                """Posts to the ingest copies in turn; answers which copy took it, and the id."""
                copy = i % COPIES
                base = f"http://127.0.0.1:{api_ports[copy]}/api/v1"
                async with session.post(
                    f"{base}/campaigns/{campaign_id}/call", json={"to": number}, headers=AUTH
                ) as response:
                    body = await response.json()
                    assert response.status == 201, body
                    return copy, body["campaign_call"]["id"]

            requests = [
                (campaign_id, f"+1212555{4000 + c * 100 + n:04d}")
                for n in range(CALLS_PER_CAMPAIGN)
                for c, campaign_id in enumerate(campaigns)
            ]
            answers = await asyncio.gather(
                *(post(i, campaign_id, number) for i, (campaign_id, number) in enumerate(requests))
            )
            # call id -> (campaign, number)
            calls = {
                call_id: request for request, (_, call_id) in zip(requests, answers, strict=True)
            }
            assert len(calls) == len(requests)
            # Each ingest copy took its half.
            assert Counter(copy for copy, _ in answers) == dict.fromkeys(
                range(COPIES), len(requests) // COPIES
            )

            def terminal_deliveries() -> dict[str, list[str]]:
                seen: dict[str, list[str]] = defaultdict(list)
                for delivery in receiver.deliveries:
                    event = delivery.json()
                    if event["type"] in TERMINAL:
                        seen[event["data"]["id"]].append(event["type"])
                return seen

            async def every_call_ended() -> bool:
                return set(terminal_deliveries()) >= set(calls)

            try:
                await wait_until(every_call_ended, within=90, interval=0.2)
            except AssertionError:
                raise AssertionError(stack.logs_text()) from None

            # Each call ended once, as its number's last digit says, in the webhook and the API.
            delivered = terminal_deliveries()
            for call_id, (campaign_id, number) in calls.items():
                event_type, status = BY_LAST_DIGIT[number[-1]]
                assert delivered[call_id] == [event_type], (number, delivered[call_id])
                _, stored = await api.call("GET", f"/campaigns/{campaign_id}/calls/{call_id}")
                assert stored["data"]["status"] == status, (number, stored["data"])
    finally:
        await receiver.stop()

    # Nothing was dialed twice: one start per call on the events topic.
    def all_started(records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        started = {
            event.call_id
            for event in (CallEvent.model_validate_json(r.value) for r in records)
            if event.type is CallEventType.STARTED
        }
        return started >= set(calls)

    records = await read_topic(kafka_server.bootstrap, CALLS_EVENTS, all_started)
    events = [CallEvent.model_validate_json(r.value) for r in records]
    started = Counter(e.call_id for e in events if e.type is CallEventType.STARTED)
    assert started == dict.fromkeys(calls, 1)
    assert all(process.alive() for process in stack.all()), stack.logs_text()

    # Every copy of every consumer did a share of the work, and together they did all of it.
    for name, topics in CONSUMES.items():
        shares = [handled_records(stack.log_of(name, copy)) for copy in range(COPIES)]
        for copy, handled in enumerate(shares):
            for topic in topics - {CAMPAIGN_EVENTS}:  # three records: not enough to share
                assert handled[topic] > 0, (name, copy, topic, shares)
        for topic in topics & {CALLS_REQUESTED, CALLS_DUE}:
            assert sum(share[topic] for share in shares) >= len(calls), (name, topic, shares)
