"""Completing, cancelling and deleting a campaign answer at once; the scheduler's finisher ends
its queued calls (each once, with its event) and removes a deleted campaign's keys."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import cast

import pytest
from redis.asyncio import Redis

from services.scheduler.finisher import CampaignFinisher
from shared import keys
from shared.events import CallEvent, CallEventType
from shared.models import CallStatus
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.store.deliveries import DeliveryRef
from shared.topics import CALLS_EVENTS
from tests.clock import MovableClock
from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.integration.conftest import IngestClient
from tests.integration.pipeline import Events, running_pipeline
from tests.support import read_topic, stored_keys

pytestmark = pytest.mark.integration


class Recorder:
    """Stands in for the broker: keeps every event the finisher publishes."""

    def __init__(self) -> None:
        self.events: list[CallEvent] = []
        self.publishes = 0

    async def __call__(self, events: Iterable[CallEvent]) -> None:
        self.events.extend(events)
        self.publishes += 1


def _finisher(redis: Redis, publish: Recorder, chunk: int = 100) -> CampaignFinisher:
    return CampaignFinisher(
        CatalogStore(redis),
        CallStore(redis, 16),
        MovableClock(),
        publish,
        chunk=chunk,
        interval_ms=10,
    )


async def _calls(ingest: IngestClient, campaign_id: str, count: int) -> list[str]:
    status, body = await ingest.call(
        "POST",
        f"/campaigns/{campaign_id}/calls/batch",
        {"calls": [{"to": f"+1212555{1000 + i:04d}"} for i in range(count)]},
    )
    assert status == 207, body
    return [r["body"]["campaign_call"]["id"] for r in body["data"]["results"]]


async def _statuses(ingest: IngestClient, campaign_id: str, ids: list[str]) -> list[str]:
    found = []
    for call_id in ids:
        _, body = await ingest.call("GET", f"/campaigns/{campaign_id}/calls/{call_id}")
        found.append(body["data"]["status"])
    return found


async def _due_members(redis: Redis, campaign_id: str) -> list[str]:
    found: list[str] = []
    for shard in range(16):
        queue = cast(list[str], await redis.zrange(keys.due_queue(shard), 0, -1))
        found.extend(member for member in queue if member.startswith(f"{campaign_id}|"))
    return found


@pytest.mark.parametrize("target", ["cancelled", "completed"])
async def test_the_move_answers_before_the_finisher_ends_the_queued_calls(
    ingest: IngestClient, redis: Redis, target: str
) -> None:
    campaign = await ingest.campaign()
    ids = await _calls(ingest, campaign["id"], 3)
    status, body = await ingest.call(
        "PATCH", f"/campaigns/{campaign['id']}/status", {"status": target}
    )
    assert status == 200, body
    assert body["data"]["status"] == target
    # Answered: nothing has walked the calls yet.
    assert await _statuses(ingest, campaign["id"], ids) == ["queued"] * 3
    assert await redis.zscore(keys.campaigns_to_finish(), campaign["id"]) is not None

    recorder = Recorder()
    assert await _finisher(redis, recorder).finish_pending() == 1

    assert await _statuses(ingest, campaign["id"], ids) == ["cancelled"] * 3
    assert sorted(e.call_id for e in recorder.events) == sorted(ids)
    assert {(e.type, e.reason, e.status) for e in recorder.events} == {
        (CallEventType.CANCELLED, f"campaign_{target}", "cancelled")
    }
    assert await redis.zscore(keys.campaigns_to_finish(), campaign["id"]) is None
    _, stored = await ingest.call("GET", f"/campaigns/{campaign['id']}")
    assert stored["data"]["stats"]["queued_calls"] == 0


class Killed(Exception):
    """The finisher's process dies here."""


