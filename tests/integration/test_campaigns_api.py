"""Agents and campaigns over HTTP: listing, editing, deleting and every status move."""

from __future__ import annotations

import itertools

import orjson
import pytest
from redis.asyncio import Redis

from services.ingest.domain.campaign_status import ALLOWED_MOVES
from shared import keys
from shared.models import CampaignStatus
from tests.integration.conftest import OTHER_AUTH, IngestClient
from tests.support import ALWAYS_OPEN

pytestmark = pytest.mark.integration


async def test_a_campaign_reads_back_with_its_derived_fields(ingest: IngestClient) -> None:
    campaign = await ingest.campaign(
        activate=False,
        call_time_ranges=[{"start": "13:00", "end": "17:30"}, {"start": "09:00", "end": "12:00"}],
    )
    status, body = await ingest.call("GET", f"/campaigns/{campaign['id']}")
    assert status == 200
    data = body["data"]
    assert data["status"] == "draft"
    assert data["earliest_call_time"] == "09:00:00"
    assert data["latest_call_time"] == "17:30:00"
    assert data["agent"] == {"id": campaign["agent_id"], "name": "A"}
    assert data["stats"] == {
        "total_calls": 0,
        "queued_calls": 0,
        "in_progress_calls": 0,
        "completed_calls": 0,
        "failed_calls": 0,
        "no_answer_calls": 0,
        "busy_calls": 0,
        "voicemail_calls": 0,
        "success_rate": 0.0,
        "average_duration": 0.0,
    }
    assert data["max_retries"] == 0
    assert data["recipient_local_hours"] is None


async def test_the_campaign_list_filters_and_pages(ingest: IngestClient) -> None:
    first = await ingest.campaign(activate=False, name="Spring sale", campaign_type="sales")
    await ingest.campaign(activate=True, name="Reminders", campaign_type="reminder")
    await ingest.campaign(activate=False, name="Autumn sale", campaign_type="sales")

    status, body = await ingest.call("GET", "/campaigns?per_page=2")
    assert status == 200
    assert [c["name"] for c in body["data"]] == ["Autumn sale", "Reminders"]
    assert body["pagination"] == {
        "current_page": 1,
        "last_page": 2,
        "per_page": 2,
        "total": 3,
        "from": 1,
        "to": 2,
    }
    _, body = await ingest.call("GET", "/campaigns?campaign_type=sales&search=SPRING")
    assert [c["id"] for c in body["data"]] == [first["id"]]
    _, body = await ingest.call("GET", "/campaigns?status=active")
    assert [c["name"] for c in body["data"]] == ["Reminders"]
    _, body = await ingest.call("GET", "/campaigns", headers=OTHER_AUTH)
    assert body["data"] == []
    status, body = await ingest.call("GET", "/campaigns?per_page=101")
    assert status == 422
    assert list(body["errors"]) == ["per_page"]
    status, body = await ingest.call("GET", "/campaigns?status=running")
    assert status == 422
    assert list(body["errors"]) == ["status"]


async def test_a_partial_update_keeps_what_it_does_not_name(ingest: IngestClient) -> None:
    campaign = await ingest.campaign()
    status, body = await ingest.call(
        "PUT", f"/campaigns/{campaign['id']}", {"name": "Renamed", "max_retries": 5, "x": 1}
    )
    assert status == 200, body
    assert body["data"]["name"] == "Renamed"
    assert body["data"]["max_retries"] == 5
    assert body["data"]["timezone"] == campaign["timezone"]
    assert body["data"]["status"] == "active"

    status, body = await ingest.call(
        "PUT",
        f"/campaigns/{campaign['id']}",
        {"call_time_ranges": [{"start": "10:00", "end": "09:00"}], "max_retries": 11},
    )
    assert status == 422
    assert set(body["errors"]) == {"call_time_ranges.0.end", "max_retries"}
    _, stored = await ingest.call("GET", f"/campaigns/{campaign['id']}")
    assert stored["data"]["max_retries"] == 5


INVALID_FROM = {
    "success": False,
    "message": "The given data was invalid.",
    "errors": {"from_number": ["The from number must be a valid phone number."]},
}


async def _from_number(ingest: IngestClient, campaign_id: str) -> object:
    """The from_number as the campaign read and the campaign list both give it."""
    status, read = await ingest.call("GET", f"/campaigns/{campaign_id}")
    assert status == 200, read
    _, listing = await ingest.call("GET", "/campaigns?per_page=100")
    (listed,) = [c for c in listing["data"] if c["id"] == campaign_id]
    assert listed["from_number"] == read["data"]["from_number"]
    return read["data"]["from_number"]


async def test_from_number_is_stored_in_e164_edited_and_cleared(ingest: IngestClient) -> None:
    campaign = await ingest.campaign(activate=False, from_number="+1 (212) 555-0100")
    assert campaign["from_number"] == "+12125550100"
    assert await _from_number(ingest, campaign["id"]) == "+12125550100"
    path = f"/campaigns/{campaign['id']}"

    status, body = await ingest.call("PUT", path, {"name": "Renamed"})
    assert status == 200, body
    assert body["data"]["from_number"] == "+12125550100"

    status, body = await ingest.call("PUT", path, {"from_number": "+44 20 7946 0000"})
    assert status == 200, body
    assert body["data"]["from_number"] == "+442079460000"
    assert await _from_number(ingest, campaign["id"]) == "+442079460000"

    status, body = await ingest.call("PUT", path, {"from_number": "+1 212 555 01"})
    assert (status, body) == (422, INVALID_FROM)
    assert await _from_number(ingest, campaign["id"]) == "+442079460000"

    status, body = await ingest.call("PUT", path, {"from_number": None})
    assert status == 200, body
    assert body["data"]["from_number"] is None
    assert await _from_number(ingest, campaign["id"]) is None


