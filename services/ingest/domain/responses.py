"""Bodies the public API answers with, exactly as the handlers build them.

They are never used to build an answer: they describe it, for the OpenAPI document
(`services/ingest/openapi.py`). Every object forbids unknown keys, so a handler that starts
answering with a field these models lack breaks the document's conformance test. Schemas are
generated in serialization mode, where `json_schema_serialization_defaults_required` makes a
field with a default required as well: an answer always carries it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from services.ingest.domain.credentials import HINT_PATTERN
from services.ingest.domain.errors import INVALID_DATA
from shared.models import CallStatus, CampaignRules, CampaignStatus
from shared.rules.delivery_attempts import Trigger
from shared.rules.delivery_retries import DeliveryState
from shared.rules.dnc import EntrySource
from shared.rules.windows import SchedulingReason

View = TypeVar("View")
HHMMSS = r"^(?:[01]\d|2[0-3]):[0-5]\d:00$|^24:00:00$"


def without_default(schema: dict[str, Any]) -> None:
    """For a field whose `None` default only means "left out": the schema shows no default."""
    schema.pop("default", None)


def sometimes(description: str) -> Any:
    """A key that only some answers carry: left out of `required`, never `null`."""
    return Field(default=None, description=description, json_schema_extra=without_default)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


# --- Envelopes ------------------------------------------------------------------------------


class Data(Body, Generic[View]):
    """`{"success": true, "data": ...}`"""

    success: Literal[True]
    data: View


class Pagination(Body):
    current_page: int = Field(ge=1)
    last_page: int = Field(ge=1)
    per_page: int = Field(ge=1)
    total: int = Field(ge=0)
    from_: int | None = Field(alias="from", ge=1, description="Position of the first item.")
    to: int | None = Field(ge=1, description="Position of the last item.")


class Page(Body, Generic[View]):
    """A list: `{"success": true, "data": [...], "pagination": {...}}`"""

    success: Literal[True]
    data: list[View]
    pagination: Pagination


# --- Errors ---------------------------------------------------------------------------------


class ErrorBody(Body):
    """Every refusal other than a validation error or a missing token."""

    success: Literal[False]
    message: str
    code: str = Field(examples=["CAMPAIGN_NOT_FOUND", "CAMPAIGN_CLOSED", "INVALID_TRANSITION"])


class ValidationErrorBody(Body):
    """422: every message for every field; nested fields have dotted names, the body `body`."""

    success: Literal[False]
    message: str = Field(examples=[INVALID_DATA])
    errors: dict[str, list[str]] = Field(examples=[{"to": ["The to field is required."]}])


class UnauthenticatedBody(Body):
    success: Literal[False]
    message: str = Field(examples=["Unauthenticated."])


# --- Agents ---------------------------------------------------------------------------------


class AgentView(Body):
    id: str
    name: str
    prompt: str
    voice: str | None
    language: str | None
    created_at: datetime


class AgentSummary(Body):
    id: str
    name: str


# --- Campaigns ------------------------------------------------------------------------------


class CampaignStats(Body):
    """Counts of the campaign's calls; test calls are left out."""

    total_calls: int = Field(ge=0)
    queued_calls: int = Field(ge=0)
    in_progress_calls: int = Field(ge=0)
    completed_calls: int = Field(ge=0)
    failed_calls: int = Field(ge=0)
    no_answer_calls: int = Field(ge=0)
    busy_calls: int = Field(ge=0)
    voicemail_calls: int = Field(ge=0)
    success_rate: float = Field(ge=0, le=1, description="Completed over finished calls.")
    average_duration: float = Field(ge=0, description="Seconds, over completed calls.")


class CampaignView(CampaignRules):
    """A campaign: every rule it was given, with its state, agent and stats."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    id: str
    status: CampaignStatus
    created_at: datetime
    updated_at: datetime
    earliest_call_time: str = Field(pattern=HHMMSS, description="Start of the first range.")
    latest_call_time: str = Field(pattern=HHMMSS, description="End of the last range.")
    agent: AgentSummary | None
    stats: CampaignStats


class Deleted(Body):
    id: str
    deleted: Literal[True]


# --- Calls ----------------------------------------------------------------------------------


class CampaignSummary(Body):
    id: str
    name: str
    status: CampaignStatus


class CreatedCall(Body):
    id: str
    campaign_id: str
    to: str = Field(description="E.164.")
    status: Literal["queued"]
    scheduled_at: datetime
    scheduling_reason: SchedulingReason
    created_at: datetime


class CallCreated(Body):
    """Make Campaign Call's 201: its own shape, without the `success` envelope."""

    campaign_call: CreatedCall
    campaign: CampaignSummary


class ExistingCall(Body):
    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    id: str
    campaign_id: str
    to: str
    status: CallStatus | SkipJsonSchema[None] = sometimes("Left out if the call just ended.")
    created_at: datetime | SkipJsonSchema[None] = sometimes("Left out with `status`.")


class DuplicateCall(Body):
    """409 when the number already has a live call in this campaign."""

    success: Literal[False]
    message: str
    existing_call: ExistingCall


class CallView(Body):
    id: str
    campaign_id: str
    to: str = Field(description="E.164.")
    status: CallStatus
    attempt: int = Field(ge=0)
    scheduled_at: datetime
    scheduling_reason: SchedulingReason
    is_testing: bool
    created_at: datetime
    updated_at: datetime


