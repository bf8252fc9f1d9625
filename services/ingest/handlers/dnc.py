"""The do-not-call list endpoints: add numbers, look a number up, take it off."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Final
from urllib.parse import unquote

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.ingest.domain.errors import ApiError, Invalid, not_found
from services.ingest.domain.query import MAX_ID_LENGTH, MAX_NUMBER_LENGTH, text_filter
from services.ingest.handlers.common import json_response, parse, read_object, runtime_of
from services.ingest.keys import ENVIRONMENT
from shared.clock import to_iso
from shared.phone import InvalidNumber, to_e164
from shared.rules.dnc import DncEntry, EntrySource, scope_for

MAX_NUMBERS: Final = 10_000
INVALID_NUMBER: Final = "The to must be a valid phone number."
# Parsing a number takes tens of microseconds: hand the loop back this often in big batches.
_YIELD_EVERY: Final = 500


class AddNumbers(BaseModel):
    """The `POST /dnc` body; each number is checked on its own and reported per item."""

    model_config = ConfigDict(extra="ignore")

    numbers: list[Any] = Field(min_length=1, max_length=MAX_NUMBERS)
    reason: str | None = Field(default=None, max_length=255)
    expires_at: datetime | None = None
    campaign_id: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("expires_at", mode="before")
    @classmethod
    def _rfc3339_text(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            raise ValueError("must be a valid RFC 3339 timestamp")
        return value

    @field_validator("expires_at")
    @classmethod
    def _has_offset(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must be a valid RFC 3339 timestamp with a time zone offset")
        return value


def entry_view(entry: DncEntry) -> dict[str, Any]:
    return {
        "number": entry.number,
        "campaign_id": entry.campaign_id,
        "source": entry.source.value,
        "reason": entry.reason,
        "created_at": to_iso(entry.created_at),
        "expires_at": to_iso(entry.expires_at) if entry.expires_at else None,
    }


async def _normalise(numbers: list[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The distinct valid numbers in E.164 (first-seen order), and the invalid ones by index."""
    valid: dict[str, None] = {}
    invalid: list[dict[str, Any]] = []
    for index, raw in enumerate(numbers):
        if index and index % _YIELD_EVERY == 0:
            await asyncio.sleep(0)
        try:
            if not isinstance(raw, str):
                raise InvalidNumber("not a string")
            valid[to_e164(raw)] = None
        except InvalidNumber:
            invalid.append({"index": index, "number": raw, "message": INVALID_NUMBER})
    return list(valid), invalid


def _query_number(request: web.Request) -> str:
    """The `number` query parameter, read so that an unencoded `+` stays a plus sign.

    Form decoding turns `?number=+12125550123` into " 12125550123"; we try the value with
    literal pluses first, then the form-decoded one (for `%2B1+212+555+0123`).
    """
    candidates: list[str] = []
    for part in request.rel_url.raw_query_string.split("&"):
        name, _, value = part.partition("=")
        if unquote(name) == "number":
            candidates.append(unquote(value))
            break
    decoded = request.query.get("number")
    if decoded is not None:
        candidates.append(decoded)
    if not any(candidate.strip() for candidate in candidates):
        raise Invalid({"number": ["The number field is required."]})
    if decoded is not None and len(decoded) > MAX_NUMBER_LENGTH:
        raise Invalid(
            {"number": [f"The number must not be greater than {MAX_NUMBER_LENGTH} characters."]}
        )
    for candidate in candidates:
        try:
            return to_e164(candidate)
        except InvalidNumber:
            continue
    raise Invalid({"number": ["The number must be a valid phone number."]})


async def add_numbers(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    environment_id = request[ENVIRONMENT]
    body = parse(AddNumbers, await read_object(request))
    now = runtime.clock.now()
    if body.expires_at is not None and body.expires_at <= now:
        raise Invalid({"expires_at": ["The expires at must be a date in the future."]})
    if body.campaign_id is not None:
        campaign = await runtime.catalog.get_campaign(body.campaign_id)
        if campaign is None or campaign.environment_id != environment_id:
            raise not_found("campaign")
    numbers, invalid = await _normalise(body.numbers)
    scope = scope_for(body.campaign_id)
    entries = [
        DncEntry(
            number=number,
            scope=scope,
            source=EntrySource.API,
            reason=body.reason,
            created_at=now,
            expires_at=body.expires_at,
        )
        for number in numbers
    ]
    await runtime.dnc.add_many(environment_id, scope, entries)
    return json_response(
        {"success": True, "data": {"added": len(entries), "invalid": invalid}}, status=201
    )


async def get_entries(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    number = _query_number(request)
    entries = await runtime.dnc.get(request[ENVIRONMENT], number, now=runtime.clock.now())
    return json_response({"success": True, "data": [entry_view(entry) for entry in entries]})


async def remove_number(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    try:
        number = to_e164(request.match_info["number"])
    except InvalidNumber as exc:
        raise Invalid({"number": ["The number must be a valid phone number."]}) from exc
    campaign_id = text_filter(request.query, "campaign_id", MAX_ID_LENGTH)
    if campaign_id is not None and not campaign_id.strip():
        raise Invalid({"campaign_id": ["The campaign id must not be empty."]})
    # Without a campaign the number leaves every list of the environment. A campaign id of
    # another environment names a list under this environment's keys, so it finds nothing.
    scope = scope_for(campaign_id) if campaign_id is not None else None
    removed = await runtime.dnc.remove(
        request[ENVIRONMENT], number, scope=scope, now=runtime.clock.now()
    )
    if removed == 0:
        raise ApiError(404, "Do-not-call entry not found.", "DNC_ENTRY_NOT_FOUND")
    return json_response({"success": True, "data": {"removed": removed}})
