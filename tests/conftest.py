"""Shared fixtures: a real Kafka-compatible broker and a real Redis, each on a free port.

KAFKA_BOOTSTRAP_SERVERS / REDIS_URL, when set, point the tests at existing servers instead
(then the tests run in one process: they would share and empty those servers at once).

Redis comes in two backends: `single` (one server) and `cluster` (a Redis Cluster of three
masters). The tests that take `redis_server` run on every backend named by the ini option
`redis_backends` (pyproject.toml; override with `-o redis_backends="single cluster"`), each
variant with the backend in its id; `@pytest.mark.redis_backends("single")` keeps a test to the
backends it names. The cluster backend is one cluster per test process (per xdist worker),
flushed before each test, or the one REDIS_CLUSTER_URL names; `redis_cluster` gives a test a
cluster of its own whose nodes it may kill.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from devstack.cluster import LocalCluster, flush_cluster
from devstack.processes import Managed, broker_command, free_port, redis_command, wait_for_port
from shared.bus import ensure_topics
from shared.redis_client import create_redis
from shared.settings import KafkaSettings, RedisSettings

REDIS_BACKENDS = ("single", "cluster")
# Servers named in the environment instead of started per test.
EXISTING_SERVERS = ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "REDIS_CLUSTER_URL")
_START_ATTEMPTS = 3


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "redis_backends",
        "Redis backends the tests taking `redis_server` run on: single, cluster or both",
        type="args",
        default=["single"],
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "redis_backends(*names): run this test only on these Redis backends (single, cluster)",
    )
    unknown = set(_configured_backends(config)) - set(REDIS_BACKENDS)
    if unknown:
        raise pytest.UsageError(f"redis_backends: unknown {sorted(unknown)}; know {REDIS_BACKENDS}")
    shared = [name for name in EXISTING_SERVERS if os.environ.get(name)]
    parallel = getattr(config.option, "numprocesses", None)
    if shared and parallel and not hasattr(config, "workerinput"):
        # Every test would use (and empty) the same servers at once.
        raise pytest.UsageError(
            f"{', '.join(shared)} name servers every test shares: run the tests in one process "
            "(make test TEST_WORKERS=0, or pytest -n 0)"
        )


def _configured_backends(config: pytest.Config) -> list[str]:
    return [name for name in config.getini("redis_backends") if name]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Runs a test that uses Redis once per configured backend (unless its marker narrows it)."""
    if "redis_backend" not in metafunc.fixturenames:
        return
    backends = _configured_backends(metafunc.config)
    marker = metafunc.definition.get_closest_marker("redis_backends")
    if marker is not None:
        backends = [name for name in backends if name in marker.args]
    if backends != ["single"]:
        # One backend alone keeps the test's plain id; several (or none) are spelled out.
        metafunc.parametrize("redis_backend", backends, indirect=True)


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
    """Where a test's Redis is: one server, or any node of a cluster (`backend`)."""

    url: str
    process: Managed | None
    backend: str = "single"

    def settings(self) -> RedisSettings:
        return RedisSettings(url=self.url)


def _start_listening(name: str, command: Callable[[int], list[str]]) -> tuple[int, Managed]:
    """Starts a server on a free port; draws another if someone took the port meanwhile."""
    for attempt in range(_START_ATTEMPTS):
        port = free_port()
        process = Managed(name, command(port)).start()
        assert process.process is not None
        try:
            wait_for_port("127.0.0.1", port, 30, process.process)
        except RuntimeError:  # it exited: the port was taken between the check and the start
            process.stop()
            if attempt == _START_ATTEMPTS - 1:
                raise
            continue
        return port, process
    raise AssertionError("unreachable")


def _start_broker() -> KafkaServer:
    port, process = _start_listening("broker", broker_command)
    return KafkaServer(f"127.0.0.1:{port}", process)


def _start_redis() -> RedisServer:
    port, process = _start_listening("redis", redis_command)
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
def redis_backend(request: pytest.FixtureRequest) -> str:
    """The Redis backend of this run of the test (`single` unless parametrised)."""
    return str(getattr(request, "param", "single"))


@pytest.fixture(scope="session")
def shared_cluster_url() -> Iterator[str]:
    """A cluster for every test of this process that needs one, started on first use."""
    existing = os.environ.get("REDIS_CLUSTER_URL")
    if existing:
        yield existing
        return
    cluster = LocalCluster.start()
    yield cluster.url
    cluster.close()


@pytest.fixture
def flushed_cluster_url(shared_cluster_url: str) -> str:
    """The shared cluster, emptied for this test; its nodes are not to be killed."""
    flush_cluster(shared_cluster_url)
    return shared_cluster_url


@pytest.fixture
def redis_cluster() -> Iterator[LocalCluster]:
    """A three-master cluster of the test's own: it may kill, stop and restart its nodes."""
    cluster = LocalCluster.start()
    yield cluster
    cluster.close()


@pytest.fixture
def redis_server(redis_backend: str, request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    if redis_backend == "cluster":
        url = request.getfixturevalue("flushed_cluster_url")
        yield RedisServer(url, None, backend="cluster")
        return
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
