"""Upgrade step for data written before the sorted-set listing indexes: files every campaign
under its status (the environments' per-status lists) and every call of a campaign's old calls
list in the calls, per-status, number and ended indexes, then deletes the old list.

Run it once with this version deployed (it is idempotent, and safe while the services run):

    python -m services.scheduler.reindex

It reads the scheduler's settings (`REDIS_URL`, `CALL_RETENTION_SECONDS`). The environments are
found by `SCAN` over the key space; the campaigns through their environments' lists and the
hand-off index.
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast

from redis.asyncio import Redis

from services.scheduler.settings import SchedulerSettings
from shared import keys
from shared.clock import Clock, SystemClock
from shared.redis_client import create_redis
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore

_CHUNK = 500


async def reindex(redis: Redis, calls: CallStore, clock: Clock) -> tuple[int, int]:
    """Returns (campaigns looked at, calls filed)."""
    catalog = CatalogStore(redis)
    campaign_ids = set(cast(set[str], await redis.smembers(keys.campaigns_with_handoffs())))
    env_keys = {key async for key in redis.scan_iter(match=keys.env_campaigns_pattern())}
    for env_key in sorted(env_keys):
        campaign_ids.update(
            await catalog.file_campaign_statuses(keys.environment_of(env_key), _CHUNK)
        )
    filed = 0
    for campaign_id in sorted(campaign_ids):
        filed += await calls.reindex_legacy(campaign_id, clock.now(), _CHUNK)
    return len(campaign_ids), filed


async def _main() -> None:
    settings = SchedulerSettings()
    redis = create_redis(settings.redis)
    try:
        calls = CallStore(redis, settings.due_shards, settings.retention.call_retention_ms)
        campaigns, filed = await reindex(redis, calls, SystemClock())
    finally:
        await redis.aclose()
    print(f"looked at {campaigns} campaigns; filed {filed} calls of their old lists")


if __name__ == "__main__":
    asyncio.run(_main())
    sys.exit(0)