async def test_a_finisher_killed_mid_walk_is_resumed_and_ends_each_call_once(
    ingest: IngestClient, redis: Redis
) -> None:
    campaign = await ingest.campaign()
    campaign_id = campaign["id"]
    ids = await _calls(ingest, campaign_id, 30)
    status, _ = await ingest.call(
        "PATCH", f"/campaigns/{campaign_id}/status", {"status": "cancelled"}
    )
    assert status == 200
    recorder = Recorder()

    async def dies_before_its_third_publish(events: Iterable[CallEvent]) -> None:
        if recorder.publishes == 2:
            raise Killed
        await recorder(events)

    first = _finisher(redis, recorder, chunk=4)
    first._publish = dies_before_its_third_publish
    with pytest.raises(Killed):
        await first.finish_pending()
    # Three chunks cancelled, two announced; the third chunk's calls wait to be announced.
    assert await redis.zcard(keys.calls_by_status(campaign_id, "cancelled")) == 12
    assert len(recorder.events) == 8
    assert await redis.scard(keys.calls_to_announce(campaign_id)) == 4
    assert await redis.zscore(keys.campaigns_to_finish(), campaign_id) is not None
    # A dead copy does not give its lease back: it lapses.
    await redis.set(keys.finish_lease(campaign_id), "the-dead-copy", px=300)

    second = _finisher(redis, recorder, chunk=4)
    assert not await second.finish(campaign_id)
    assert len(recorder.events) == 8

    async def finished() -> bool:
        return await second.finish(campaign_id)

    await wait_until(finished)

    assert await _statuses(ingest, campaign_id, ids) == ["cancelled"] * 30
    assert Counter(e.call_id for e in recorder.events) == Counter(ids)
    assert await redis.scard(keys.calls_to_announce(campaign_id)) == 0
    assert await redis.exists(keys.finish_lease(campaign_id)) == 0
    assert await redis.zscore(keys.campaigns_to_finish(), campaign_id) is None
    _, stored = await ingest.call("GET", f"/campaigns/{campaign_id}")
    assert stored["data"]["stats"]["queued_calls"] == 0
    assert await redis.hget(keys.campaign_stats(campaign_id), "cancelled") == "30"


async def test_two_finishers_never_announce_a_call_twice(
    ingest: IngestClient, redis: Redis
) -> None:
    campaign = await ingest.campaign()
    ids = await _calls(ingest, campaign["id"], 40)
    await ingest.call("PATCH", f"/campaigns/{campaign['id']}/status", {"status": "completed"})
    recorder = Recorder()

    async def both() -> bool:
        await asyncio.gather(
            _finisher(redis, recorder, chunk=3).finish_pending(),
            _finisher(redis, recorder, chunk=3).finish_pending(),
        )
        return await redis.zscore(keys.campaigns_to_finish(), campaign["id"]) is None

    await wait_until(both)

    assert Counter(e.call_id for e in recorder.events) == Counter(ids)


