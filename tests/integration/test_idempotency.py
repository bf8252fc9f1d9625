"""The Idempotency-Key extension on the in-process ingest app, the real broker and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis

from services.ingest.app import api_route, create_app
from services.ingest.idempotency import (
    HEADER,
    KEEP_MS,
    REPLAYED_HEADER,
    Claimed,
    IdempotencyStore,
    InProgress,
    Replay,
    StoredResponse,
    scope_of,
)
from services.ingest.settings import IngestSettings
from shared import keys
from shared.topics import CALLS_REQUESTED
from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.support import ALWAYS_OPEN, AUTH, TOKEN, stored_keys

pytestmark = pytest.mark.integration
OTHER = {"Authorization": "Bearer other-token"}
IN_PROGRESS_BODY = {
    "success": False,
    "message": "A request with this Idempotency-Key is still in progress.",
    "code": "IDEMPOTENCY_KEY_IN_PROGRESS",
}


@dataclass
class Probe:
    """Test-only routes on the real app: a handler that fails, one that answers 503, and one
    that waits until the test lets it finish."""

    runs: dict[str, int] = field(default_factory=lambda: {"boom": 0, "busy": 0, "slow": 0})
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def boom(self, request: web.Request) -> web.Response:
        self.runs["boom"] += 1
        raise RuntimeError("the handler broke")

    async def busy(self, request: web.Request) -> web.Response:
        self.runs["busy"] += 1
        return web.json_response({"success": False}, status=503)

    async def slow(self, request: web.Request) -> web.Response:
        self.runs["slow"] += 1
        if self.runs["slow"] == 1:  # only the first run waits, so a second one fails fast
            self.entered.set()
            await self.release.wait()
        return web.json_response({"success": True, "run": self.runs["slow"]}, status=201)


@dataclass
class Api:
    client: TestClient[Any, Any]
    probe: Probe


@pytest.fixture
async def api(kafka_server: KafkaServer, redis_server: RedisServer) -> AsyncIterator[Api]:
    settings = IngestSettings(
        kafka=kafka_server.settings(),
        redis=redis_server.settings(),
        api_tokens=f"{TOKEN}:env-a,other-token:env-b",
        dev_api_token=None,
        max_body_bytes=64 * 1024,
        rate_limit_per_second=0,  # its allowance key is not what these tests look for
    )
    app = create_app(settings)
    probe = Probe()
    app.router.add_post("/api/v1/probe/boom", api_route(probe.boom))
    app.router.add_post("/api/v1/probe/busy", api_route(probe.busy))
    app.router.add_post("/api/v1/probe/slow", api_route(probe.slow))
    async with TestClient(TestServer(app)) as client:
        yield Api(client, probe)


@pytest.fixture
def client(api: Api) -> TestClient[Any, Any]:
    return api.client


def _with_key(key: str, auth: dict[str, str] = AUTH) -> dict[str, str]:
    return {**auth, HEADER: key}


def _entry(path: str, key: str, environment: str = "env-a") -> str:
    return keys.idempotency(environment, scope_of("POST", path, key))


async def _json(response: Any) -> Any:
    return orjson.loads(await response.read())


async def _agent(client: TestClient[Any, Any]) -> str:
    response = await client.post("/api/v1/agents", json={"name": "A", "prompt": "Hi"}, headers=AUTH)
    assert response.status == 201
    agent_id: str = (await _json(response))["data"]["id"]
    return agent_id


async def _active_campaign(client: TestClient[Any, Any]) -> str:
    response = await client.post(
        "/api/v1/campaigns", json={**ALWAYS_OPEN, "agent_id": await _agent(client)}, headers=AUTH
    )
    assert response.status == 201
    campaign_id: str = (await _json(response))["data"]["id"]
    moved = await client.patch(
        f"/api/v1/campaigns/{campaign_id}/status", json={"status": "active"}, headers=AUTH
    )
    assert moved.status == 200
    return campaign_id


async def _published_requests(kafka_server: KafkaServer) -> int:
    """How many call requests reached the topic so far (a 201 does not wait for them)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_server.bootstrap)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [
            TopicPartition(CALLS_REQUESTED, p)
            for p in consumer.partitions_for_topic(CALLS_REQUESTED)
        ]
        offsets = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return sum(offsets.values())


