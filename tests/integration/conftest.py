"""Fixtures for testing the ingest service in-process against the real broker and Redis."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from faststream import FastStream

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from services.notifier.app import create_app as create_notifier
from services.notifier.settings import NotifierSettings
from shared.redis_client import _Link
from shared.settings import KafkaSettings
from tests.conftest import KafkaServer, RedisServer
from tests.support import ALWAYS_OPEN, AUTH, TOKEN

OTHER_AUTH = {"Authorization": "Bearer other-token"}
StartNotifier = Callable[..., Awaitable[FastStream]]


class IngestClient:
    """Calls the in-process API and decodes the JSON answer."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client

    async def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        response = await self.client.request(
            method, f"/api/v1{path}", json=body, headers=headers or AUTH
        )
        return response.status, orjson.loads(await response.read())

    async def agent(self, **overrides: Any) -> dict[str, Any]:
        status, body = await self.call(
            "POST", "/agents", {"name": "A", "prompt": "Hi", **overrides}
        )
        assert status == 201, body
        return dict(body["data"])

    async def campaign(self, activate: bool = True, **overrides: Any) -> dict[str, Any]:
        agent = await self.agent()
        status, body = await self.call(
            "POST", "/campaigns", {**ALWAYS_OPEN, "agent_id": agent["id"], **overrides}
        )
        assert status == 201, body
        campaign = dict(body["data"])
        if activate:
            status, moved = await self.call(
                "PATCH", f"/campaigns/{campaign['id']}/status", {"status": "active"}
            )
            assert status == 200, moved
            campaign = dict(moved["data"])
        return campaign


def ingest_settings(
    kafka_server: KafkaServer, redis_server: RedisServer, **overrides: Any
) -> IngestSettings:
    """Ingest on the test's broker and Redis, with the test tokens of env-a and env-b.

    The rate limit is off unless a test sets it (test_rate_limits.py): its allowance is a key
    of the environment, and tests here check that a refused request left no key behind."""
    fields: dict[str, Any] = {
        "api_tokens": f"{TOKEN}:env-a,other-token:env-b",
        "dev_api_token": None,
        "rate_limit_per_second": 0,
        **overrides,
    }
    return IngestSettings(kafka=kafka_server.settings(), redis=redis_server.settings(), **fields)


@pytest.fixture
async def ingest(
    kafka_server: KafkaServer, redis_server: RedisServer
) -> AsyncIterator[IngestClient]:
    settings = ingest_settings(kafka_server, redis_server)
    async with TestClient(TestServer(create_app(settings))) as client:
        yield IngestClient(client)


@pytest.fixture
async def start_notifier(
    kafka_server: KafkaServer, redis_server: RedisServer
) -> AsyncIterator[StartNotifier]:
    """Starts notifier copies in-process (one consumer group), polling the queue often and
    sending to loopback; keyword arguments override settings."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**overrides: Any) -> FastStream:
            values: dict[str, Any] = {
                "kafka": KafkaSettings(
                    bootstrap_servers=kafka_server.bootstrap,
                    session_timeout_ms=2000,
                    heartbeat_interval_ms=300,
                ),
                "redis": redis_server.settings(),
                "poll_ms": 10,
                "allow_private_targets": True,
                "http_port": 0,
                **overrides,
            }
            return await stack.enter_async_context(create_notifier(NotifierSettings(**values)))

        yield start


@pytest.fixture
def link_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many commands each write of the Redis client's shared connections carries."""
    sizes: list[int] = []
    send = _Link.send

    def counted(self: _Link, queued: Any) -> None:
        sizes.append(len(queued))
        send(self, queued)

    monkeypatch.setattr(_Link, "send", counted)
    return sizes
