"""Messages on the bus: versioned pydantic models; consumers reject unknown versions."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.ids import Uuid5
from shared.models import Call
from shared.rules.input_bounds import json_too_large

SCHEMA_VERSION: Literal[1] = 1
_EVENT_NAMESPACE = uuid.UUID("6f1c2e0a-4b7d-4c36-9a57-2f7c0d1e8b90")


class CallRequested(BaseModel):
    """A request to call a number inside a campaign.

    Ingest publishes it after accepting an HTTP request (`call_id` set, `accepted` true); other
    services may publish the HTTP body plus `campaign_id` (and optionally `call_id`) directly.
    """

    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = SCHEMA_VERSION
    campaign_id: str = Field(min_length=1, max_length=64)
    call_id: str | None = Field(default=None, min_length=1, max_length=64)
    to: str = Field(min_length=1, max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    is_testing: bool = False
    allow_duplicates: bool = False
    accepted: bool = False
    requested_at: datetime | None = None

    @model_validator(mode="after")
    def _json_within_limit(self) -> CallRequested:
        # The API's bound, for requests published straight to the topic. One ingest accepted
        # was checked there (or stored before the bound existed): it is queued as it is.
        if not self.accepted:
            for name in ("payload", "context"):
                problem = json_too_large(getattr(self, name))
                if problem is not None:
                    raise ValueError(f"{name} {problem}")
        return self


def accepted_request(call: Call) -> bytes:
    """The `CallRequested` JSON that hands an accepted (already stored and valid) call on,
    encoded straight from the call: the same bytes as building the model and dumping it, at
    a fraction of the cost on the API's hot path."""
    return orjson.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "campaign_id": call.campaign_id,
            "call_id": call.id,
            "to": call.to,
            "payload": call.payload,
            "context": call.context,
            "is_testing": call.is_testing,
            "allow_duplicates": call.allow_duplicates,
            "accepted": True,
            "requested_at": call.created_at,
        },
        option=orjson.OPT_UTC_Z,
    )


class CallDue(BaseModel):
    """An attempt whose time has come: the dialer places it."""

    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = SCHEMA_VERSION
    call_id: str
    campaign_id: str
    environment_id: str
    attempt: int = Field(ge=1)
    to: str
    is_testing: bool = False
    due_at: datetime
    released_at: datetime


def call_due(call: Call, due_at: datetime, released_at: datetime) -> CallDue:
    """The release of the call's current attempt."""
    return CallDue(
        call_id=call.id,
        campaign_id=call.campaign_id,
        environment_id=call.environment_id,
        attempt=call.attempt,
        to=call.to,
        is_testing=call.is_testing,
        due_at=due_at,
        released_at=released_at,
    )


class DueAttempt(Protocol):
    """What a release message says of its call (a `Call` has it, as does the store's
    `DueCall`)."""

    @property
    def id(self) -> str: ...
    @property
    def campaign_id(self) -> str: ...
    @property
    def environment_id(self) -> str: ...
    @property
    def to(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def is_testing(self) -> bool: ...


def call_due_json(call: DueAttempt, due_at: datetime, released_at: datetime) -> bytes:
    """`call_due(...).model_dump_json()`, the same bytes, written without building the model:
    the due pump writes one per released call. The call comes from the store, so it is valid
    (a stored attempt is at least 1)."""
    return orjson.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "call_id": call.id,
            "campaign_id": call.campaign_id,
            "environment_id": call.environment_id,
            "attempt": call.attempt,
            "to": call.to,
            "is_testing": call.is_testing,
            "due_at": due_at,
            "released_at": released_at,
        },
        option=orjson.OPT_UTC_Z,
    )


class CallEventType(StrEnum):
    QUEUED = "campaign_call.queued"
    REJECTED = "campaign_call.rejected"
    STARTED = "campaign_call.started"
    ANSWERED = "campaign_call.answered"
    COMPLETED = "campaign_call.completed"
    NO_ANSWER = "campaign_call.no_answer"
    BUSY = "campaign_call.busy"
    VOICEMAIL = "campaign_call.voicemail"
    FAILED = "campaign_call.failed"
    RETRY_SCHEDULED = "campaign_call.retry_scheduled"
    CANCELLED = "campaign_call.cancelled"
    BLOCKED = "campaign_call.blocked"
    EXPIRED = "campaign_call.expired"
    # Internal: the dialer reports an attempt's outcome; the scheduler turns it into the
    # customer-facing outcome event once it knows whether the call will be retried.
    ATTEMPT_ENDED = "internal.attempt_ended"

    @property
    def is_public(self) -> bool:
        return self.value.startswith("campaign_call.")


def _unset(value: object) -> bool:
    return value is None