async def test_replaying_create_agent_answers_the_same_and_creates_no_second_agent(
    client: TestClient[Any, Any], redis: Redis
) -> None:
    body = {"name": "Closer", "prompt": "Hello {{name}}"}
    first = await client.post("/api/v1/agents", json=body, headers=_with_key("agent-1"))
    second = await client.post("/api/v1/agents", json=body, headers=_with_key("agent-1"))
    assert first.status == second.status == 201
    assert await second.read() == await first.read()
    assert second.headers["Content-Type"] == first.headers["Content-Type"]
    assert REPLAYED_HEADER not in first.headers
    assert second.headers[REPLAYED_HEADER] == "true"
    assert await redis.zcard(keys.env_agents("env-a")) == 1


async def test_replaying_create_campaign_answers_the_same_and_creates_no_second_campaign(
    client: TestClient[Any, Any], redis: Redis
) -> None:
    body = {**ALWAYS_OPEN, "agent_id": await _agent(client)}
    first = await client.post("/api/v1/campaigns", json=body, headers=_with_key("campaign-1"))
    second = await client.post("/api/v1/campaigns", json=body, headers=_with_key("campaign-1"))
    assert first.status == second.status == 201
    assert await second.read() == await first.read()
    assert second.headers[REPLAYED_HEADER] == "true"
    assert await redis.zcard(keys.env_campaigns("env-a")) == 1


async def test_replaying_make_call_answers_the_same_and_places_no_second_call(
    client: TestClient[Any, Any], redis: Redis, kafka_server: KafkaServer
) -> None:
    campaign_id = await _active_campaign(client)
    url = f"/api/v1/campaigns/{campaign_id}/call"
    body = {"to": "+12125550123", "allow_duplicates": True, "context": {"order": 7}}
    first = await client.post(url, json=body, headers=_with_key("call-1"))
    second = await client.post(url, json=body, headers=_with_key("call-1"))
    assert first.status == second.status == 201
    assert await second.read() == await first.read()
    assert second.headers[REPLAYED_HEADER] == "true"
    assert await redis.zcard(keys.campaign_calls(campaign_id)) == 1

    async def one_published() -> bool:
        return await _published_requests(kafka_server) == 1

    await wait_until(one_published, within=10)


async def test_reordered_keys_and_other_whitespace_are_the_same_body(
    client: TestClient[Any, Any], redis: Redis
) -> None:
    campaign_id = await _active_campaign(client)
    url = f"/api/v1/campaigns/{campaign_id}/call"
    compact = b'{"to":"+12125550123","context":{"a":1,"b":2},"allow_duplicates":true}'
    spread = b'{\n  "allow_duplicates": true,\n  "context": {"b": 2, "a": 1},\n'
    spread += b'  "to": "+12125550123"\n}'
    json_type = {"Content-Type": "application/json"}
    first = await client.post(url, data=compact, headers={**_with_key("k"), **json_type})
    second = await client.post(url, data=spread, headers={**_with_key("k"), **json_type})
    assert first.status == second.status == 201
    assert await second.read() == await first.read()
    assert second.headers[REPLAYED_HEADER] == "true"
    assert await redis.zcard(keys.campaign_calls(campaign_id)) == 1


async def test_the_same_key_with_another_body_is_422_reused_and_does_nothing(
    client: TestClient[Any, Any], redis: Redis
) -> None:
    first = await client.post(
        "/api/v1/agents", json={"name": "A", "prompt": "p"}, headers=_with_key("k")
    )
    assert first.status == 201
    second = await client.post(
        "/api/v1/agents", json={"name": "B", "prompt": "p"}, headers=_with_key("k")
    )
    assert second.status == 422
    assert REPLAYED_HEADER not in second.headers
    assert await _json(second) == {
        "success": False,
        "message": "This Idempotency-Key was already used with a different request body.",
        "code": "IDEMPOTENCY_KEY_REUSED",
    }
    assert await redis.zcard(keys.env_agents("env-a")) == 1


