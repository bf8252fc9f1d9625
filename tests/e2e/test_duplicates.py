"""Concurrent requests for one number through several ingest processes: exactly one wins."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from devstack.processes import free_port
from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.stack import Stack
from tests.support import AUTH, Api

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(kafka_server: KafkaServer, redis_server: RedisServer, tmp_path: Path) -> Iterator[Stack]:
    running = Stack(kafka_server.bootstrap, redis_server.url, tmp_path)
    yield running
    running.stop()


async def test_fifty_concurrent_requests_for_one_number_give_one_call(stack: Stack) -> None:
    ports = [stack.api_port, free_port(), free_port()]
    for port in ports:
        stack.start_one("ingest", api_port=port)
    stack.start(["scheduler", "dialer"])
    async with aiohttp.ClientSession() as session:
        api = Api(session, stack.base_url)
        campaign = await api.active_campaign()
        url = f"/api/v1/campaigns/{campaign['id']}/call"

        async def attempt(i: int, number: str) -> tuple[int, dict[str, object]]:
            base = f"http://127.0.0.1:{ports[i % len(ports)]}"
            async with session.post(base + url, json={"to": number}, headers=AUTH) as response:
                return response.status, await response.json()

        for round_number, number in enumerate(("+12125550150", "+1 (212) 555-0161")):
            answers = await asyncio.gather(*(attempt(i, number) for i in range(50)))
            statuses = Counter(status for status, _ in answers)
            assert statuses == {201: 1, 409: 49}, (round_number, statuses)
            (winner,) = [body for status, body in answers if status == 201]
            call_id = winner["campaign_call"]["id"]  # type: ignore[index]
            assert all(
                body["existing_call"]["id"] == call_id  # type: ignore[index]
                for status, body in answers
                if status == 409
            )

        # Once the call has ended, the number is free again.
        async def ended() -> bool:
            _, body = await api.call("GET", f"/campaigns/{campaign['id']}/calls/{call_id}")
            return bool(body["data"]["status"] == "completed")

        await wait_until(ended, within=30)
        status, body = await api.call(
            "POST", f"/campaigns/{campaign['id']}/call", {"to": "+12125550161"}
        )
        assert status == 201, body
