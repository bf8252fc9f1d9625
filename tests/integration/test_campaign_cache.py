"""The call path reuses a campaign it read a moment ago, yet never decides on an old version.

Two ingest apps on one Redis stand for two ingest processes; each keeps what it read for a
minute, so only the version check at the moment of storing can make the first see the second's
changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.ingest.app import create_app
from tests.conftest import KafkaServer, RedisServer
from tests.integration.conftest import IngestClient, ingest_settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def pair(
    kafka_server: KafkaServer, redis_server: RedisServer
) -> AsyncIterator[tuple[IngestClient, IngestClient]]:
    settings = ingest_settings(kafka_server, redis_server, campaign_cache_seconds=60)
    async with (
        TestClient(TestServer(create_app(settings))) as first,
        TestClient(TestServer(create_app(settings))) as second,
    ):
        yield IngestClient(first), IngestClient(second)


async def test_a_change_made_elsewhere_applies_to_the_next_call(
    pair: tuple[IngestClient, IngestClient],
) -> None:
    caller, other = pair
    campaign = await caller.campaign()
    path = f"/campaigns/{campaign['id']}"
    status, body = await caller.call("POST", f"{path}/call", {"to": "+12125550101"})
    assert (status, body["campaign_call"]["scheduling_reason"]) == (201, "immediate")

    status, _ = await other.call("PATCH", f"{path}/status", {"status": "paused"})
    assert status == 200
    status, body = await caller.call("POST", f"{path}/call", {"to": "+12125550102"})
    assert (status, body["campaign_call"]["scheduling_reason"]) == (201, "campaign_paused")
    assert body["campaign"]["status"] == "paused"

    status, _ = await other.call("PATCH", f"{path}/status", {"status": "cancelled"})
    assert status == 200
    status, body = await caller.call("POST", f"{path}/call", {"to": "+12125550103"})
    assert (status, body["code"]) == (409, "CAMPAIGN_CLOSED")

    status, _ = await other.call("DELETE", path)
    assert status == 200
    status, body = await caller.call("POST", f"{path}/call", {"to": "+12125550104"})
    assert (status, body["code"]) == (404, "CAMPAIGN_NOT_FOUND")


async def test_a_refused_call_is_stored_nowhere(pair: tuple[IngestClient, IngestClient]) -> None:
    caller, other = pair
    campaign = await caller.campaign()
    path = f"/campaigns/{campaign['id']}"
    assert (await caller.call("POST", f"{path}/call", {"to": "+12125550111"}))[0] == 201
    assert (await other.call("PATCH", f"{path}/status", {"status": "completed"}))[0] == 200
    assert (await caller.call("POST", f"{path}/call", {"to": "+12125550112"}))[0] == 409
    status, listed = await other.call("GET", f"{path}/calls")
    assert status == 200
    assert [call["to"] for call in listed["data"]] == ["+12125550111"]


async def test_a_do_not_call_refusal_is_checked_against_the_current_rules(
    pair: tuple[IngestClient, IngestClient],
) -> None:
    caller, other = pair
    campaign = await caller.campaign()
    path = f"/campaigns/{campaign['id']}"
    assert (await other.call("POST", "/dnc", {"numbers": ["+12125550121"]}))[0] == 201
    status, body = await caller.call("POST", f"{path}/call", {"to": "+12125550121"})
    assert (status, body["errors"]["to"]) == (422, ["The to is on the do-not-call list."])

    status, _ = await other.call("PUT", path, {"do_not_call_enabled": False})
    assert status == 200
    status, body = await caller.call("POST", f"{path}/call", {"to": "+12125550121"})
    assert status == 201, body

    status, _ = await other.call("PUT", path, {"do_not_call_enabled": True})
    assert status == 200
    status, body = await caller.call("POST", f"{path}/call", {"to": "+12125550121"})
    assert status == 422, body