async def test_a_key_is_scoped_to_its_environment(
    client: TestClient[Any, Any], redis: Redis
) -> None:
    body = {"name": "A", "prompt": "p"}
    mine = await client.post("/api/v1/agents", json=body, headers=_with_key("shared", AUTH))
    theirs = await client.post("/api/v1/agents", json=body, headers=_with_key("shared", OTHER))
    assert mine.status == theirs.status == 201
    assert REPLAYED_HEADER not in theirs.headers
    assert (await _json(theirs))["data"]["id"] != (await _json(mine))["data"]["id"]
    assert await redis.zcard(keys.env_agents("env-a")) == 1
    assert await redis.zcard(keys.env_agents("env-b")) == 1


async def test_a_key_is_scoped_to_its_endpoint(client: TestClient[Any, Any]) -> None:
    agent = await client.post(
        "/api/v1/agents", json={"name": "A", "prompt": "p"}, headers=_with_key("k")
    )
    assert agent.status == 201
    agent_id = (await _json(agent))["data"]["id"]
    campaign = await client.post(
        "/api/v1/campaigns", json={**ALWAYS_OPEN, "agent_id": agent_id}, headers=_with_key("k")
    )
    assert campaign.status == 201
    assert REPLAYED_HEADER not in campaign.headers


async def test_twenty_concurrent_requests_with_one_key_place_exactly_one_call(
    client: TestClient[Any, Any], redis: Redis, kafka_server: KafkaServer
) -> None:
    campaign_id = await _active_campaign(client)
    url = f"/api/v1/campaigns/{campaign_id}/call"
    body = {"to": "+12125550123", "payload": {"name": "Ann"}}

    async def send() -> tuple[int, bytes, bool]:
        response = await client.post(url, json=body, headers=_with_key("burst"))
        return response.status, await response.read(), REPLAYED_HEADER in response.headers

    answers = await asyncio.gather(*(send() for _ in range(20)))
    originals = [a for a in answers if a[0] == 201 and not a[2]]
    assert len(originals) == 1
    created = originals[0][1]
    for status, raw, replayed in answers:
        if (status, raw, replayed) == originals[0]:
            continue
        if status == 409:
            assert orjson.loads(raw) == IN_PROGRESS_BODY
        else:
            assert (status, raw, replayed) == (201, created, True)
    assert await redis.zcard(keys.campaign_calls(campaign_id)) == 1

    async def one_published() -> bool:
        return await _published_requests(kafka_server) == 1

    await wait_until(one_published, within=10)


async def test_a_second_request_while_the_first_runs_is_409_in_progress(api: Api) -> None:
    client, probe = api.client, api.probe
    first = asyncio.create_task(client.post("/api/v1/probe/slow", json={}, headers=_with_key("k")))
    await probe.entered.wait()
    second = await client.post("/api/v1/probe/slow", json={}, headers=_with_key("k"))
    assert second.status == 409
    assert await _json(second) == IN_PROGRESS_BODY
    probe.release.set()
    answered = await first
    assert answered.status == 201
    third = await client.post("/api/v1/probe/slow", json={}, headers=_with_key("k"))
    assert third.headers[REPLAYED_HEADER] == "true"
    assert await third.read() == await answered.read()
    assert probe.runs["slow"] == 1


async def test_a_422_for_a_bad_number_is_stored_and_replayed(
    client: TestClient[Any, Any], redis: Redis
) -> None:
    campaign_id = await _active_campaign(client)
    url = f"/api/v1/campaigns/{campaign_id}/call"
    first = await client.post(url, json={"to": "12"}, headers=_with_key("bad"))
    second = await client.post(url, json={"to": "12"}, headers=_with_key("bad"))
    expected = {
        "success": False,
        "message": "The given data was invalid.",
        "errors": {"to": ["The to must be a valid phone number."]},
    }
    assert first.status == second.status == 422
    assert await _json(first) == expected
    assert await second.read() == await first.read()
    assert second.headers[REPLAYED_HEADER] == "true"
    assert await redis.zcard(keys.campaign_calls(campaign_id)) == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "The Idempotency-Key must be between 1 and 255 characters."),
        ("x" * 256, "The Idempotency-Key must be between 1 and 255 characters."),
        ("tab\there", "The Idempotency-Key must contain only printable ASCII characters."),
    ],
    ids=["empty", "too-long", "control-character"],
)
async def test_an_invalid_key_is_a_422_under_the_header_and_changes_nothing(
    client: TestClient[Any, Any], redis: Redis, value: str, message: str
) -> None:
    before = set(await stored_keys(redis, "*"))
    response = await client.post(
        "/api/v1/agents", json={"name": "A", "prompt": "p"}, headers=_with_key(value)
    )
    assert response.status == 422
    assert await _json(response) == {
        "success": False,
        "message": "The given data was invalid.",
        "errors": {"Idempotency-Key": [message]},
    }
    assert set(await stored_keys(redis, "*")) == before