class CallEvent(BaseModel):
    """A fact in a call's life, keyed by call id so one call's events stay in order."""

    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: str
    type: CallEventType
    call_id: str
    campaign_id: str
    environment_id: str
    to: str
    attempt: int = Field(default=0, ge=0)
    max_attempts: int = Field(default=1, ge=1)
    status: str
    occurred_at: datetime
    outcome: str | None = None
    error: str | None = None
    duration_seconds: float | None = None
    will_retry: bool = False
    next_attempt_at: datetime | None = None
    reason: str | None = None
    # The request's context, on a `campaign_call.rejected` event only: that call is never
    # stored, so its webhook body has nowhere else to read it from. Left out of the message
    # when unset, so every other event's message stays as it was.
    context: dict[str, Any] | None = Field(default=None, exclude_if=_unset)


class CampaignEventType(StrEnum):
    STARTED = "campaign.started"
    PAUSED = "campaign.paused"
    RESUMED = "campaign.resumed"
    COMPLETED = "campaign.completed"
    CANCELLED = "campaign.cancelled"


class CampaignEvent(BaseModel):
    """A campaign moved from one status to another (API.md's `campaign.*` webhook events)."""

    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: str
    type: CampaignEventType
    campaign_id: str
    environment_id: str
    status: str
    previous_status: str
    occurred_at: datetime


def campaign_event(
    event_type: CampaignEventType,
    campaign_id: str,
    environment_id: str,
    previous_status: str,
    status: str,
    occurred_at: datetime,
) -> CampaignEvent:
    """The event of one status move; the same move always gets the same id."""
    name = f"campaign:{campaign_id}:{event_type.value}:{occurred_at.isoformat()}"
    return CampaignEvent(
        event_id=str(uuid.uuid5(_EVENT_NAMESPACE, name)),
        type=event_type,
        campaign_id=campaign_id,
        environment_id=environment_id,
        status=status,
        previous_status=previous_status,
        occurred_at=occurred_at,
    )


def event_id_for(call_id: str, attempt: int, event_type: CallEventType) -> str:
    """The same fact always gets the same id, so a replayed step is recognised downstream:
    `uuid.uuid5(namespace, "<call_id>:<attempt>:<type>")` as text."""
    return _EVENT_IDS.text(f"{call_id}:{attempt}:{event_type._value_}")


_EVENT_IDS = Uuid5(_EVENT_NAMESPACE)


def call_event(
    call: Call,
    event_type: CallEventType,
    occurred_at: datetime,
    *,
    attempt: int,
    max_attempts: int,
    status: str | None = None,
    outcome: str | None = None,
    error: str | None = None,
    duration_seconds: float | None = None,
    will_retry: bool = False,
    next_attempt_at: datetime | None = None,
    reason: str | None = None,
    context: dict[str, Any] | None = None,
) -> CallEvent:
    return CallEvent(
        event_id=event_id_for(call.id, attempt, event_type),
        type=event_type,
        call_id=call.id,
        campaign_id=call.campaign_id,
        environment_id=call.environment_id,
        to=call.to,
        attempt=attempt,
        max_attempts=max_attempts,
        status=status or call.status.value,
        occurred_at=occurred_at,
        outcome=outcome,
        error=error,
        duration_seconds=duration_seconds,
        will_retry=will_retry,
        next_attempt_at=next_attempt_at,
        reason=reason,
        context=context,
    )


def encode_call_event(
    call: Call,
    event_type: CallEventType,
    occurred_at: datetime,
    *,
    attempt: int,
    max_attempts: int,
    status: str | None = None,
    outcome: str | None = None,
    error: str | None = None,
    duration_seconds: float | None = None,
    next_attempt_at: datetime | None = None,
    reason: str | None = None,
) -> bytes:
    """The message of `call_event(...)` (without `will_retry` or `context`), encoded straight
    from its fields: the same bytes as building the model and dumping it, without the model's
    validation, for a hot path whose fields are the code's own (a stored call, an attempt
    number, a status, an outcome): the dialer's events and the scheduler's `queued`."""
    return orjson.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "event_id": event_id_for(call.id, attempt, event_type),
            "type": event_type.value,
            "call_id": call.id,
            "campaign_id": call.campaign_id,
            "environment_id": call.environment_id,
            "to": call.to,
            "attempt": attempt,
            "max_attempts": max_attempts,
            "status": status or call.status.value,
            "occurred_at": occurred_at,
            "outcome": outcome,
            "error": error,
            "duration_seconds": None if duration_seconds is None else float(duration_seconds),
            "will_retry": False,
            "next_attempt_at": next_attempt_at,
            "reason": reason,
        },
        option=orjson.OPT_UTC_Z,
    )
