"""The API's bounds on what a customer sends: each a 422 under its own field (or, for the
number of webhooks, a 409), and the values just inside them accepted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from shared.rules.input_bounds import (
    MAX_CALL_JSON_BYTES,
    MAX_CUSTOM_HEADERS,
    MAX_DESCRIPTION_CHARS,
    MAX_INITIAL_CALL_DELAY_S,
    MAX_WEBHOOKS_PER_CAMPAIGN,
)
from shared.store.catalog import CatalogStore
from tests.integration.conftest import IngestClient
from tests.support import ALWAYS_OPEN

pytestmark = pytest.mark.integration

INVALID = "The given data was invalid."


def _json_of_size(size: int) -> dict[str, str]:
    """An object whose compact JSON is exactly `size` bytes."""
    return {"k": "x" * (size - len('{"k":""}'))}


def _hook(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "CRM",
        "webhook_url": "https://hooks.example.com/x",
        "events": ["campaign.started"],
        **overrides,
    }


def _headers(count: int) -> list[dict[str, str]]:
    return [{"key": f"X-Custom-{index}", "value": "v"} for index in range(count)]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"initial_call_delay": MAX_INITIAL_CALL_DELAY_S + 1}, "initial_call_delay"),
        ({"initial_call_delay": 10**12}, "initial_call_delay"),
        ({"description": "d" * (MAX_DESCRIPTION_CHARS + 1)}, "description"),
        ({"auto_dnc_trigger_statuses": ["completed", "hung_up"]}, "auto_dnc_trigger_statuses"),
        ({"auto_dnc_trigger_statuses": ["Completed"]}, "auto_dnc_trigger_statuses"),
        ({"auto_dnc_trigger_errors": ["invalid_number", "nope"]}, "auto_dnc_trigger_errors"),
    ],
)
async def test_a_campaign_over_a_bound_is_refused_under_its_field(
    ingest: IngestClient, fields: dict[str, Any], field: str
) -> None:
    agent = await ingest.agent()
    body = {**ALWAYS_OPEN, "agent_id": agent["id"], **fields}
    status, answer = await ingest.call("POST", "/campaigns", body)
    assert status == 422, answer
    assert answer["message"] == INVALID
    assert list(answer["errors"]) == [field]
    # An edit is held to the same bounds.
    campaign = await ingest.campaign(activate=False)
    status, answer = await ingest.call("PUT", f"/campaigns/{campaign['id']}", fields)
    assert (status, list(answer["errors"])) == (422, [field])


async def test_a_campaign_at_the_bounds_is_taken(ingest: IngestClient) -> None:
    campaign = await ingest.campaign(
        initial_call_delay=MAX_INITIAL_CALL_DELAY_S,
        description="d" * MAX_DESCRIPTION_CHARS,
        auto_add_to_dnc_enabled=True,
        auto_dnc_trigger_statuses=["completed", "voicemail"],
        auto_dnc_trigger_errors=["invalid_number", "carrier_error"],
    )
    assert campaign["initial_call_delay"] == MAX_INITIAL_CALL_DELAY_S
    assert campaign["auto_dnc_trigger_errors"] == ["invalid_number", "carrier_error"]
    status, made = await ingest.call(
        "POST", f"/campaigns/{campaign['id']}/call", {"to": "+12125550123"}
    )
    assert status == 201, made
    assert made["campaign_call"]["scheduling_reason"] == "initial_delay"


@pytest.mark.parametrize("name", ["payload", "context"])
async def test_a_call_payload_or_context_over_16_kib_is_refused(
    ingest: IngestClient, name: str
) -> None:
    campaign = await ingest.campaign()
    path = f"/campaigns/{campaign['id']}/call"
    over = {"to": "+12125550123", name: _json_of_size(MAX_CALL_JSON_BYTES + 1)}
    status, answer = await ingest.call("POST", path, over)
    assert status == 422, answer
    assert answer["errors"] == {
        name: [f"The {name} must not be greater than {MAX_CALL_JSON_BYTES} bytes as JSON."]
    }
    # In a batch, the item gets the same answer and the others go ahead.
    batch = {"calls": [over, {"to": "+12125550124"}]}
    status, answer = await ingest.call("POST", f"/campaigns/{campaign['id']}/calls/batch", batch)
    assert status == 207, answer
    assert [item["status"] for item in answer["data"]["results"]] == [422, 201]
    at = {"to": "+12125550123", name: _json_of_size(MAX_CALL_JSON_BYTES)}
    status, answer = await ingest.call("POST", path, at)
    assert status == 201, answer


async def test_a_stored_campaign_with_a_huge_delay_still_takes_calls(
    ingest: IngestClient, redis: Redis
) -> None:
    """A delay stored before the bound counts as the bound: the call waits 30 days."""
    campaign = await ingest.campaign()
    catalog = CatalogStore(redis)
    stored = await catalog.get_campaign(campaign["id"])
    assert stored is not None
    await catalog.save_campaign(stored.model_copy(update={"initial_call_delay": 10**12}))
    before = datetime.now(UTC)
    status, made = await ingest.call(
        "POST", f"/campaigns/{campaign['id']}/call", {"to": "+12125550123"}
    )
    assert status == 201, made
    scheduled = datetime.fromisoformat(made["campaign_call"]["scheduled_at"])
    bound = timedelta(seconds=MAX_INITIAL_CALL_DELAY_S)
    assert before + bound <= scheduled <= datetime.now(UTC) + bound
    assert made["campaign_call"]["scheduling_reason"] == "initial_delay"


async def test_a_campaign_takes_at_most_its_webhooks(ingest: IngestClient) -> None:
    campaign = await ingest.campaign()
    path = f"/campaigns/{campaign['id']}/webhooks"
    for index in range(MAX_WEBHOOKS_PER_CAMPAIGN):
        status, answer = await ingest.call("POST", path, _hook(name=f"hook {index}"))
        assert status == 201, answer
    status, answer = await ingest.call("POST", path, _hook(name="one too many"))
    assert status == 409, answer
    assert answer["code"] == "WEBHOOK_LIMIT_REACHED"
    status, listed = await ingest.call("GET", f"{path}?per_page=100")
    assert listed["pagination"]["total"] == MAX_WEBHOOKS_PER_CAMPAIGN
    # Deleting one makes room again.
    status, _ = await ingest.call("DELETE", f"{path}/{listed['data'][0]['id']}")
    assert status == 200
    status, answer = await ingest.call("POST", path, _hook(name="in its place"))
    assert status == 201, answer


async def test_a_webhook_takes_at_most_its_custom_headers(ingest: IngestClient) -> None:
    campaign = await ingest.campaign()
    path = f"/campaigns/{campaign['id']}/webhooks"
    over = _hook(custom_headers=_headers(MAX_CUSTOM_HEADERS + 1))
    status, answer = await ingest.call("POST", path, over)
    assert status == 422, answer
    assert answer["errors"] == {
        "custom_headers": [
            f"The custom headers must not have more than {MAX_CUSTOM_HEADERS} items."
        ]
    }
    status, created = await ingest.call(
        "POST", path, _hook(custom_headers=_headers(MAX_CUSTOM_HEADERS))
    )
    assert status == 201, created
    hook = f"{path}/{created['data']['id']}"
    status, answer = await ingest.call("PUT", hook, {"custom_headers": over["custom_headers"]})
    assert (status, list(answer["errors"])) == (422, ["custom_headers"])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("/agents?page=&per_page=", "page"),
        ("/agents?per_page=", "per_page"),
        ("/campaigns?campaign_type=", "campaign_type"),
        ("/campaigns?status=", "status"),
        ("/campaigns?agent_id=", "agent_id"),
        ("/campaigns?search=", "search"),
        ("/campaigns?search=" + "s" * 256, "search"),
        ("/campaigns/{campaign}/calls?status=", "status"),
        ("/campaigns/{campaign}/calls?to=", "to"),
        ("/campaigns/{campaign}/calls?page=", "page"),
        ("/campaigns/{campaign}/webhooks?per_page=", "per_page"),
        ("/dnc?number=", "number"),
        ("/dnc?number=" + "1" * 65, "number"),
    ],
)
async def test_an_empty_or_overlong_query_value_is_refused(
    ingest: IngestClient, query: str, field: str
) -> None:
    campaign = await ingest.campaign()
    status, answer = await ingest.call("GET", query.replace("{campaign}", campaign["id"]))
    assert status == 422, answer
    assert answer["message"] == INVALID
    assert field in answer["errors"], answer


async def test_an_empty_campaign_id_on_a_dnc_removal_is_refused(ingest: IngestClient) -> None:
    status, answer = await ingest.call("DELETE", "/dnc/+12125550123?campaign_id=")
    assert (status, list(answer["errors"])) == (422, ["campaign_id"])
