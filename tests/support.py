"""Helpers the integration and end-to-end tests share: an API client and a webhook receiver."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# A campaign whose calling window is always open, so a call rings at once.
ALWAYS_OPEN: dict[str, Any] = {
    "name": "Always open",
    "campaign_type": "sales",
    "start_date": "2026-01-01",
    "days_of_week": [1, 2, 3, 4, 5, 6, 7],
    "call_time_ranges": [{"start": "00:00", "end": "24:00"}],
    "timezone": "UTC",
    "recipient_local_hours": None,
    "max_retries": 0,
}


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    method: str = "POST"
    received_at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        import orjson

        return orjson.loads(self.body)


@dataclass
class Receiver:
    """A customer's webhook endpoint on loopback that records what it gets."""

    deliveries: list[Delivery] = field(default_factory=list)
    status: int = 200
    # Answers for the next requests, in order (e.g. [500, 500]); `status` once they run out.
    statuses: list[int] = field(default_factory=list)
    # How long each answer is held back (seconds), to make a sender time out.
    delay_s: float = 0.0
    # Requests being answered now.
    busy: int = 0
    # The body and headers every answer carries.
    answer_body: bytes = b""
    answer_headers: dict[str, str] = field(default_factory=dict)
    runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> Receiver:
        async def receive(request: web.Request) -> web.Response:
            self.deliveries.append(
                Delivery(dict(request.headers), await request.read(), request.method)
            )
            status = self.statuses.pop(0) if self.statuses else self.status
            self.busy += 1
            try:
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
            finally:
                self.busy -= 1
            return web.Response(status=status, body=self.answer_body, headers=self.answer_headers)

        app = web.Application()
        for method in ("POST", "PUT", "PATCH"):
            app.router.add_route(method, "/hooks", receive)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def of_type(self, event_type: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.json()["type"] == event_type]


class Api:
    """A thin client of the public API for tests."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base.rstrip("/")

    async def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        async with self.session.request(
            method, f"{self.base}/api/v1{path}", json=body, headers=headers or AUTH
        ) as response:
            return response.status, await response.json(content_type=None)

    async def active_campaign(self, **overrides: Any) -> dict[str, Any]:
        status, agent = await self.call(
            "POST", "/agents", {"name": "Agent", "prompt": "Hello {{first_name}}"}
        )
        assert status == 201, agent
        body = {**ALWAYS_OPEN, "agent_id": agent["data"]["id"], **overrides}
        status, campaign = await self.call("POST", "/campaigns", body)
        assert status == 201, campaign
        campaign_id = campaign["data"]["id"]
        status, moved = await self.call(
            "PATCH", f"/campaigns/{campaign_id}/status", {"status": "active"}
        )
        assert status == 200, moved
        return dict(moved["data"])

    async def webhook(self, campaign_id: str, url: str, **overrides: Any) -> dict[str, Any]:
        body = {
            "name": "receiver",
            "webhook_url": url,
            "events": ["campaign_call.completed"],
            "include_call_events": True,
            **overrides,
        }
        status, hook = await self.call("POST", f"/campaigns/{campaign_id}/webhooks", body)
        assert status == 201, hook
        return dict(hook["data"])


async def read_topic(
    bootstrap: str,
    topic: str,
    until: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
    within: float = 20.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Reads a topic from the start until `until(records)` holds; fails after `within` s."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"inspect-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=2000,
        heartbeat_interval_ms=300,
    )
    records: list[ConsumerRecord[bytes, bytes]] = []
    await consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + within
        while not until(records):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(
                    f"{topic}: condition not met in {within}s; read {len(records)} records"
                )
            batch = await consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000))
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


async def consumer_groups(bootstrap: str, group_ids: list[str]) -> dict[str, tuple[str, int]]:
    """Each consumer group's state (`Stable` once every member has its partitions) and size."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found: dict[str, tuple[str, int]] = {}
        # One group per request: the local broker garbles an answer about several.
        for group_id in group_ids:
            for response in await admin.describe_consumer_groups([group_id]):
                for group in response.to_object()["groups"]:
                    found[group["group"]] = (group["state"], len(group["members"]))
        return found
    finally:
        await admin.close()


async def wait_for_stable_groups(
    bootstrap: str, members: dict[str, int], within: float = 30.0
) -> None:
    """Waits until each named consumer group is stable with the given number of members, so
    work sent from now on is shared by all of them."""
    wanted = {group: ("Stable", count) for group, count in members.items()}
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await consumer_groups(bootstrap, list(members))
        if found == wanted:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"consumer groups {found}, not {wanted}, after {within}s")
        await asyncio.sleep(0.1)


async def stored_keys(redis: Redis, pattern: str = "*") -> list[str]:
    """Every key matching `pattern`, on one server or on every master of a cluster (a plain
    KEYS on a cluster asks one node only)."""
    if isinstance(redis, RedisCluster):
        found = await redis.keys(pattern, target_nodes=RedisCluster.PRIMARIES)
    else:
        found = await redis.keys(pattern)
    return sorted(str(key) for key in found)
