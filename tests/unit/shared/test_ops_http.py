"""The operations routes: readiness names what fails, health follows the loops, metrics always
answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from shared.ops_http import NotReady, Ops, tasks_alive


@pytest.fixture
def ops() -> Ops:
    return Ops(CollectorRegistry(), check_timeout_s=0.05)


@pytest.fixture
async def client(ops: Ops) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()
    ops.add_routes(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _passes() -> None:
    return None


async def _refused() -> None:
    raise ConnectionRefusedError("connection refused")


async def _hangs() -> None:
    await asyncio.Event().wait()


async def test_ready_while_every_check_passes(
    ops: Ops, client: TestClient[web.Request, web.Application]
) -> None:
    ops.checks.update(redis=_passes, kafka=_passes)
    response = await client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {"status": "ready"}


async def test_not_ready_names_each_failing_dependency_and_recovers(
    ops: Ops, client: TestClient[web.Request, web.Application]
) -> None:
    async def not_member() -> None:
        raise NotReady("the consumer of t is not in its group")

    ops.checks.update(redis=_refused, kafka=_hangs, consumers=not_member)
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "not_ready"
    assert set(body["failing"]) == {"redis", "kafka", "consumers"}
    assert "refused" in body["failing"]["redis"]
    assert "no answer" in body["failing"]["kafka"]

    ops.checks.update(redis=_passes, kafka=_passes, consumers=_passes)
    assert (await client.get("/readyz")).status == 200


async def test_health_follows_the_loops_not_the_dependencies(
    ops: Ops, client: TestClient[web.Request, web.Application]
) -> None:
    ops.checks["redis"] = _refused
    loop = asyncio.create_task(_hangs(), name="due-pump")
    tasks = [loop]
    ops.liveness.append(tasks_alive(tasks))
    assert (await client.get("/healthz")).status == 200

    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json())["stopped"] == ["due-pump"]


async def test_metrics_are_refreshed_and_answer_when_a_reader_fails(
    ops: Ops, client: TestClient[web.Request, web.Application]
) -> None:
    counter = Counter("things_total", "Things.", registry=ops.registry)

    async def count() -> None:
        counter.inc()

    ops.refreshers += [_refused, count]
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    assert families["things"].samples[0].value == 1


async def test_a_server_of_its_own_on_any_free_port(ops: Ops) -> None:
    await ops.start("127.0.0.1", 0)
    try:
        assert ops.port
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{ops.port}/healthz") as response,
        ):
            assert response.status == 200
    finally:
        await ops.stop()
