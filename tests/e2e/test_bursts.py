"""Bursts of concurrent requests on a fresh stack (every service its own process): a copy of
the API that has not yet spoken to Redis takes 200 requests at once, then bursts of 200 mixed
reads and call requests follow; none is answered with a 5xx.

The rate limit is set far above what the bursts reach, so every answer is the request's own."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devstack.processes import free_port
from tests.conftest import KafkaServer, RedisServer
from tests.stack import Stack
from tests.support import AUTH, Api

pytestmark = pytest.mark.e2e

BURST = 200
_numbers = itertools.count()


@pytest.fixture
def stack(kafka_server: KafkaServer, redis_server: RedisServer, tmp_path: Path) -> Iterator[Stack]:
    running = Stack(
        kafka_server.bootstrap,
        redis_server.url,
        tmp_path,
        extra_env={"API_RATE_LIMIT_PER_SECOND": "1000000"},
    ).start()
    yield running
    running.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    # One connection per request in flight: the burst reaches the server all at once.
    connector = aiohttp.TCPConnector(limit=BURST)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        yield client


Request = tuple[str, str, Any]


async def _fire(session: aiohttp.ClientSession, base: str, requests: list[Request]) -> Counter[int]:
    """Sends every request at once; the count of each status answered."""

    async def one(method: str, path: str, body: Any) -> tuple[int, bytes]:
        async with session.request(
            method, f"{base}/api/v1{path}", json=body, headers=AUTH
        ) as response:
            return response.status, await response.read()

    answers = await asyncio.gather(*(one(*request) for request in requests))
    failures = [(status, body[:200]) for status, body in answers if status >= 500]
    assert failures == [], failures[:5]
    return Counter(status for status, _ in answers)


def _mixed(campaign_id: str) -> list[Request]:
    """Half call requests (each to a number of its own), half reads of five kinds."""
    reads: list[Request] = [
        ("GET", f"/campaigns/{campaign_id}", None),
        ("GET", f"/campaigns/{campaign_id}/calls?per_page=5", None),
        ("GET", "/campaigns", None),
        ("GET", "/agents", None),
        ("GET", "/dnc?number=%2B12125550100", None),
    ]
    requests: list[Request] = []
    for index in range(BURST):
        if index % 2:
            requests.append(reads[index // 2 % len(reads)])
        else:
            number = f"+1212555{next(_numbers) % 10_000:04d}"
            requests.append(("POST", f"/campaigns/{campaign_id}/call", {"to": number}))
    return requests


async def test_cold_and_warm_bursts_get_no_server_error(
    stack: Stack, session: aiohttp.ClientSession
) -> None:
    # A cold start: the first thing the fresh copy does is take 200 requests at once.
    cold: list[Request] = [
        ("POST", "/agents", {"name": f"A{index}", "prompt": "Hi"})
        if index % 2
        else ("GET", "/agents", None)
        for index in range(BURST)
    ]
    statuses = await _fire(session, stack.base_url, cold)
    assert statuses == {200: BURST // 2, 201: BURST // 2}, statuses

    campaign = await Api(session, stack.base_url).active_campaign()

    # Another copy, fresh: its first requests are call requests and reads, all at once.
    port = free_port()
    stack.start_one("ingest", api_port=port)
    fresh = f"http://127.0.0.1:{port}"
    statuses = await _fire(session, fresh, _mixed(campaign["id"]))
    assert statuses[201] == BURST // 2, statuses

    for base in (stack.base_url, fresh, stack.base_url):
        statuses = await _fire(session, base, _mixed(campaign["id"]))
        assert statuses[201] == BURST // 2, statuses
        assert statuses[200] == BURST // 2, statuses
