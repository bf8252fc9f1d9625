"""The upgrade step files data written before the listing indexes in them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from services.scheduler.reindex import reindex
from shared import keys
from shared.models import CallStatus, CampaignStatus
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from tests.clock import MovableClock
from tests.integration.pipeline import seed_calls, seed_campaign

pytestmark = pytest.mark.integration


async def test_old_lists_are_filed_in_the_indexes_and_deleted(redis: Redis) -> None:
    now = datetime.now(UTC)
    campaign = await seed_campaign(redis, now, campaign_id="old-campaign")
    store = CallStore(redis, 16)
    calls = await seed_calls(redis, campaign.id, 5, now, enqueue=False)
    assert (await store.cancel_queued(calls[1], now))[0]
    indexes = {
        "all": await redis.zrange(keys.campaign_calls(campaign.id), 0, -1, withscores=True),
        "queued": await redis.zrange(
            keys.calls_by_status(campaign.id, "queued"), 0, -1, withscores=True
        ),
        "cancelled": await redis.zrange(
            keys.calls_by_status(campaign.id, "cancelled"), 0, -1, withscores=True
        ),
        "numbers": await redis.zrange(keys.calls_by_number(campaign.id), 0, -1),
    }
    # What an older version left: a list of the ids, no sorted sets, no per-status lists.
    await redis.delete(
        keys.campaign_calls(campaign.id),
        keys.calls_by_status(campaign.id, "queued"),
        keys.calls_by_status(campaign.id, "cancelled"),
        keys.calls_by_number(campaign.id),
        keys.ended_calls(campaign.id),
    )
    await redis.rpush(keys.legacy_campaign_calls(campaign.id), *(c.id for c in calls))
    await redis.persist(keys.call(campaign.id, calls[1].id))
    await redis.delete(keys.env_campaigns_by_status("env-a", CampaignStatus.ACTIVE.value))

    looked_at, filed = await reindex(redis, CallStore(redis, 16, 1000), MovableClock())

    assert (looked_at, filed) == (1, 5)
    assert await redis.exists(keys.legacy_campaign_calls(campaign.id)) == 0
    assert {
        "all": await redis.zrange(keys.campaign_calls(campaign.id), 0, -1, withscores=True),
        "queued": await redis.zrange(
            keys.calls_by_status(campaign.id, "queued"), 0, -1, withscores=True
        ),
        "cancelled": await redis.zrange(
            keys.calls_by_status(campaign.id, "cancelled"), 0, -1, withscores=True
        ),
        "numbers": await redis.zrange(keys.calls_by_number(campaign.id), 0, -1),
    } == indexes
    assert await redis.zrange(keys.ended_calls(campaign.id), 0, -1) == [
        keys.number_member(calls[1].to, calls[1].id)
    ]
    assert await redis.pttl(keys.call(campaign.id, calls[1].id)) > 0
    assert await store.count_in_status(campaign.id, CallStatus.QUEUED) == 4
    ids, total = await CatalogStore(redis).page_of_campaigns("env-a", CampaignStatus.ACTIVE, 0, 20)
    assert (ids, total) == ([campaign.id], 1)
    # Run again: nothing left to file, nothing changed.
    assert await reindex(redis, CallStore(redis, 16, 1000), MovableClock()) == (1, 0)
    assert await redis.zcard(keys.campaign_calls(campaign.id)) == 5
