"""Bad input of every kind gets the documented error body and changes nothing in Redis."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from tests.integration.conftest import IngestClient
from tests.support import AUTH, stored_keys

pytestmark = pytest.mark.integration


async def snapshot(redis: Redis) -> dict[str, Any]:
    """Every key with its full value, to compare before and after a refused request."""
    state: dict[str, Any] = {}
    for key in await stored_keys(redis, "*"):
        kind = await redis.type(key)
        if kind == "hash":
            state[key] = await redis.hgetall(key)
        elif kind == "zset":
            state[key] = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            state[key] = sorted(await redis.smembers(key))
        elif kind == "list":
            state[key] = await redis.lrange(key, 0, -1)
        else:
            state[key] = await redis.get(key)
    return state


def _is_error_body(body: Any, status: int) -> bool:
    if not isinstance(body, dict) or body.get("success") is not False:
        return False
    if not isinstance(body.get("message"), str):
        return False
    if status == 422:
        errors = body.get("errors")
        return isinstance(errors, dict) and all(
            isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages)
            for messages in errors.values()
        )
    return status == 401 or isinstance(body.get("code"), str)


CASES: list[tuple[str, str, bytes, str, int]] = [
    ("POST", "/agents", b"{", "application/json", 422),
    ("POST", "/agents", b'"a string"', "application/json", 422),
    ("POST", "/agents", b"[]", "application/json", 422),
    ("POST", "/agents", b'{"name": 5, "prompt": []}', "application/json", 422),
    ("POST", "/agents", b'{"name": "A", "prompt": "p"}', "text/plain", 422),
    ("POST", "/campaigns", b'{"name": "x"}', "application/json", 422),
    (
        "POST",
        "/campaigns",
        b'{"name": "x", "campaign_type": "sales", "agent_id": "nope", "start_date": "2026-01-01"}',
        "application/json",
        422,
    ),
    ("POST", "/campaigns/{campaign}/call", b'{"to": null}', "application/json", 422),
    (
        "POST",
        "/campaigns/{campaign}/call",
        b'{"to": "+12125550101", "payload": 3}',
        "application/json",
        422,
    ),
    (
        "POST",
        "/campaigns/{campaign}/call",
        b'{"to": "+12125550101", "is_testing": "yes"}',
        "application/json",
        422,
    ),
    ("POST", "/campaigns/missing/call", b'{"to": "+12125550101"}', "application/json", 404),
    ("GET", "/campaigns/missing", b"", "application/json", 404),
    ("GET", "/campaigns/{campaign}/calls/missing", b"", "application/json", 404),
    ("GET", "/agents/missing", b"", "application/json", 404),
    ("PATCH", "/campaigns/{campaign}/status", b'{"status": "nope"}', "application/json", 422),
    ("PATCH", "/campaigns/{campaign}/status", b'{"status": "draft"}', "application/json", 400),
    ("PUT", "/campaigns/{campaign}", b'{"days_of_week": [0, 8]}', "application/json", 422),
    ("POST", "/campaigns/{campaign}/calls/batch", b'{"calls": []}', "application/json", 422),
    ("DELETE", "/campaigns/{campaign}/calls/missing", b"", "application/json", 404),
    ("GET", "/campaigns?page=0", b"", "application/json", 422),
    ("GET", "/agents?page=&per_page=", b"", "application/json", 422),
    ("GET", "/campaigns?campaign_type=", b"", "application/json", 422),
    ("GET", "/campaigns/{campaign}/calls?status=&to=", b"", "application/json", 422),
    (
        "PUT",
        "/campaigns/{campaign}",
        b'{"initial_call_delay": 1000000000000}',
        "application/json",
        422,
    ),
    (
        "PUT",
        "/campaigns/{campaign}",
        b'{"auto_dnc_trigger_errors": ["x"]}',
        "application/json",
        422,
    ),
    (
        "POST",
        "/campaigns/{campaign}/call",
        b'{"to": "+12125550101", "payload": {"x": "' + b"y" * 16_384 + b'"}}',
        "application/json",
        422,
    ),
    ("GET", "/nowhere", b"", "application/json", 404),
    ("POST", "/campaigns/{campaign}/nowhere", b"{}", "application/json", 404),
    ("PATCH", "/campaigns/{campaign}", b"{}", "application/json", 405),
    ("POST", "/agents/missing", b"{}", "application/json", 405),
    (
        "POST",
        "/campaigns/{campaign}/call",
        b'{"to": "+12125550101", "context": {"x": "' + b"y" * 2_000_000 + b'"}}',
        "application/json",
        413,
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "raw", "content_type", "status"),
    CASES,
    ids=[f"{i}-{c[0]}-{c[4]}" for i, c in enumerate(CASES)],
)
async def test_refused_requests_answer_the_documented_body_and_change_nothing(
    ingest: IngestClient,
    redis: Redis,
    method: str,
    path: str,
    raw: bytes,
    content_type: str,
    status: int,
) -> None:
    campaign = await ingest.campaign()
    before = await snapshot(redis)
    response = await ingest.client.request(
        method,
        "/api/v1" + path.replace("{campaign}", campaign["id"]),
        data=io.BytesIO(raw) if raw else None,
        headers={**AUTH, "Content-Type": content_type},
    )
    body = orjson.loads(await response.read())
    assert response.status == status, body
    assert _is_error_body(body, status), body
    assert await snapshot(redis) == before


async def test_a_route_that_does_not_take_the_method_names_those_it_takes(
    ingest: IngestClient,
) -> None:
    response = await ingest.client.request("PATCH", "/api/v1/agents", headers=AUTH)
    assert response.status == 405
    assert orjson.loads(await response.read())["code"] == "METHOD_NOT_ALLOWED"
    assert set(response.headers["Allow"].split(",")) == {"GET", "HEAD", "POST"}


async def test_requests_no_route_takes_need_a_token_under_the_api_and_none_elsewhere(
    ingest: IngestClient,
) -> None:
    response = await ingest.client.get("/api/v1/nowhere")
    assert response.status == 401
    response = await ingest.client.get("/nowhere")
    body = orjson.loads(await response.read())
    assert (response.status, body["code"]) == (404, "NOT_FOUND")


async def _claims_made(redis: Redis) -> int:
    """How many SETs Redis has run: an Idempotency-Key is claimed with one."""
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_set", {}).get("calls", 0))


async def test_an_idempotency_key_on_a_request_no_route_takes_is_never_claimed(
    ingest: IngestClient, redis: Redis
) -> None:
    before = await snapshot(redis)
    claims = await _claims_made(redis)
    response = await ingest.client.post(
        "/api/v1/nowhere", json={}, headers={**AUTH, "Idempotency-Key": "k-1"}
    )
    assert response.status == 404
    assert await _claims_made(redis) == claims
    assert await snapshot(redis) == before


async def test_unknown_fields_are_ignored_and_unicode_is_kept(ingest: IngestClient) -> None:
    status, body = await ingest.call(
        "POST", "/agents", {"name": "Zoë 🤖 エージェント", "prompt": "Hallo {{name}}", "extra": 1}
    )
    assert status == 201, body
    assert body["data"]["name"] == "Zoë 🤖 エージェント"
    assert "extra" not in body["data"]
    status, body = await ingest.call("GET", f"/agents/{body['data']['id']}")
    assert body["data"]["name"] == "Zoë 🤖 エージェント"
