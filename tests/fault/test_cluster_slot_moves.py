"""Hash slots moved between cluster nodes while calls flow: no 5xx, no call lost, none dialed or
ended twice. The client follows MOVED (the slot has a new owner) and ASK (a key already moved
while the slot is mid-move) without the services noticing."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from aiokafka import ConsumerRecord

from devstack.cluster import LocalCluster, slot_of
from shared import keys
from shared.events import CallEvent, CallEventType
from shared.topics import CALLS_EVENTS
from tests.conftest import KafkaServer
from tests.stack import Stack
from tests.support import AUTH, Api, read_topic

pytestmark = pytest.mark.fault

Records = list[ConsumerRecord[bytes, bytes]]
CALLS = 240
ENDED = {
    CallEventType.COMPLETED,
    CallEventType.NO_ANSWER,
    CallEventType.BUSY,
    CallEventType.VOICEMAIL,
    CallEventType.FAILED,
}


def _events(records: Records) -> list[CallEvent]:
    return [CallEvent.model_validate_json(r.value) for r in records]


def _move(cluster: LocalCluster, slot: int) -> None:
    """Moves `slot` to the next node, a few keys at a time, so commands meet it mid-move."""
    owner = cluster.owner(slot)
    target = next(node for node in cluster.nodes if node is not owner)
    migration = cluster.migration(slot, target)
    migration.begin()
    while migration.move_keys(count=5):
        time.sleep(0.02)  # let commands meet the slot half moved (ASK)
    migration.finish()


async def test_slots_moved_while_calls_flow_lose_and_double_nothing(
    kafka_server: KafkaServer, redis_cluster: LocalCluster, tmp_path: Path
) -> None:
    stack = Stack(
        kafka_server.bootstrap,
        redis_cluster.url,
        tmp_path,
        extra_env={"DIALER_SANDBOX_RING_MS": "0", "DIALER_SANDBOX_TALK_MS": "0"},
    ).start()
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, stack.base_url)
            campaign = await api.active_campaign(
                max_concurrent_calls=10_000, calls_per_minute=100_000
            )
            url = f"{stack.base_url}/api/v1/campaigns/{campaign['id']}/call"
            # The campaign's calls, the environment's do-not-call and rest keys, and two
            # shards of the due queue each live in one slot: all of them move.
            slots = sorted(
                {
                    slot_of(keys.campaign(campaign["id"])),
                    slot_of(keys.number_cooldown("env-a", "+12125550100")),
                    slot_of(keys.due_queue(0)),
                    slot_of(keys.due_queue(1)),
                }
            )

            async def post(i: int) -> tuple[int, str]:
                number = f"+1212555{i:04d}"
                async with session.post(url, json={"to": number}, headers=AUTH) as response:
                    body = await response.json()
                    return response.status, body.get("campaign_call", {}).get("id", "")

            async def move_all() -> None:
                for slot in slots:
                    await asyncio.to_thread(_move, redis_cluster, slot)

            posting = [post(i) for i in range(CALLS)]
            # Calls start flowing, then the slots move while the rest are posted.
            first = await asyncio.gather(*posting[:40])
            answers, _ = await asyncio.gather(asyncio.gather(*posting[40:]), move_all())
            answers = [*first, *answers]
        assert Counter(status for status, _ in answers) == {201: CALLS}, stack.logs_text()
        accepted = {call_id for _, call_id in answers}
        assert all(redis_cluster.owner(slot) is not None for slot in slots)

        def all_ended(records: Records) -> bool:
            return {e.call_id for e in _events(records) if e.type in ENDED} >= accepted

        records = await read_topic(kafka_server.bootstrap, CALLS_EVENTS, all_ended, within=120)
    finally:
        stack.stop()
    events = _events(records)
    started = Counter(e.call_id for e in events if e.type is CallEventType.STARTED)
    # A step replayed after a redirect publishes the same event id again; a second ending
    # would carry another id.
    ended = Counter(
        call_id for call_id, _ in {(e.call_id, e.event_id) for e in events if e.type in ENDED}
    )
    assert set(started) == accepted
    assert max(started.values()) == 1  # dialed once each
    assert set(ended) == accepted
    assert max(ended.values()) == 1  # ended once each
