"""Make Campaign Call, the batch form, and the call endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.ingest.domain.errors import ApiError, Invalid, not_found, validation_errors
from services.ingest.domain.pagination import PageRequest
from services.ingest.domain.query import MAX_NUMBER_LENGTH, choice_filter, text_filter
from services.ingest.domain.requests import MakeCall
from services.ingest.handlers.common import (
    call_view,
    campaign_in_env,
    json_response,
    parse,
    read_object,
    runtime_of,
)
from services.ingest.keys import ENVIRONMENT, Runtime
from shared import tracing
from shared.calls.accept import Accepted, NewCall, Refused
from shared.clock import to_iso
from shared.events import CallEventType, call_event
from shared.ids import new_id
from shared.models import Call, CallStatus, Campaign
from shared.phone import InvalidNumber, to_e164
from shared.rules.acceptance import Refusal
from shared.rules.prompts import MAX_PROMPT_BYTES

MAX_BATCH = 1000
_REQUIRED = "The to field is required."
_INVALID = "The to must be a valid phone number."
_ON_DNC = "The to is on the do-not-call list."
_PROMPT_TOO_LARGE = (
    f"The payload makes the agent's prompt longer than {MAX_PROMPT_BYTES} bytes (UTF-8)."
)
_CLOSED = ApiError(409, "The campaign is not accepting calls.", "CAMPAIGN_CLOSED")
_CHANGING = ApiError(503, "The campaign is changing; retry shortly.", "UNAVAILABLE")


def _validate_to(body: dict[str, Any], errors: dict[str, list[str]]) -> str | None:
    raw = body.get("to")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        errors["to"] = [_REQUIRED]
        return None
    if not isinstance(raw, str):
        errors["to"] = [_INVALID]
        return None
    try:
        return to_e164(raw)
    except InvalidNumber:
        errors["to"] = [_INVALID]
        return None


@dataclass(slots=True)
class Outcome:
    """One call request's answer: a status and the body the API documents for it."""

    status: int
    body: dict[str, Any]


def _new_call(body: Any) -> NewCall:
    """The request as the use case takes it, under a new id; raises Invalid."""
    if not isinstance(body, dict):
        raise Invalid({"body": ["The call must be a JSON object."]})
    errors: dict[str, list[str]] = {}
    e164 = _validate_to(body, errors)
    try:
        fields = MakeCall.model_validate(body)
    except ValidationError as exc:
        errors.update(validation_errors(exc))
    if errors or e164 is None:
        raise Invalid(errors)
    return NewCall(
        new_id(),
        e164,
        fields.payload,
        fields.context,
        fields.is_testing,
        fields.allow_duplicates,
    )


async def _accept(runtime: Runtime, campaign: Campaign, body: Any, *, current: bool) -> Outcome:
    """One call request through the "accept a call" use case, answered as the API documents.

    An accepted call is passed on to the scheduler. It is accepted already: it was stored
    marked as waiting for the scheduler, which queues it even if this message never arrives."""
    decided = runtime.metrics.call_decided
    try:
        request = _new_call(body)
    except Invalid as exc:
        decided("invalid")
        return Outcome(422, exc.body())
    if runtime.tracing.on:
        # Stored with the call: each service that takes it up later continues this trace.
        request.trace = tracing.current_stored()
    # The dialer would end the call `prompt_too_large`: refused now instead. The agent is read
    # once per process (agents never change), so this costs a dict lookup per request, and a
    # render (bounded) only when the prompt has placeholders and the payload values.
    prompt = await runtime.agent_prompts.get(campaign.agent_id)
    if prompt is not None and not prompt.fits(request.payload):
        decided("invalid")
        return Outcome(422, Invalid({"payload": [_PROMPT_TOO_LARGE]}).body())
    result = await runtime.accept_call(campaign, request, current=current)
    if isinstance(result, Accepted):
        runtime.publisher.hand_on(result.call)
        decided("accepted")
        return Outcome(201, _created_body(result.call, result.campaign))
    if isinstance(result, Refused):
        decided(_REFUSALS.get(result.reason, "closed"))
        return await _refusal(runtime, result, request)
    decided("unavailable")
    return Outcome(_CHANGING.status, _CHANGING.body())


# How each refusal is counted (`call_requests_total`); the rest close the campaign to calls.
_REFUSALS = {
    Refusal.CAMPAIGN_NOT_FOUND: "not_found",
    Refusal.DO_NOT_CALL: "do_not_call",
    Refusal.DUPLICATE: "duplicate",
}


async def _refusal(runtime: Runtime, refused: Refused, request: NewCall) -> Outcome:
    """A refusal as the API answers it; the rest are `409 CAMPAIGN_CLOSED`."""
    if refused.reason is Refusal.CAMPAIGN_NOT_FOUND or refused.campaign is None:
        error = not_found("campaign")
        return Outcome(error.status, error.body())
    if refused.reason is Refusal.DO_NOT_CALL:
        return Outcome(422, Invalid({"to": [_ON_DNC]}).body())
    if refused.reason is Refusal.DUPLICATE:
        campaign_id = refused.campaign.id
        summary: dict[str, Any] = {
            "id": refused.holder,
            "campaign_id": campaign_id,
            "to": request.to,
        }
        existing = await runtime.calls.get(campaign_id, refused.holder) if refused.holder else None
        if existing is not None:
            summary.update(status=existing.status.value, created_at=to_iso(existing.created_at))
        return Outcome(
            409,
            {
                "success": False,
                "message": "A call to this number already exists in this campaign",
                "existing_call": summary,
            },
        )
    return Outcome(_CLOSED.status, _CLOSED.body())


