"""The API refuses prompts it can see are over the limit: agents, and calls whose payload would
make their agent's prompt too long."""

from __future__ import annotations

from typing import Any

import pytest

from shared.rules.prompts import MAX_PROMPT_BYTES
from tests.integration.conftest import IngestClient
from tests.support import ALWAYS_OPEN

pytestmark = pytest.mark.integration

_INVALID = "The given data was invalid."
# Four uses of a topic: two 8,000-byte values (a payload within its 16 KiB) render past the
# prompt's limit, a short name and one such topic stay within it.
_REPEATING = "Hello {{name}}, " + "about {{topic}}. " * 4
_FILL = "x" * 8_000
_PAYLOAD_TOO_LARGE = {
    "payload": [
        f"The payload makes the agent's prompt longer than {MAX_PROMPT_BYTES} bytes (UTF-8)."
    ]
}


async def _campaign_with_prompt(ingest: IngestClient, prompt: str) -> dict[str, Any]:
    agent = await ingest.agent(prompt=prompt)
    status, body = await ingest.call("POST", "/campaigns", {**ALWAYS_OPEN, "agent_id": agent["id"]})
    assert status == 201, body
    campaign_id = body["data"]["id"]
    status, body = await ingest.call(
        "PATCH", f"/campaigns/{campaign_id}/status", {"status": "active"}
    )
    assert status == 200, body
    return dict(body["data"])


async def test_an_agent_whose_prompt_is_over_the_limit_is_refused(ingest: IngestClient) -> None:
    # Two bytes a character: within the characters allowed, over the bytes.
    prompt = "é" * (MAX_PROMPT_BYTES // 2 + 1)

    status, body = await ingest.call("POST", "/agents", {"name": "A", "prompt": prompt})

    assert status == 422, body
    assert body == {
        "success": False,
        "message": _INVALID,
        "errors": {
            "prompt": [f"The prompt must not be greater than {MAX_PROMPT_BYTES} bytes (UTF-8)."]
        },
    }
    _, listed = await ingest.call("GET", "/agents")
    assert listed["data"] == []


async def test_an_agent_whose_prompt_is_exactly_the_limit_is_created(
    ingest: IngestClient,
) -> None:
    prompt = "é" * (MAX_PROMPT_BYTES // 2)

    agent = await ingest.agent(prompt=prompt)

    assert agent["prompt"] == prompt


async def test_a_call_whose_payload_makes_the_prompt_too_large_is_refused(
    ingest: IngestClient,
) -> None:
    campaign = await _campaign_with_prompt(ingest, _REPEATING)
    fill = _FILL

    status, body = await ingest.call(
        "POST",
        f"/campaigns/{campaign['id']}/call",
        {"to": "+12125550101", "payload": {"name": fill, "topic": fill}},
    )

    assert status == 422, body
    assert body == {"success": False, "message": _INVALID, "errors": _PAYLOAD_TOO_LARGE}
    _, listed = await ingest.call("GET", f"/campaigns/{campaign['id']}/calls")
    assert listed["data"] == []
    # The number was not reserved: a call within the limit to it is accepted.
    status, body = await ingest.call(
        "POST",
        f"/campaigns/{campaign['id']}/call",
        {"to": "+12125550101", "payload": {"name": "Ann", "topic": fill}},
    )
    assert status == 201, body


async def test_large_values_for_names_the_prompt_does_not_use_are_accepted(
    ingest: IngestClient,
) -> None:
    campaign = await _campaign_with_prompt(ingest, "Hello {{name}}.")

    status, body = await ingest.call(
        "POST",
        f"/campaigns/{campaign['id']}/call",
        {"to": "+12125550102", "payload": {"name": "Ann", "notes": "x" * 16_000}},
    )

    assert status == 201, body


async def test_a_prompt_without_placeholders_takes_any_payload(ingest: IngestClient) -> None:
    campaign = await _campaign_with_prompt(ingest, "Hello.")

    status, body = await ingest.call(
        "POST",
        f"/campaigns/{campaign['id']}/call",
        {"to": "+12125550103", "payload": {"name": "x" * 16_000}},
    )

    assert status == 201, body


async def test_a_batch_refuses_only_the_items_over_the_limit(ingest: IngestClient) -> None:
    campaign = await _campaign_with_prompt(ingest, "Hello {{name}}, {{name}} and {{name}}.")
    calls = [
        {"to": "+12125550111", "payload": {"name": "Ann"}},
        {"to": "+12125550112", "payload": {"name": "x" * (MAX_PROMPT_BYTES // 3 + 1)}},
        {"to": "+12125550113"},
    ]

    status, body = await ingest.call(
        "POST", f"/campaigns/{campaign['id']}/calls/batch", {"calls": calls}
    )

    assert status == 207, body
    results = body["data"]["results"]
    assert [r["status"] for r in results] == [201, 422, 201]
    assert results[1]["body"] == {
        "success": False,
        "message": _INVALID,
        "errors": _PAYLOAD_TOO_LARGE,
    }
    assert body["data"]["accepted"] == 2
