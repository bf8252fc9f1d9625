"""What every handler shares: body parsing, the runtime, tenancy checks and views."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from services.ingest.domain.errors import Invalid, not_found, validation_errors
from services.ingest.keys import ENVIRONMENT, RUNTIME, Runtime
from shared.clock import to_iso
from shared.models import Agent, Call, Campaign

Model = TypeVar("Model", bound=BaseModel)


def json_response(body: Any, status: int = 200) -> web.Response:
    """`body` as JSON; a UTC datetime in it is written as `to_iso` writes it (RFC 3339, `Z`)."""
    return web.Response(
        body=orjson.dumps(body, option=orjson.OPT_UTC_Z),
        status=status,
        content_type="application/json",
    )


async def read_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 422 under `body`."""
    # Most clients send the bare type: compared as sent before aiohttp parses the header.
    sent = request.headers.get("Content-Type")
    if sent != "application/json" and request.content_type != "application/json":
        raise Invalid({"body": ["The request body must be JSON (Content-Type: application/json)."]})
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Invalid({"body": ["The request body is not valid JSON."]}) from exc
    if not isinstance(body, dict):
        raise Invalid({"body": ["The request body must be a JSON object."]})
    return body


def parse(model: type[Model], body: dict[str, Any]) -> Model:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise Invalid(validation_errors(exc)) from exc


def runtime_of(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


async def campaign_in_env(request: web.Request) -> Campaign:
    campaign = await runtime_of(request).catalog.get_campaign(request.match_info["campaign_id"])
    if campaign is None or campaign.environment_id != request[ENVIRONMENT]:
        raise not_found("campaign")
    return campaign


def agent_view(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.id,
        "name": agent.name,
        "prompt": agent.prompt,
        "voice": agent.voice,
        "language": agent.language,
        "created_at": to_iso(agent.created_at),
    }


def campaign_view(campaign: Campaign, agent: Agent | None) -> dict[str, Any]:
    view: dict[str, Any] = campaign.model_dump(mode="json", exclude={"environment_id"})
    view["created_at"] = to_iso(campaign.created_at)
    view["updated_at"] = to_iso(campaign.updated_at)
    ranges = sorted(campaign.call_time_ranges, key=lambda r: r.start)
    view["earliest_call_time"] = f"{ranges[0].start}:00"
    view["latest_call_time"] = f"{max(r.end for r in ranges)}:00"
    view["agent"] = {"id": agent.id, "name": agent.name} if agent else None
    return view


def call_view(call: Call) -> dict[str, Any]:
    return {
        "id": call.id,
        "campaign_id": call.campaign_id,
        "to": call.to,
        "status": call.status.value,
        "attempt": call.attempt,
        "scheduled_at": to_iso(call.scheduled_at),
        "scheduling_reason": call.scheduling_reason,
        "is_testing": call.is_testing,
        "created_at": to_iso(call.created_at),
        "updated_at": to_iso(call.updated_at),
    }
