"""HTTP handlers: parse, load state, apply the shared rules, store, publish."""

from __future__ import annotations

import base64
import ipaddress
import secrets
import uuid
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError
from yarl import URL

from services.ingest.domain.errors import ApiError, Invalid, not_found, validation_errors
from services.ingest.domain.requests import (
    ChangeCampaignStatus,
    CreateAgent,
    CreateCampaign,
    CreateWebhook,
    MakeCall,
)
from services.ingest.keys import ENVIRONMENT, RUNTIME, Runtime
from services.scheduler.domain.campaign_status import allowed_sources
from services.scheduler.domain.policy import schedule_first_attempt
from services.scheduler.domain.windows import Closed
from shared.events import CallRequested
from shared.models import Agent, Call, Campaign, CampaignStatus, Webhook
from shared.phone import InvalidNumber, time_zones, to_e164
from shared.state_redis import to_iso

Model = TypeVar("Model", bound=BaseModel)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def read_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 422 under `body`."""
    if request.content_type != "application/json":
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


def _runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


async def _campaign_in_env(request: web.Request) -> Campaign:
    campaign = await _runtime(request).catalog.get_campaign(request.match_info["campaign_id"])
    if campaign is None or campaign.environment_id != request[ENVIRONMENT]:
        raise not_found("campaign")
    return campaign


def _agent_view(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.id,
        "name": agent.name,
        "prompt": agent.prompt,
        "voice": agent.voice,
        "language": agent.language,
        "created_at": to_iso(agent.created_at),
    }


def _campaign_view(campaign: Campaign, agent: Agent | None) -> dict[str, Any]:
    view: dict[str, Any] = campaign.model_dump(mode="json", exclude={"environment_id"})
    view["created_at"] = to_iso(campaign.created_at)
    view["updated_at"] = to_iso(campaign.updated_at)
    ranges = sorted(campaign.call_time_ranges, key=lambda r: r.start)
    view["earliest_call_time"] = f"{ranges[0].start}:00"
    view["latest_call_time"] = f"{max(r.end for r in ranges)}:00"
    view["agent"] = {"id": agent.id, "name": agent.name} if agent else None
    return view


def _call_view(call: Call) -> dict[str, Any]:
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


async def create_agent(request: web.Request) -> web.Response:
    body = parse(CreateAgent, await read_object(request))
    agent = Agent(
        id=str(uuid.uuid4()),
        environment_id=request[ENVIRONMENT],
        created_at=_runtime(request).clock.now(),
        **body.model_dump(),
    )
    await _runtime(request).catalog.save_agent(agent)
    return json_response({"success": True, "data": _agent_view(agent)}, status=201)


async def get_agent(request: web.Request) -> web.Response:
    agent = await _runtime(request).catalog.get_agent(request.match_info["agent_id"])
    if agent is None or agent.environment_id != request[ENVIRONMENT]:
        raise not_found("agent")
    return json_response({"success": True, "data": _agent_view(agent)})


async def create_campaign(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    body = parse(CreateCampaign, await read_object(request))
    agent = await runtime.catalog.get_agent(body.agent_id)
    if agent is None or agent.environment_id != request[ENVIRONMENT]:
        raise Invalid({"agent_id": ["The selected agent id is invalid."]})
    now = runtime.clock.now()
    campaign = Campaign(
        **body.model_dump(),
        id=str(uuid.uuid4()),
        environment_id=request[ENVIRONMENT],
        status=CampaignStatus.DRAFT,
        created_at=now,
        updated_at=now,
    )
    await runtime.catalog.save_campaign(campaign)
    return json_response({"success": True, "data": _campaign_view(campaign, agent)}, status=201)


async def get_campaign(request: web.Request) -> web.Response:
    campaign = await _campaign_in_env(request)
    agent = await _runtime(request).catalog.get_agent(campaign.agent_id)
    return json_response({"success": True, "data": _campaign_view(campaign, agent)})


async def change_campaign_status(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    campaign = await _campaign_in_env(request)
    body = parse(ChangeCampaignStatus, await read_object(request))
    moved, previous = await runtime.catalog.transition_campaign(
        campaign.id, body.status, allowed_sources(body.status), runtime.clock.now()
    )
    if not moved:
        raise ApiError(
            400,
            f"A campaign cannot move from {previous} to {body.status.value}.",
            "INVALID_TRANSITION",
        )
    updated = await runtime.catalog.get_campaign(campaign.id)
    if updated is None:
        raise not_found("campaign")
    agent = await runtime.catalog.get_agent(updated.agent_id)
    return json_response({"success": True, "data": _campaign_view(updated, agent)})


def _refuse_private_target(url: str, allowed: bool) -> None:
    host = (URL(url).host or "").strip("[]")
    if allowed:
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise Invalid({"webhook_url": ["The webhook url may not point at a private address."]})
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if address.is_private or address.is_loopback or address.is_link_local:
        raise Invalid({"webhook_url": ["The webhook url may not point at a private address."]})


async def create_webhook(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    campaign = await _campaign_in_env(request)
    body = parse(CreateWebhook, await read_object(request))
    _refuse_private_target(str(body.webhook_url), runtime.allow_private_webhook_targets)
    generated = body.webhook_secret is None
    secret = body.webhook_secret or "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    webhook = Webhook(
        **body.model_dump(exclude={"webhook_secret"}),
        id=str(uuid.uuid4()),
        campaign_id=campaign.id,
        environment_id=campaign.environment_id,
        webhook_secret=secret,
        created_at=runtime.clock.now(),
    )
    await runtime.catalog.save_webhook(webhook)
    view = webhook.model_dump(mode="json", exclude={"environment_id", "webhook_secret"})
    view["created_at"] = to_iso(webhook.created_at)
    if generated:
        # Shown once: the customer needs it to verify signatures.
        view["webhook_secret"] = secret
    return json_response({"success": True, "data": view}, status=201)


def _validate_to(body: dict[str, Any], errors: dict[str, list[str]]) -> str | None:
    raw = body.get("to")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        errors["to"] = ["The to field is required."]
        return None
    if not isinstance(raw, str):
        errors["to"] = ["The to must be a valid phone number."]
        return None
    try:
        return to_e164(raw)
    except InvalidNumber:
        errors["to"] = ["The to must be a valid phone number."]
        return None


async def make_call(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    campaign = await _campaign_in_env(request)
    body = await read_object(request)
    errors: dict[str, list[str]] = {}
    e164 = _validate_to(body, errors)
    try:
        fields = MakeCall.model_validate(body)
    except ValidationError as exc:
        errors.update(validation_errors(exc))
    if errors or e164 is None:
        raise Invalid(errors)
    now = runtime.clock.now()
    decision = schedule_first_attempt(campaign, campaign.status, time_zones(e164), now)
    if isinstance(decision, Closed):
        raise ApiError(409, "The campaign is not accepting calls.", "CAMPAIGN_CLOSED")
    call = Call(
        id=str(uuid.uuid4()),
        campaign_id=campaign.id,
        environment_id=campaign.environment_id,
        to=e164,
        payload=fields.payload,
        context=fields.context,
        is_testing=fields.is_testing,
        allow_duplicates=fields.allow_duplicates,
        attempt=1,
        scheduled_at=decision.at,
        scheduling_reason=decision.reason.value,
        created_at=now,
        updated_at=now,
    )
    accepted = await runtime.calls.accept(call, runtime.reservation_ttl_ms)
    if accepted.outcome == "duplicate" and accepted.other:
        existing = await runtime.calls.get(campaign.id, accepted.other)
        summary = (
            {
                "id": existing.id,
                "campaign_id": existing.campaign_id,
                "to": existing.to,
                "status": existing.status.value,
                "created_at": to_iso(existing.created_at),
            }
            if existing
            else {"id": accepted.other, "campaign_id": campaign.id, "to": e164}
        )
        return json_response(
            {
                "success": False,
                "message": "A call to this number already exists in this campaign",
                "existing_call": summary,
            },
            status=409,
        )
    message = CallRequested(
        campaign_id=campaign.id,
        call_id=call.id,
        to=e164,
        payload=call.payload,
        context=call.context,
        is_testing=call.is_testing,
        allow_duplicates=call.allow_duplicates,
        accepted=True,
        requested_at=now,
    )
    try:
        await runtime.publisher.publish(message)
    except Exception as exc:
        # Not handed on means not accepted: undo the record so the client can simply retry.
        await runtime.calls.forget(call)
        raise ApiError(503, "The call could not be queued; retry shortly.", "UNAVAILABLE") from exc
    return json_response(
        {
            "campaign_call": {
                "id": call.id,
                "campaign_id": call.campaign_id,
                "to": call.to,
                "status": call.status.value,
                "scheduled_at": to_iso(call.scheduled_at),
                "scheduling_reason": call.scheduling_reason,
                "created_at": to_iso(call.created_at),
            },
            "campaign": {
                "id": campaign.id,
                "name": campaign.name,
                "status": campaign.status.value,
            },
        },
        status=201,
    )


async def get_call(request: web.Request) -> web.Response:
    campaign = await _campaign_in_env(request)
    call = await _runtime(request).calls.get(campaign.id, request.match_info["call_id"])
    if call is None:
        raise not_found("call")
    return json_response({"success": True, "data": _call_view(call)})


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})