async def test_the_stored_answer_is_kept_at_most_24_hours(
    client: TestClient[Any, Any], redis: Redis
) -> None:
    response = await client.post(
        "/api/v1/agents", json={"name": "A", "prompt": "p"}, headers=_with_key("ttl")
    )
    assert response.status == 201
    ttl = await redis.pttl(_entry("/api/v1/agents", "ttl"))
    assert 0 < ttl <= KEEP_MS
    assert ttl > KEEP_MS - 60_000


async def test_a_handler_that_fails_releases_the_key_for_a_retry(api: Api, redis: Redis) -> None:
    for attempt in (1, 2):
        response = await api.client.post("/api/v1/probe/boom", json={}, headers=_with_key("k"))
        assert response.status == 500
        assert (await _json(response))["code"] == "INTERNAL_ERROR"
        assert api.probe.runs["boom"] == attempt
        assert await redis.exists(_entry("/api/v1/probe/boom", "k")) == 0


async def test_a_5xx_answer_is_not_stored_so_a_retry_runs_again(api: Api, redis: Redis) -> None:
    for attempt in (1, 2):
        response = await api.client.post("/api/v1/probe/busy", json={}, headers=_with_key("k"))
        assert response.status == 503
        assert REPLAYED_HEADER not in response.headers
        assert api.probe.runs["busy"] == attempt
        assert await redis.exists(_entry("/api/v1/probe/busy", "k")) == 0


async def test_without_the_header_nothing_changes(
    client: TestClient[Any, Any], redis: Redis
) -> None:
    body = {"name": "A", "prompt": "p"}
    first = await client.post("/api/v1/agents", json=body, headers=AUTH)
    second = await client.post("/api/v1/agents", json=body, headers=AUTH)
    assert first.status == second.status == 201
    assert REPLAYED_HEADER not in second.headers
    assert await redis.zcard(keys.env_agents("env-a")) == 2
    assert await stored_keys(redis, "*:idempotency:*") == []


async def test_the_header_is_ignored_on_reads_and_checked_only_after_auth(
    client: TestClient[Any, Any],
) -> None:
    agent_id = await _agent(client)
    read = await client.get(f"/api/v1/agents/{agent_id}", headers=_with_key(""))
    assert read.status == 200
    anonymous = await client.post(
        "/api/v1/agents", json={"name": "A", "prompt": "p"}, headers={HEADER: ""}
    )
    assert anonymous.status == 401


async def test_a_claim_whose_lease_ran_out_cannot_overwrite_its_successor(redis: Redis) -> None:
    store = IdempotencyStore(redis, lease_ms=60_000)
    key = _entry("/api/v1/agents", "lease")
    stale = await store.claim(key, "f" * 64)
    assert isinstance(stale, Claimed)
    await redis.delete(key)  # what the lease running out does
    current = await store.claim(key, "f" * 64)
    assert isinstance(current, Claimed)
    answer = StoredResponse(201, "application/json", b'{"success":true}')
    assert await store.finish(stale, answer) is False
    assert await store.release(stale) is False
    assert await store.claim(key, "f" * 64) == InProgress()
    assert await store.finish(current, answer) is True
    assert await store.claim(key, "f" * 64) == Replay(answer)
    assert 0 < await redis.pttl(key) <= KEEP_MS