class Attempt(Body):
    attempt: int = Field(ge=1)
    started_at: datetime | None
    ended_at: datetime | None
    outcome: str | None
    error: str | None
    duration_seconds: float | None


class CallDetailView(CallView):
    attempts: list[Attempt]


class BatchItem(Body):
    """One call of a batch: the status and body it would have had on its own."""

    index: int = Field(ge=0)
    status: Literal[201, 409, 422, 503]
    body: CallCreated | DuplicateCall | ValidationErrorBody | ErrorBody


class BatchResults(Body):
    accepted: int = Field(ge=0)
    refused: int = Field(ge=0)
    results: list[BatchItem]


class BatchBody(Body):
    """207: one result per call, in request order."""

    success: Literal[True]
    data: BatchResults


# --- Do-not-call list -----------------------------------------------------------------------


class InvalidNumberItem(Body):
    index: int = Field(ge=0)
    number: Any = Field(description="The item as sent.")
    message: str


class NumbersAdded(Body):
    added: int = Field(ge=0, description="Distinct valid numbers written.")
    invalid: list[InvalidNumberItem]


class DncEntryView(Body):
    number: str = Field(description="E.164.")
    campaign_id: str | None = Field(description="`null` on the environment's list.")
    source: EntrySource
    reason: str | None
    created_at: datetime
    expires_at: datetime | None


class NumbersRemoved(Body):
    removed: int = Field(ge=1)


# --- Webhooks -------------------------------------------------------------------------------


_HINT = (
    "Write-only: a masked hint, `****` and the value's last four characters from 16 "
    "characters on, `****` alone for a shorter value, empty for an empty one. Sending the "
    "hint back unchanged on an update keeps the stored value."
)


class WebhookHeaderView(Body):
    key: str
    value: str = Field(description=_HINT, pattern=HINT_PATTERN)


class WebhookView(Body):
    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    id: str
    campaign_id: str
    name: str
    webhook_url: str = Field(json_schema_extra={"format": "uri"})
    events: list[str]
    timeout: int
    max_retries: int
    enabled: bool
    http_method: Literal["POST", "PUT", "PATCH"]
    authorization_scheme: Literal["none", "bearer", "basic", "api_key", "custom"]
    authorization_value: str | None = Field(
        description=f"`null` when none is set. {_HINT}", pattern=HINT_PATTERN
    )
    custom_headers: list[WebhookHeaderView]
    include_call_events: bool
    created_at: datetime
    disabled_reason: str | None = Field(
        description="Why the webhook was disabled for its endpoint (a 410 Gone, or every "
        "attempt failing for 5 days); `null` when enabled or disabled through the API. "
        "Read-only: enabling the webhook clears it.",
        json_schema_extra={"readOnly": True},
    )
    webhook_secret: str = Field(
        description=(
            f"{_HINT} The one exception: the answer to a create that sent no secret shows the "
            "generated `whsec_` secret in full, once."
        )
    )


class DeliveryAttemptView(Body):
    """One send of one event to one webhook, as the deliveries log keeps it."""

    delivery_id: str
    event_id: str = Field(description="Sent as `webhook-id`; the same on every attempt.")
    event_type: str
    attempt: int = Field(ge=1)
    trigger: Trigger
    success: bool = Field(description="Whether the target answered 2xx.")
    status_code: int | None = Field(description="`null` when no answer came.")
    latency_ms: float = Field(ge=0)
    error: str | None
    attempted_at: datetime
    state: DeliveryState = Field(description="The delivery's state after this attempt.")
    next_attempt_at: datetime | None
    response_body: str | None = Field(
        description="The answer's body as text (UTF-8, undecodable bytes replaced), its first "
        "64 KiB; `null` when no answer came."
    )
    response_truncated: bool = Field(
        description="Whether the answer's body was longer than the 64 KiB kept."
    )


class RedeliveryQueued(Body):
    delivery_id: str
    state: Literal["queued"] = Field(
        description="The attempt is queued; the deliveries log shows it once made."
    )


# --- The envelopes each endpoint answers with, named for the document -----------------------


class AgentResponse(Data[AgentView]):
    pass


class AgentPage(Page[AgentView]):
    pass


class CampaignResponse(Data[CampaignView]):
    pass


class CampaignPage(Page[CampaignView]):
    pass


class DeletedResponse(Data[Deleted]):
    pass


class CallResponse(Data[CallView]):
    pass


class CallDetailResponse(Data[CallDetailView]):
    pass


class CallPage(Page[CallView]):
    pass


class WebhookResponse(Data[WebhookView]):
    pass


class WebhookPage(Page[WebhookView]):
    pass


class DeliveryAttemptResponse(Data[DeliveryAttemptView]):
    pass


class DeliveryAttemptPage(Page[DeliveryAttemptView]):
    pass


class RedeliveryQueuedResponse(Data[RedeliveryQueued]):
    pass


class NumbersAddedResponse(Data[NumbersAdded]):
    pass


class DncEntryList(Data[list[DncEntryView]]):
    pass


class NumbersRemovedResponse(Data[NumbersRemoved]):
    pass
