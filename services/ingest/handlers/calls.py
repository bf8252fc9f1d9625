"""Make Campaign Call and the call endpoints."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from services.ingest.domain.errors import ApiError, Invalid, not_found, validation_errors
from services.ingest.domain.requests import (
    MakeCall,
)
from services.ingest.handlers.common import (
    call_view,
    campaign_in_env,
    json_response,
    read_object,
    runtime_of,
)
from services.scheduler.domain.policy import schedule_first_attempt
from services.scheduler.domain.windows import Closed
from shared.events import CallRequested
from shared.models import Call
from shared.phone import InvalidNumber, time_zones, to_e164
from shared.state_redis import to_iso


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
    runtime = runtime_of(request)
    campaign = await campaign_in_env(request)
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
    campaign = await campaign_in_env(request)
    call = await runtime_of(request).calls.get(campaign.id, request.match_info["call_id"])
    if call is None:
        raise not_found("call")
    return json_response({"success": True, "data": call_view(call)})


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})
