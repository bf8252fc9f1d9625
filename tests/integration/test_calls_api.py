"""The call endpoints: list, read, cancel and the batch form of Make Campaign Call."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from redis.asyncio import Redis

from services.scheduler.finisher import CampaignFinisher
from shared.clock import SystemClock
from shared.events import CallEvent
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from tests.integration.conftest import OTHER_AUTH, IngestClient

pytestmark = pytest.mark.integration


async def test_a_batch_answers_each_item_in_order(ingest: IngestClient) -> None:
    campaign = await ingest.campaign()
    calls = [
        {"to": "+12125550101"},
        {"to": "not a number"},
        {"to": "+1 (212) 555-0101"},
        {"to": "+12125550102", "is_testing": True},
        [],
    ]
    status, body = await ingest.call(
        "POST", f"/campaigns/{campaign['id']}/calls/batch", {"calls": calls}
    )
    assert status == 207, body
    results = body["data"]["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["status"] for r in results] == [201, 422, 409, 201, 422]
    assert results[1]["body"]["errors"] == {"to": ["The to must be a valid phone number."]}
    assert results[2]["body"]["existing_call"]["id"] == results[0]["body"]["campaign_call"]["id"]
    assert body["data"]["accepted"] == 2
    _, listed = await ingest.call("GET", f"/campaigns/{campaign['id']}/calls")
    assert listed["pagination"]["total"] == 2


async def test_a_batch_is_limited_to_1000_calls(ingest: IngestClient) -> None:
    campaign = await ingest.campaign()
    status, body = await ingest.call(
        "POST",
        f"/campaigns/{campaign['id']}/calls/batch",
        {"calls": [{"to": "+12125550101"}] * 1001},
    )
    assert status == 422
    assert list(body["errors"]) == ["calls"]


async def test_calls_list_with_filters_and_read_back(ingest: IngestClient) -> None:
    campaign = await ingest.campaign()
    ids = []
    for number in ("+12125550111", "+12125550112", "+12125550113"):
        status, body = await ingest.call(
            "POST", f"/campaigns/{campaign['id']}/call", {"to": number}
        )
        assert status == 201
        ids.append(body["campaign_call"]["id"])
    _, body = await ingest.call("GET", f"/campaigns/{campaign['id']}/calls?per_page=2")
    assert [c["id"] for c in body["data"]] == [ids[2], ids[1]]
    _, body = await ingest.call(
        "GET", f"/campaigns/{campaign['id']}/calls?to=%2B1%20212%20555%200112"
    )
    assert [c["id"] for c in body["data"]] == [ids[1]]
    _, body = await ingest.call("GET", f"/campaigns/{campaign['id']}/calls?status=completed")
    assert body["data"] == []
    status, body = await ingest.call("GET", f"/campaigns/{campaign['id']}/calls?status=nope")
    assert status == 422

    status, body = await ingest.call("GET", f"/campaigns/{campaign['id']}/calls/{ids[0]}")
    assert status == 200
    data = body["data"]
    assert data["status"] == "queued"
    assert data["attempts"] == []
    assert data["scheduling_reason"] == "immediate"
    status, _ = await ingest.call(
        "GET", f"/campaigns/{campaign['id']}/calls/{ids[0]}", headers=OTHER_AUTH
    )
    assert status == 404
    status, body = await ingest.call("GET", f"/campaigns/{campaign['id']}/calls/missing")
    assert status == 404
    assert body["code"] == "CALL_NOT_FOUND"


async def test_cancelling_a_queued_call_frees_its_number(ingest: IngestClient) -> None:
    campaign = await ingest.campaign()
    path = f"/campaigns/{campaign['id']}"
    _, body = await ingest.call("POST", f"{path}/call", {"to": "+12125550120"})
    call_id = body["campaign_call"]["id"]
    status, body = await ingest.call("DELETE", f"{path}/calls/{call_id}")
    assert status == 200, body
    assert body["data"]["status"] == "cancelled"
    status, body = await ingest.call("DELETE", f"{path}/calls/{call_id}")
    assert status == 409
    assert body["code"] == "CALL_NOT_CANCELLABLE"
    status, _ = await ingest.call("POST", f"{path}/call", {"to": "+12125550120"})
    assert status == 201
    _, stored = await ingest.call("GET", path)
    assert stored["data"]["stats"]["total_calls"] == 2
    assert stored["data"]["stats"]["queued_calls"] == 1


async def test_cancelling_the_campaign_cancels_its_queued_calls(
    ingest: IngestClient, redis: Redis
) -> None:
    campaign = await ingest.campaign()
    path = f"/campaigns/{campaign['id']}"
    ids = []
    for number in ("+12125550131", "+12125550132"):
        _, body = await ingest.call("POST", f"{path}/call", {"to": number})
        ids.append(body["campaign_call"]["id"])
    status, _ = await ingest.call("PATCH", f"{path}/status", {"status": "cancelled"})
    assert status == 200
    published: list[CallEvent] = []

    async def publish(events: Iterable[CallEvent]) -> None:
        published.extend(events)

    finisher = CampaignFinisher(
        CatalogStore(redis), CallStore(redis, 16), SystemClock(), publish, chunk=1, interval_ms=10
    )
    await finisher.finish_pending()
    assert sorted(e.call_id for e in published) == sorted(ids)
    for call_id in ids:
        _, body = await ingest.call("GET", f"{path}/calls/{call_id}")
        assert body["data"]["status"] == "cancelled"
    _, stored = await ingest.call("GET", path)
    assert stored["data"]["stats"]["queued_calls"] == 0


async def test_calls_list_pages_each_status_newest_first(ingest: IngestClient) -> None:
    campaign = await ingest.campaign()
    path = f"/campaigns/{campaign['id']}"
    ids = []
    for number in ("+12125550161", "+12125550162", "+12125550163", "+12125550164"):
        _, body = await ingest.call("POST", f"{path}/call", {"to": number})
        ids.append(body["campaign_call"]["id"])
    for call_id in (ids[0], ids[2]):
        status, _ = await ingest.call("DELETE", f"{path}/calls/{call_id}")
        assert status == 200

    _, body = await ingest.call("GET", f"{path}/calls?status=cancelled&per_page=1&page=2")
    assert [c["id"] for c in body["data"]] == [ids[0]]
    assert body["pagination"] == {
        "current_page": 2,
        "last_page": 2,
        "per_page": 1,
        "total": 2,
        "from": 2,
        "to": 2,
    }
    _, body = await ingest.call("GET", f"{path}/calls?status=queued")
    assert [c["id"] for c in body["data"]] == [ids[3], ids[1]]
    _, body = await ingest.call("GET", f"{path}/calls?page=3&per_page=2")
    assert body["data"] == []
    assert body["pagination"]["total"] == 4
    assert (body["pagination"]["from"], body["pagination"]["to"]) == (None, None)
    _, body = await ingest.call("GET", f"{path}/calls?to=%2B12125550163&status=cancelled")
    assert [c["id"] for c in body["data"]] == [ids[2]]
    _, body = await ingest.call("GET", f"{path}/calls?to=%2B12125550163&status=queued")
    assert body["data"] == []
