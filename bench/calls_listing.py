"""Listing the calls of a large campaign: the time of `GET /campaigns/{id}/calls` for its first
page, unfiltered and filtered by status, over HTTP to an in-process ingest app.

Seeds one campaign with `--calls` calls (default 100,000) straight through the stores (the
path `accept_call.lua` takes for each), cancels every `--cancel-every`th one, then times
`--requests` requests of each listing and prints percentiles. It prints figures and asserts
nothing; a page is read from the campaign's per-status or all-calls index (ZREVRANGE plus
ZCARD), so the time should not grow with the campaign.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta

import uvloop
from aiohttp.test_utils import TestClient, TestServer

from bench.figures import load_line, percentile, table
from bench.servers import start_servers, started_processes
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.models import Agent, Call, Campaign, CampaignRules, CampaignStatus
from shared.redis_client import create_redis
from shared.settings import KafkaSettings, RedisSettings
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore

DESCRIPTION = "first page of a 100k-call campaign's calls, all and by status, over HTTP"
TOKEN = "bench-token"
CAMPAIGN = "bench-campaign"
_SEED_AT_ONCE = 1000


async def _seed(redis_url: str, calls: int, cancel_every: int) -> None:
    redis = create_redis(RedisSettings(url=redis_url))
    try:
        catalog = CatalogStore(redis)
        store = CallStore(redis, 16)
        start = datetime.now(UTC) - timedelta(days=1)
        agent = Agent(
            id="bench-agent", environment_id="bench", name="A", prompt="Hi", created_at=start
        )
        await catalog.save_agent(agent)
        rules = CampaignRules.model_validate(
            {
                "name": "Bench",
                "campaign_type": "sales",
                "agent_id": agent.id,
                "start_date": "2026-01-01",
            }
        )
        await catalog.save_campaign(
            Campaign(
                **rules.model_dump(),
                id=CAMPAIGN,
                environment_id="bench",
                status=CampaignStatus.ACTIVE,
                created_at=start,
                updated_at=start,
            )
        )
        for first in range(0, calls, _SEED_AT_ONCE):
            batch = [
                Call(
                    id=f"call-{i:07d}",
                    campaign_id=CAMPAIGN,
                    environment_id="bench",
                    to=f"+1212{i:07d}",
                    payload={"name": "Ada", "order": i},
                    scheduled_at=start,
                    scheduling_reason="immediate",
                    created_at=start + timedelta(milliseconds=i),
                    updated_at=start,
                )
                for i in range(first, min(calls, first + _SEED_AT_ONCE))
            ]
            await asyncio.gather(*(store.accept(call, 3_600_000) for call in batch))
            cancelled = [call for call in batch if int(call.id[5:]) % cancel_every == 0]
            await asyncio.gather(*(store.cancel_queued(call, start) for call in cancelled))
    finally:
        await redis.aclose()


async def _time(kafka: str, redis_url: str, requests: int) -> dict[str, list[float]]:
    settings = IngestSettings(
        kafka=KafkaSettings(bootstrap_servers=kafka),
        redis=RedisSettings(url=redis_url),
        api_tokens=f"{TOKEN}:bench",
        dev_api_token=None,
    )
    listing = f"/api/v1/campaigns/{CAMPAIGN}/calls"
    paths = {
        "all": listing,
        "status=queued": f"{listing}?status=queued",
        "status=cancelled": f"{listing}?status=cancelled",
        "status=cancelled page 200": f"{listing}?status=cancelled&page=200",
    }
    timings: dict[str, list[float]] = {name: [] for name in paths}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with TestClient(TestServer(create_app(settings))) as client:
        for name, path in paths.items():
            # One request first: connections opened, scripts loaded, the campaign cached.
            async with client.get(path, headers=headers) as response:
                assert response.status == 200, await response.text()
                body = await response.json()
            print(
                f"{name}: {len(body['data'])} calls of {body['pagination']['total']:,}, "
                f"first {body['data'][0]['id']} ({body['data'][0]['status']})",
                flush=True,
            )
            for _ in range(requests):
                began = time.perf_counter()
                async with client.get(path, headers=headers) as response:
                    await response.read()
                timings[name].append((time.perf_counter() - began) * 1000)
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench calls_listing", description=__doc__)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--cancel-every", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200)
    options = parser.parse_args(argv)
    with started_processes("calls-listing") as group:
        servers = start_servers(group)
        began = time.perf_counter()
        uvloop.run(_seed(servers.redis_url, options.calls, options.cancel_every))
        print(
            f"seeded {options.calls:,} calls (every {options.cancel_every}th cancelled) "
            f"in {time.perf_counter() - began:.1f} s",
            flush=True,
        )
        print(load_line(), flush=True)
        timings = uvloop.run(_time(servers.kafka, servers.redis_url, options.requests))
    rows = []
    for name, values in timings.items():
        ordered = sorted(values)
        rows.append(
            [
                name,
                f"{percentile(ordered, 0.5):.2f}",
                f"{percentile(ordered, 0.95):.2f}",
                f"{percentile(ordered, 0.99):.2f}",
                f"{ordered[-1]:.2f}",
            ]
        )
    print(f"GET .../calls, first page of 20 unless named, {options.requests} requests each:")
    print(table(["listing", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows))
    return 0