@pytest.mark.parametrize("from_number", ["12", "", 12125550100, "+999123456789"])
async def test_a_campaign_with_an_invalid_from_number_is_refused(
    ingest: IngestClient, from_number: object
) -> None:
    agent = await ingest.agent()
    status, body = await ingest.call(
        "POST",
        "/campaigns",
        {**ALWAYS_OPEN, "agent_id": agent["id"], "from_number": from_number},
    )
    assert (status, body) == (422, INVALID_FROM)
    _, listing = await ingest.call("GET", "/campaigns")
    assert listing["data"] == []


async def test_a_campaign_stored_before_from_number_existed_reads_and_edits(
    ingest: IngestClient, redis: Redis
) -> None:
    campaign = await ingest.campaign(activate=False, from_number="+12125550100")
    # Rewrite the stored rules as a version without the field wrote them.
    key = keys.campaign(campaign["id"])
    stored = await redis.hget(key, "rules")
    assert stored is not None
    rules = orjson.loads(stored)
    del rules["from_number"]
    await redis.hset(key, "rules", orjson.dumps(rules).decode())

    assert await _from_number(ingest, campaign["id"]) is None
    status, body = await ingest.call(
        "PUT", f"/campaigns/{campaign['id']}", {"from_number": "+12125550199"}
    )
    assert status == 200, body
    assert await _from_number(ingest, campaign["id"]) == "+12125550199"


ALL_MOVES = list(itertools.product(CampaignStatus, CampaignStatus))


async def _campaign_in(ingest: IngestClient, status: CampaignStatus) -> str:
    campaign = await ingest.campaign(activate=False)
    path = [] if status is CampaignStatus.DRAFT else [CampaignStatus.ACTIVE]
    if status not in (CampaignStatus.DRAFT, CampaignStatus.ACTIVE):
        path.append(status)
    for step in path:
        code, body = await ingest.call(
            "PATCH", f"/campaigns/{campaign['id']}/status", {"status": step.value}
        )
        assert code == 200, body
    return str(campaign["id"])


@pytest.mark.parametrize(("source", "target"), ALL_MOVES, ids=[f"{a}-{b}" for a, b in ALL_MOVES])
async def test_every_status_move_is_allowed_or_refused_as_documented(
    ingest: IngestClient, source: CampaignStatus, target: CampaignStatus
) -> None:
    campaign_id = await _campaign_in(ingest, source)
    status, body = await ingest.call(
        "PATCH", f"/campaigns/{campaign_id}/status", {"status": target.value}
    )
    if target in ALLOWED_MOVES[source]:
        assert status == 200, body
        assert body["data"]["status"] == target.value
    else:
        assert status == 400
        assert body["code"] == "INVALID_TRANSITION"
        _, stored = await ingest.call("GET", f"/campaigns/{campaign_id}")
        assert stored["data"]["status"] == source.value


async def test_delete_refuses_an_active_campaign(ingest: IngestClient) -> None:
    campaign = await ingest.campaign()
    status, body = await ingest.call("DELETE", f"/campaigns/{campaign['id']}")
    assert status == 403
    assert body["code"] == "CAMPAIGN_ACTIVE"
    await ingest.call("PATCH", f"/campaigns/{campaign['id']}/status", {"status": "paused"})
    status, body = await ingest.call("DELETE", f"/campaigns/{campaign['id']}")
    assert status == 200, body
    status, _ = await ingest.call("GET", f"/campaigns/{campaign['id']}")
    assert status == 404


async def test_agents_list_and_stay_in_their_environment(ingest: IngestClient) -> None:
    agent = await ingest.agent(name="Ada")
    _, body = await ingest.call("GET", "/agents")
    assert [a["id"] for a in body["data"]] == [agent["id"]]
    assert body["pagination"]["total"] == 1
    status, _ = await ingest.call("GET", f"/agents/{agent['id']}", headers=OTHER_AUTH)
    assert status == 404
    status, body = await ingest.call(
        "POST",
        "/campaigns",
        {
            "name": "x",
            "campaign_type": "sales",
            "agent_id": agent["id"],
            "start_date": "2026-01-01",
        },
        headers=OTHER_AUTH,
    )
    assert status == 422
    assert body["errors"] == {"agent_id": ["The selected agent id is invalid."]}


async def test_the_status_filter_reads_the_per_status_list_and_mends_it(
    ingest: IngestClient, redis: Redis
) -> None:
    paused = await ingest.campaign(name="Paused")
    await ingest.call("PATCH", f"/campaigns/{paused['id']}/status", {"status": "paused"})
    active = await ingest.campaign(name="Active")
    # A move whose second step (the per-status list) never happened.
    await redis.zadd(keys.env_campaigns_by_status("env-a", "active"), {paused["id"]: 1})

    _, body = await ingest.call("GET", "/campaigns?status=active")

    assert [c["id"] for c in body["data"]] == [active["id"]]
    assert await redis.zscore(keys.env_campaigns_by_status("env-a", "active"), paused["id"]) is None
    assert await redis.zscore(keys.env_campaigns_by_status("env-a", "paused"), paused["id"])
    _, body = await ingest.call("GET", "/campaigns?status=paused")
    assert [c["id"] for c in body["data"]] == [paused["id"]]
    assert body["pagination"]["total"] == 1
