"""What the dialer and notifier benchmarks store before they start a service: an agent,
always-open active campaigns, and queued calls accepted as the scheduler stores them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from redis.asyncio import Redis

from bench.loadgen import CONTEXT, PAYLOAD
from shared.ids import new_id
from shared.models import Agent, Call, Campaign, CampaignStatus
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from tests.support import ALWAYS_OPEN

ENVIRONMENT = "bench"
DUE_SHARDS = 16
RESERVATION_TTL_MS = 3_600_000


async def seed_campaigns(catalog: CatalogStore, count: int, now: datetime) -> list[str]:
    """An agent and `count` active campaigns open at every hour; their ids."""
    agent = Agent(
        id=new_id(), environment_id=ENVIRONMENT, name="Bench", prompt="Hello", created_at=now
    )
    await catalog.save_agent(agent)
    campaign_ids = [new_id() for _ in range(count)]
    for number, campaign_id in enumerate(campaign_ids):
        await catalog.save_campaign(
            Campaign.model_validate(
                {
                    **ALWAYS_OPEN,
                    "name": f"Bench {number}",
                    "agent_id": agent.id,
                    "id": campaign_id,
                    "environment_id": ENVIRONMENT,
                    "status": CampaignStatus.ACTIVE,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        )
    return campaign_ids


def queued_calls(
    campaign_ids: list[str], count: int, now: datetime, number: Callable[[int], str]
) -> list[Call]:
    """`count` calls due a second ago, spread over the campaigns, the n-th to `number(n)`."""
    return [
        Call(
            id=new_id(),
            campaign_id=campaign_ids[index % len(campaign_ids)],
            environment_id=ENVIRONMENT,
            to=number(index),
            payload=PAYLOAD,
            context=CONTEXT,
            attempt=1,
            scheduled_at=now - timedelta(seconds=1),
            scheduling_reason="immediate",
            created_at=now,
            updated_at=now,
        )
        for index in range(count)
    ]


async def accept_all(redis: Redis, calls: list[Call], concurrency: int) -> None:
    """Stores the calls through `CallStore.accept`, `concurrency` at a time; raises if any is
    refused."""
    store = CallStore(redis, DUE_SHARDS)
    todo = iter(calls)
    refused: list[str] = []

    async def worker() -> None:
        for call in todo:  # one iterator shared by every worker
            result = await store.accept(call, RESERVATION_TTL_MS)
            if result.outcome != "accepted":
                refused.append(f"{call.id}: {result.outcome}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if refused:
        raise RuntimeError(f"{len(refused)} calls not accepted, e.g. {refused[:3]}")
