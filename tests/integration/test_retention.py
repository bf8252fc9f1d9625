"""Ended calls are removed once they have been ended CALL_RETENTION_SECONDS, with every key and
index entry of theirs; the campaign's stats stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis.asyncio import Redis

from services.scheduler.retention import RetentionSweeper
from shared import keys
from shared.models import CallStatus
from shared.store.calls import CallStore
from tests.clock import MovableClock
from tests.integration.conftest import IngestClient
from tests.support import stored_keys

pytestmark = pytest.mark.integration

RETENTION_MS = 1_000


async def _calls(ingest: IngestClient, campaign_id: str, *numbers: str) -> list[str]:
    ids = []
    for number in numbers:
        status, body = await ingest.call("POST", f"/campaigns/{campaign_id}/call", {"to": number})
        assert status == 201, body
        ids.append(body["campaign_call"]["id"])
    return ids


async def test_an_ended_call_is_removed_after_its_retention_and_stats_stay(
    ingest: IngestClient, redis: Redis
) -> None:
    campaign = await ingest.campaign()
    campaign_id = campaign["id"]
    path = f"/campaigns/{campaign_id}"
    cancelled, expired, waiting = await _calls(
        ingest, campaign_id, "+12125550141", "+12125550142", "+12125550143"
    )
    store = CallStore(redis, 16, retention_ms=RETENTION_MS)
    clock = MovableClock()
    status, _ = await ingest.call("DELETE", f"{path}/calls/{cancelled}")
    assert status == 200
    call = await store.get(campaign_id, expired)
    assert call is not None
    assert await store.claim_attempt(call, 1, 3_600_000)
    assert await store.end_undialed(call, 1, CallStatus.EXPIRED, clock.now())
    # Ended: kept for now (the sweep is not due), with an expiry as a backstop.
    assert await redis.pttl(keys.call(campaign_id, expired)) > 0
    assert await redis.pttl(keys.call(campaign_id, waiting)) == -1
    sweeper = RetentionSweeper(store, clock, batch=100, interval_ms=1000)
    assert await sweeper.sweep() == 0
    status, _ = await ingest.call("GET", f"{path}/calls/{expired}")
    assert status == 200

    clock.advance(timedelta(milliseconds=RETENTION_MS + 1_000))
    assert await sweeper.sweep() == 2

    for call_id in (cancelled, expired):
        status, body = await ingest.call("GET", f"{path}/calls/{call_id}")
        assert status == 404, body
        assert await stored_keys(redis, f"*{call_id}*") == []
    status, body = await ingest.call("GET", f"{path}/calls/{waiting}")
    assert status == 200
    _, listed = await ingest.call("GET", f"{path}/calls")
    assert [c["id"] for c in listed["data"]] == [waiting]
    assert listed["pagination"]["total"] == 1
    for ended_status in ("cancelled", "expired"):
        _, listed = await ingest.call("GET", f"{path}/calls?status={ended_status}")
        assert listed["pagination"]["total"] == 0
    _, listed = await ingest.call("GET", f"{path}/calls?to=%2B12125550141")
    assert listed["data"] == []
    # Every index of the campaign holds the waiting call only; its ended set is empty.
    assert await redis.zrange(keys.campaign_calls(campaign_id), 0, -1) == [waiting]
    assert await redis.zrange(keys.calls_by_number(campaign_id), 0, -1) == [
        f"+12125550143|{waiting}"
    ]
    assert await redis.zcard(keys.ended_calls(campaign_id)) == 0
    _, stored = await ingest.call("GET", path)
    assert stored["data"]["stats"]["total_calls"] == 3
    assert stored["data"]["stats"]["queued_calls"] == 1
    # The campaign is looked at again a retention period from the sweep.
    shard = keys.retention_campaigns(keys.retention_shard_of(campaign_id))
    assert await redis.zscore(shard, campaign_id) is not None
    assert await sweeper.sweep() == 0


async def test_a_call_ended_later_waits_for_its_own_retention(
    ingest: IngestClient, redis: Redis
) -> None:
    campaign = await ingest.campaign()
    campaign_id = campaign["id"]
    first, second = await _calls(ingest, campaign_id, "+12125550151", "+12125550152")
    store = CallStore(redis, 16, retention_ms=RETENTION_MS)
    clock = MovableClock()
    sweeper = RetentionSweeper(store, clock, batch=1, interval_ms=1000)
    for call_id, at in ((first, clock.now()), (second, clock.now() + timedelta(seconds=10))):
        call = await store.get(campaign_id, call_id)
        assert call is not None
        assert (await store.cancel_queued(call, at))[0]

    clock.advance(timedelta(milliseconds=RETENTION_MS + 500))
    assert await sweeper.sweep() == 1
    assert await store.get(campaign_id, first) is None
    assert await store.get(campaign_id, second) is not None

    clock.advance(timedelta(seconds=10))
    assert await sweeper.sweep() == 1
    assert await store.get(campaign_id, second) is None
    assert await stored_keys(redis, f"*{second}*") == []
