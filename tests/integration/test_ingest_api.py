"""The ingest service in-process, on the real broker and Redis: the public contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from services.ingest.app import create_app
from shared.events import CallRequested
from shared.topics import CALLS_REQUESTED
from tests.conftest import KafkaServer, RedisServer
from tests.integration.conftest import ingest_settings
from tests.support import ALWAYS_OPEN, AUTH, TOKEN, stored_keys

pytestmark = pytest.mark.integration
OTHER = {"Authorization": "Bearer other-token"}


@pytest.fixture
async def client(
    kafka_server: KafkaServer, redis_server: RedisServer
) -> AsyncIterator[TestClient[Any, Any]]:
    settings = ingest_settings(kafka_server, redis_server, max_body_bytes=64 * 1024)
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client


async def _json(response: Any) -> Any:
    return orjson.loads(await response.read())


async def _campaign(client: TestClient[Any, Any], **overrides: Any) -> dict[str, Any]:
    agent = await _json(
        await client.post("/api/v1/agents", json={"name": "A", "prompt": "Hi"}, headers=AUTH)
    )
    response = await client.post(
        "/api/v1/campaigns",
        json={**ALWAYS_OPEN, "agent_id": agent["data"]["id"], **overrides},
        headers=AUTH,
    )
    assert response.status == 201
    campaign: dict[str, Any] = (await _json(response))["data"]
    moved = await client.patch(
        f"/api/v1/campaigns/{campaign['id']}/status", json={"status": "active"}, headers=AUTH
    )
    assert moved.status == 200
    return campaign


async def _keys(redis: Redis) -> set[str]:
    return set(await stored_keys(redis, "*"))


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}],
    ids=["missing", "unknown", "no-scheme"],
)
async def test_requests_without_a_valid_token_get_401(
    client: TestClient[Any, Any], headers: dict[str, str]
) -> None:
    response = await client.post(
        "/api/v1/agents", json={"name": "A", "prompt": "p"}, headers=headers
    )
    assert response.status == 401
    assert await _json(response) == {"success": False, "message": "Unauthenticated."}


async def test_make_call_answers_201_and_hands_the_request_to_the_scheduler(
    client: TestClient[Any, Any], kafka_server: KafkaServer
) -> None:
    campaign = await _campaign(client)
    consumer = AIOKafkaConsumer(
        CALLS_REQUESTED,
        bootstrap_servers=kafka_server.bootstrap,
        group_id="inspect",
        auto_offset_reset="earliest",
        session_timeout_ms=2000,
        heartbeat_interval_ms=300,
    )
    await consumer.start()
    try:
        response = await client.post(
            f"/api/v1/campaigns/{campaign['id']}/call",
            json={"to": "+1 (212) 555-0123", "payload": {"n": 1}, "context": {"k": "v"}},
            headers=AUTH,
        )
        body = await _json(response)
        assert response.status == 201, body
        assert body["campaign_call"]["to"] == "+12125550123"
        assert body["campaign_call"]["scheduling_reason"] == "immediate"
        record = await consumer.getone()
    finally:
        await consumer.stop()
    message = CallRequested.model_validate_json(record.value)
    assert record.key == f"{campaign['id']}:+12125550123".encode()
    assert message.call_id == body["campaign_call"]["id"]
    assert message.accepted
    assert message.context == {"k": "v"}


async def test_the_same_number_written_two_ways_is_a_duplicate(
    client: TestClient[Any, Any],
) -> None:
    campaign = await _campaign(client)
    url = f"/api/v1/campaigns/{campaign['id']}/call"
    first = await client.post(url, json={"to": "+1 (212) 555-0123"}, headers=AUTH)
    assert first.status == 201
    second = await client.post(url, json={"to": "+12125550123"}, headers=AUTH)
    body = await _json(second)
    assert second.status == 409
    assert body["success"] is False
    assert body["message"] == "A call to this number already exists in this campaign"
    existing = (await _json(first))["campaign_call"]
    assert body["existing_call"] == {
        "id": existing["id"],
        "campaign_id": campaign["id"],
        "to": "+12125550123",
        "status": "queued",
        "created_at": existing["created_at"],
    }
    third = await client.post(
        url, json={"to": "+12125550123", "allow_duplicates": True}, headers=AUTH
    )
    assert third.status == 201


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"to": ["The to field is required."]}),
        ({"to": ""}, {"to": ["The to field is required."]}),
        ({"to": "12"}, {"to": ["The to must be a valid phone number."]}),
        ({"to": "+1 212 555 01"}, {"to": ["The to must be a valid phone number."]}),
        ({"to": 12125550123}, {"to": ["The to must be a valid phone number."]}),
    ],
    ids=["missing", "empty", "garbage", "too-short", "not-a-string"],
)
async def test_a_bad_number_gets_the_documented_422_and_changes_nothing(
    client: TestClient[Any, Any], redis: Redis, body: dict[str, Any], errors: dict[str, Any]
) -> None:
    campaign = await _campaign(client)
    before = await _keys(redis)
    response = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/call", json=body, headers=AUTH
    )
    assert response.status == 422
    assert await _json(response) == {
        "success": False,
        "message": "The given data was invalid.",
        "errors": errors,
    }
    assert await _keys(redis) == before


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [(b"{not json", "application/json"), (b"[1, 2]", "application/json"), (b"{}", "text/plain")],
    ids=["malformed", "not-an-object", "wrong-content-type"],
)
async def test_an_unreadable_body_is_a_422_under_body(
    client: TestClient[Any, Any], raw: bytes, content_type: str
) -> None:
    campaign = await _campaign(client)
    response = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/call",
        data=raw,
        headers={**AUTH, "Content-Type": content_type},
    )
    body = await _json(response)
    assert response.status == 422
    assert body["message"] == "The given data was invalid."
    assert list(body["errors"]) == ["body"]


async def test_a_huge_body_is_refused_with_413(client: TestClient[Any, Any]) -> None:
    campaign = await _campaign(client)
    response = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/call",
        json={"to": "+12125550123", "context": {"blob": "x" * 100_000}},
        headers=AUTH,
    )
    assert response.status == 413
    assert (await _json(response))["success"] is False


async def test_another_environment_sees_404(client: TestClient[Any, Any]) -> None:
    campaign = await _campaign(client)
    response = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/call", json={"to": "+12125550123"}, headers=OTHER
    )
    assert response.status == 404
    assert await _json(response) == {
        "success": False,
        "message": "Campaign not found.",
        "code": "CAMPAIGN_NOT_FOUND",
    }
    response = await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=OTHER)
    assert response.status == 404


async def test_closed_campaigns_refuse_calls(client: TestClient[Any, Any]) -> None:
    campaign = await _campaign(client)
    moved = await client.patch(
        f"/api/v1/campaigns/{campaign['id']}/status", json={"status": "cancelled"}, headers=AUTH
    )
    assert moved.status == 200
    response = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/call", json={"to": "+12125550123"}, headers=AUTH
    )
    assert response.status == 409
    assert (await _json(response))["code"] == "CAMPAIGN_CLOSED"


async def test_a_disallowed_status_move_is_400(client: TestClient[Any, Any]) -> None:
    campaign = await _campaign(client)
    await client.patch(
        f"/api/v1/campaigns/{campaign['id']}/status", json={"status": "completed"}, headers=AUTH
    )
    response = await client.patch(
        f"/api/v1/campaigns/{campaign['id']}/status", json={"status": "active"}, headers=AUTH
    )
    assert response.status == 400
    assert (await _json(response))["code"] == "INVALID_TRANSITION"


async def test_a_call_outside_the_window_is_scheduled_for_its_opening(
    client: TestClient[Any, Any],
) -> None:
    campaign = await _campaign(client, start_date="2099-03-02", timezone="America/New_York")
    response = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/call", json={"to": "+12125550123"}, headers=AUTH
    )
    body = await _json(response)
    assert response.status == 201
    assert body["campaign_call"]["scheduled_at"] == "2099-03-02T05:00:00Z"
    assert body["campaign_call"]["scheduling_reason"] == "before_start_date"


async def test_each_request_is_counted_once_under_its_route_template(
    client: TestClient[Any, Any],
) -> None:
    campaign = await _campaign(client)
    made = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/call", json={"to": "+12125550177"}, headers=AUTH
    )
    assert made.status == 201
    assert (await client.get("/api/v1/nowhere")).status == 401
    assert (await client.get("/nowhere", headers=AUTH)).status == 404
    assert (await client.get("/healthz")).status == 200

    text = (await (await client.get("/metrics")).read()).decode()
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }

    def requests(method: str, route: str, status: str) -> float | None:
        labels = frozenset({("method", method), ("route", route), ("status", status)})
        return samples.get(("campaign_calls_http_requests_total", labels))

    assert requests("POST", "/api/v1/campaigns/{campaign_id}/call", "201") == 1
    # The catch-all route's answers, each counted once, by the frame that answered it.
    assert requests("GET", "/{path}", "401") == 1
    assert requests("GET", "/{path}", "404") == 1
    assert requests("GET", "/healthz", "200") == 1
    call_route = frozenset({("method", "POST"), ("route", "/api/v1/campaigns/{campaign_id}/call")})
    assert samples[("campaign_calls_http_request_duration_seconds_count", call_route)] == 1
    assert samples[("campaign_calls_call_requests_total", frozenset({("result", "accepted")}))] == 1
