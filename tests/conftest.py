"""Shared fixtures: a real Kafka-compatible broker and a real Redis, each on a free port.

KAFKA_BOOTSTRAP_SERVERS / REDIS_URL, when set, point the tests at existing servers instead.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from devstack.processes import Managed, broker_command, free_port, redis_command, wait_for_port
from shared.bus import ensure_topics
from shared.redis_client import create_redis
from shared.settings import KafkaSettings, RedisSettings


@dataclass
class KafkaServer:
    bootstrap: str
    process: Managed | None

    @property
    def port(self) -> int:
        return int(self.bootstrap.rsplit(":", 1)[1])

    def settings(self) -> KafkaSettings:
        return KafkaSettings(bootstrap_servers=self.bootstrap)


@dataclass
class RedisServer:
    url: str
    process: Managed | None

    def settings(self) -> RedisSettings:
        return RedisSettings(url=self.url)


def _start_broker() -> KafkaServer:
    port = free_port()
    process = Managed("broker", broker_command(port)).start()
    assert process.process is not None
    wait_for_port("127.0.0.1", port, 30, process.process)
    return KafkaServer(f"127.0.0.1:{port}", process)


def _start_redis() -> RedisServer:
    port = free_port()
    process = Managed("redis", redis_command(port)).start()
    assert process.process is not None
    wait_for_port("127.0.0.1", port, 30, process.process)
    return RedisServer(f"redis://127.0.0.1:{port}/0", process)


@pytest.fixture
def kafka_server() -> Iterator[KafkaServer]:
    """A broker of the test's own (it starts in well under a second), so tests can kill it."""
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        yield KafkaServer(existing, None)
        return
    server = _start_broker()
    asyncio.run(ensure_topics(server.settings()))
    yield server
    assert server.process is not None
    server.process.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    existing = os.environ.get("REDIS_URL")
    if existing:
        import redis as sync_redis

        sync_redis.Redis.from_url(existing).flushdb()
        yield RedisServer(existing, None)
        return
    server = _start_redis()
    yield server
    assert server.process is not None
    server.process.stop()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = create_redis(RedisSettings(url=redis_server.url))
    yield client
    await client.aclose()


@pytest.fixture
def unique() -> str:
    """A fresh suffix for consumer groups and ids, so tests sharing a broker stay apart."""
    return uuid.uuid4().hex[:12]


async def wait_until(
    condition: Callable[[], Awaitable[bool]], within: float = 20.0, interval: float = 0.05
) -> None:
    """Polls `condition` until it holds; fails the test with a timeout otherwise."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await condition():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)
