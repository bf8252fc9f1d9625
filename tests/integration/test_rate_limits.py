"""Rate limits per environment, on the real Redis: shared by every copy of the service, counted
before anything is stored, a batch by its items.

Each test runs an environment into debt with one batch (a batch larger than the burst goes
when the allowance is full and leaves the environment to wait out the rest), so what follows
is refused for seconds however slowly the test itself runs. Campaigns are made through a copy
without a limit, so the limited copy starts with a full allowance."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from services.ingest.app import create_app
from tests.conftest import KafkaServer, RedisServer
from tests.integration.conftest import OTHER_AUTH, IngestClient, ingest_settings
from tests.support import AUTH, stored_keys

pytestmark = pytest.mark.integration

RATE_LIMITED = {"success": False, "message": "Too many requests.", "code": "RATE_LIMITED"}
# Items that are each refused (422): a batch of them stores nothing and only counts.
INVALID_ITEM = {"to": "12"}


@contextlib.asynccontextmanager
async def _ingest(
    kafka_server: KafkaServer, redis_server: RedisServer, per_second: int
) -> AsyncIterator[IngestClient]:
    settings = ingest_settings(kafka_server, redis_server, rate_limit_per_second=per_second)
    async with TestClient(TestServer(create_app(settings))) as client:
        yield IngestClient(client)


async def _campaign(kafka_server: KafkaServer, redis_server: RedisServer) -> dict[str, Any]:
    async with _ingest(kafka_server, redis_server, per_second=0) as unlimited:
        return await unlimited.campaign()


async def _batch(api: IngestClient, campaign_id: str, items: int) -> None:
    status, body = await api.call(
        "POST", f"/campaigns/{campaign_id}/calls/batch", {"calls": [INVALID_ITEM] * items}
    )
    assert status == 207, body
    assert body["data"]["accepted"] == 0


async def _refused(api: IngestClient, method: str, path: str, **kwargs: Any) -> int:
    """Sends a request that must be refused for the rate; returns its Retry-After."""
    response = await api.client.request(method, f"/api/v1{path}", **kwargs)
    assert response.status == 429, await response.text()
    assert orjson.loads(await response.read()) == RATE_LIMITED
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit(), retry_after
    return int(retry_after)


async def test_an_environment_over_its_limit_gets_429_while_another_is_served(
    kafka_server: KafkaServer, redis_server: RedisServer
) -> None:
    campaign = await _campaign(kafka_server, redis_server)
    async with _ingest(kafka_server, redis_server, per_second=2) as api:
        await _batch(api, campaign["id"], 20)  # nine seconds of debt

        assert 1 <= await _refused(api, "GET", "/agents", headers=AUTH) <= 10
        await _refused(api, "POST", "/agents", json={"name": "A", "prompt": "Hi"}, headers=AUTH)

        status, body = await api.call("GET", "/agents", headers=OTHER_AUTH)
        assert status == 200, body
        status, body = await api.call("POST", "/agents", {"name": "B", "prompt": "Hi"}, OTHER_AUTH)
        assert status == 201, body


async def test_a_batch_counts_its_items(
    kafka_server: KafkaServer, redis_server: RedisServer
) -> None:
    campaign = await _campaign(kafka_server, redis_server)
    async with _ingest(kafka_server, redis_server, per_second=4) as api:
        await _batch(api, campaign["id"], 40)  # 40 at 4 a second: 9 s beyond the burst

        # Counted as one request, the batch would have left three of the burst's four.
        retry_after = await _refused(api, "GET", "/agents", headers=AUTH)
        assert retry_after >= 6, retry_after


async def test_a_refused_call_request_stores_nothing(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis
) -> None:
    campaign = await _campaign(kafka_server, redis_server)
    async with _ingest(kafka_server, redis_server, per_second=1) as api:
        await _batch(api, campaign["id"], 30)
        before = set(await stored_keys(redis))

        await _refused(
            api,
            "POST",
            f"/campaigns/{campaign['id']}/call",
            json={"to": "+12125550123"},
            headers={**AUTH, "Idempotency-Key": "refused-once"},
        )

        after = set(await stored_keys(redis))
        assert after == before  # no call, no reservation, no Idempotency-Key claim
        assert not [key for key in after if ":call:" in key or ":idempotency:" in key]
        assert await redis.hgetall(f"cc:{{{campaign['id']}}}:active") == {}


async def test_two_copies_of_the_service_share_one_limit(
    kafka_server: KafkaServer, redis_server: RedisServer
) -> None:
    campaign = await _campaign(kafka_server, redis_server)
    async with (
        _ingest(kafka_server, redis_server, per_second=2) as first,
        _ingest(kafka_server, redis_server, per_second=2) as second,
    ):
        await _batch(first, campaign["id"], 20)

        await _refused(second, "GET", "/agents", headers=AUTH)
        status, body = await second.call("GET", "/agents", headers=OTHER_AUTH)
        assert status == 200, body


async def test_a_limit_of_zero_turns_it_off(
    kafka_server: KafkaServer, redis_server: RedisServer, redis: Redis
) -> None:
    campaign = await _campaign(kafka_server, redis_server)
    async with _ingest(kafka_server, redis_server, per_second=0) as api:
        for _ in range(3):
            await _batch(api, campaign["id"], 1000)
        status, _ = await api.call("GET", "/agents")
        assert status == 200
        assert [key for key in await stored_keys(redis) if key.endswith(":api-rate")] == []