async def test_delete_answers_at_once_and_the_finisher_removes_every_key(
    ingest: IngestClient, redis: Redis
) -> None:
    campaign = await ingest.campaign()
    campaign_id = campaign["id"]
    path = f"/campaigns/{campaign_id}"
    ids = await _calls(ingest, campaign_id, 5)
    store = CallStore(redis, 16)
    for call in await store.get_many((campaign_id, call_id) for call_id in ids):
        assert call is not None
        await store.enqueue(call, datetime.now(UTC))
    status, _ = await ingest.call("DELETE", f"{path}/calls/{ids[0]}")
    assert status == 200
    status, hook = await ingest.call(
        "POST",
        f"{path}/webhooks",
        {
            "name": "h",
            "webhook_url": "https://example.com/hook",
            "events": ["campaign_call.completed"],
        },
    )
    assert status == 201, hook
    deliveries = CatalogStore(redis).webhook_deliveries
    ref = DeliveryRef(campaign_id, hook["data"]["id"], "delivery-1")
    await deliveries.begin(ref, "evt-1", "campaign_call.completed", b"{}", datetime.now(UTC))
    await ingest.call("PATCH", f"{path}/status", {"status": "paused"})
    assert await stored_keys(redis, f"*{campaign_id}*") != []
    assert len(await _due_members(redis, campaign_id)) == 5

    status, body = await ingest.call("DELETE", path)
    assert status == 200, body
    assert body["data"] == {"id": campaign_id, "deleted": True}
    status, _ = await ingest.call("GET", path)
    assert status == 404
    _, listed = await ingest.call("GET", "/campaigns")
    assert campaign_id not in [c["id"] for c in listed["data"]]
    # Idempotent: asked again while it runs, the same answer.
    status, _ = await ingest.call("DELETE", path)
    assert status == 200
    status, _ = await ingest.call("POST", f"{path}/call", {"to": "+12125550199"})
    assert status == 404

    recorder = Recorder()
    assert await _finisher(redis, recorder, chunk=2).finish_pending() == 1

    assert await stored_keys(redis, f"*{campaign_id}*") == []
    for call_id in ids:
        assert await stored_keys(redis, f"*{call_id}*") == []
    assert sorted(e.call_id for e in recorder.events) == sorted(ids[1:])
    assert {e.reason for e in recorder.events} == {"campaign_cancelled"}
    for name in (keys.campaigns_with_handoffs(), keys.campaigns_with_slots()):
        assert not await redis.sismember(name, campaign_id)
    shard = keys.retention_campaigns(keys.retention_shard_of(campaign_id))
    assert await redis.zscore(shard, campaign_id) is None
    assert await redis.zscore(keys.campaigns_to_finish(), campaign_id) is None
    assert await redis.zscore(keys.env_campaigns("env-a"), campaign_id) is None
    assert await _due_members(redis, campaign_id) == []
    status, _ = await ingest.call("DELETE", path)
    assert status == 404


async def test_delete_is_refused_while_a_call_is_in_progress(
    ingest: IngestClient, redis: Redis
) -> None:
    campaign = await ingest.campaign()
    (call_id,) = await _calls(ingest, campaign["id"], 1)
    await ingest.call("PATCH", f"/campaigns/{campaign['id']}/status", {"status": "paused"})
    store = CallStore(redis, 16)
    call = await store.get(campaign["id"], call_id)
    assert call is not None
    assert await store.mark_started(call, 1, datetime.now(UTC))

    status, body = await ingest.call("DELETE", f"/campaigns/{campaign['id']}")

    assert status == 409
    assert body["code"] == "CALLS_IN_PROGRESS"
    status, _ = await ingest.call("GET", f"/campaigns/{campaign['id']}")
    assert status == 200


async def test_the_scheduler_finishes_a_cancelled_campaign_with_its_events(
    kafka_server: KafkaServer, redis_server: RedisServer, ingest: IngestClient, redis: Redis
) -> None:
    campaign = await ingest.campaign(start_date="2099-03-02")
    ids = await _calls(ingest, campaign["id"], 3)
    status, _ = await ingest.call(
        "PATCH", f"/campaigns/{campaign['id']}/status", {"status": "cancelled"}
    )
    assert status == 200
    async with running_pipeline(
        kafka_server.bootstrap, redis_server.url, MovableClock(), dialer=False
    ):

        async def finished() -> bool:
            return await redis.zscore(keys.campaigns_to_finish(), campaign["id"]) is None

        await wait_until(finished)
        records = await read_topic(
            kafka_server.bootstrap,
            CALLS_EVENTS,
            lambda r: all(Events(r).of(i, CallEventType.CANCELLED) for i in ids),
        )
    assert await _statuses(ingest, campaign["id"], ids) == ["cancelled"] * 3
    for call_id in ids:
        (event,) = Events(records).of(call_id, CallEventType.CANCELLED)
        assert event.reason == "campaign_cancelled"
        assert event.status == CallStatus.CANCELLED.value