def _created_body(call: Call, campaign: Campaign) -> dict[str, Any]:
    # The instants are UTC (the clock's and the rules' own), so the JSON writer gives them in
    # the API's form without a `to_iso` each.
    return {
        "campaign_call": {
            "id": call.id,
            "campaign_id": call.campaign_id,
            "to": call.to,
            "status": call.status.value,
            "scheduled_at": call.scheduled_at,
            "scheduling_reason": call.scheduling_reason,
            "created_at": call.created_at,
        },
        "campaign": {"id": campaign.id, "name": campaign.name, "status": campaign.status.value},
    }


async def make_call(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    # The campaign as read a moment ago: the use case makes sure it has not changed since.
    campaign = await runtime.recent_campaigns.get(request.match_info["campaign_id"])
    if campaign is None or campaign.environment_id != request[ENVIRONMENT]:
        runtime.metrics.call_decided("not_found")
        raise not_found("campaign")
    try:
        body = await read_object(request)
    except Invalid:
        runtime.metrics.call_decided("invalid")
        raise
    outcome = await _accept(runtime, campaign, body, current=False)
    return json_response(outcome.body, status=outcome.status)


class CallBatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    calls: list[Any] = Field(min_length=1, max_length=MAX_BATCH)


async def make_calls(request: web.Request) -> web.Response:
    """Up to 1,000 calls; each item gets its own answer, in request order."""
    runtime = runtime_of(request)
    campaign = await campaign_in_env(request)
    batch = parse(CallBatch, await read_object(request))
    # Stored one after another so that, for a number repeated in the batch, the first wins.
    outcomes = [await _accept(runtime, campaign, item, current=True) for item in batch.calls]
    results = [
        {"index": index, "status": outcome.status, "body": outcome.body}
        for index, outcome in enumerate(outcomes)
    ]
    accepted = sum(1 for outcome in outcomes if outcome.status == 201)
    return json_response(
        {
            "success": True,
            "data": {"accepted": accepted, "refused": len(outcomes) - accepted, "results": results},
        },
        status=207,
    )


async def list_calls(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    campaign = await campaign_in_env(request)
    page = PageRequest.from_query(request.query)
    status_filter = choice_filter(request.query, "status", CallStatus)
    number_filter = text_filter(request.query, "to", MAX_NUMBER_LENGTH)
    if number_filter is not None:
        try:
            number_filter = to_e164(number_filter)
        except InvalidNumber as exc:
            raise Invalid({"to": [_INVALID]}) from exc
    # Newest first (by creation time). A page reads its own calls only: the campaign's
    # per-status or all-calls index gives the page's ids and the total; a number's calls come
    # from the number index (as many as the number has).
    if number_filter:
        rows = await runtime.calls.calls_to_number(campaign.id, number_filter)
        matching = [call_id for call_id, status, _ in rows if status_filter in (None, "", status)]
        chosen, envelope = page.slice(matching)
        chosen = list(chosen)
    else:
        chosen, total = await runtime.calls.page_of_calls(
            campaign.id, status_filter or None, page.start, page.per_page
        )
        envelope = page.envelope(total, len(chosen))
    calls = await runtime.calls.get_many((campaign.id, call_id) for call_id in chosen)
    data = [call_view(call) for call in calls if call is not None]
    return json_response({"success": True, "data": data, "pagination": envelope})


def _attempts(history: dict[str, str]) -> list[dict[str, Any]]:
    numbers = sorted({int(name.split(":", 1)[1]) for name in history})
    attempts = []
    for number in numbers:
        decided = history.get(f"outcome:{number}")
        outcome: dict[str, Any] = orjson.loads(decided) if decided else {}
        attempts.append(
            {
                "attempt": number,
                "started_at": history.get(f"started:{number}"),
                "ended_at": outcome.get("ended_at"),
                "outcome": outcome.get("outcome", outcome.get("status")),
                "error": outcome.get("error"),
                "duration_seconds": outcome.get("duration_seconds"),
            }
        )
    return attempts


async def get_call(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    campaign = await campaign_in_env(request)
    call_id = request.match_info["call_id"]
    call = await runtime.calls.get(campaign.id, call_id)
    if call is None:
        raise not_found("call")
    view = call_view(call)
    view["attempts"] = _attempts(await runtime.calls.history(campaign.id, call_id))
    return json_response({"success": True, "data": view})


async def cancel_call(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    campaign = await campaign_in_env(request)
    call = await runtime.calls.get(campaign.id, request.match_info["call_id"])
    if call is None:
        raise not_found("call")
    now = runtime.clock.now()
    cancelled, before = await runtime.calls.cancel_queued(call, now)
    if not cancelled:
        raise ApiError(409, f"A call that is {before} cannot be cancelled.", "CALL_NOT_CANCELLABLE")
    await runtime.publisher.publish_events(
        [
            call_event(
                call,
                CallEventType.CANCELLED,
                now,
                attempt=call.attempt,
                max_attempts=campaign.max_retries + 1,
                status=CallStatus.CANCELLED.value,
                reason="cancelled_by_request",
            )
        ]
    )
    stored = await runtime.calls.get(campaign.id, call.id)
    return json_response({"success": True, "data": call_view(stored or call)})


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})
