"""Stored objects: agents, campaigns, webhooks and calls, as every service reads them."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SkipValidation,
    StrictInt,
    ValidationInfo,
    field_validator,
)

_HHMM = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d|24:00")


def _check_hhmm(value: str) -> str:
    if not _HHMM.fullmatch(value):
        raise ValueError("must be a time in HH:MM format (00:00 to 24:00)")
    return value


HHMM = Annotated[str, AfterValidator(_check_hhmm)]


def hhmm_seconds(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 3600 + int(minutes) * 60


class TimeRange(BaseModel):
    model_config = ConfigDict(extra="ignore")

    start: HHMM
    end: HHMM

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: str, info: ValidationInfo) -> str:
        start = info.data.get("start")
        if start is not None and hhmm_seconds(end) <= hhmm_seconds(start):
            raise ValueError("must be after start")
        return end


class CampaignType(StrEnum):
    SALES = "sales"
    FOLLOW_UP = "follow_up"
    REMINDER = "reminder"
    CUSTOM = "custom"


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class DncSource(StrEnum):
    ENVIRONMENT = "environment"
    CAMPAIGN = "campaign"


class CallStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    VOICEMAIL = "voicemail"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"
    EXPIRED = "expired"


Hours = Annotated[float, Field(ge=1, le=168)]


class CampaignRules(BaseModel):
    """Every field a customer sets on a campaign; shared by create, update and storage."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=255)
    description: str | None = None
    campaign_type: CampaignType
    agent_id: str = Field(min_length=1, max_length=64)
    start_date: date
    end_date: date | None = None
    days_of_week: list[StrictInt] = Field(default_factory=lambda: [1, 2, 3, 4, 5], min_length=1)
    call_time_ranges: list[TimeRange] = Field(
        default_factory=lambda: [TimeRange(start="09:00", end="17:00")], min_length=1
    )
    timezone: str = Field(default="UTC", max_length=50)
    initial_call_delay: int = Field(default=0, ge=0)
    max_retries: int = Field(default=3, ge=0, le=10)
    retry_cooldown_hours: Hours = 24
    success_cooldown_hours: Hours | None = None
    voicemail_cooldown_hours: Hours | None = None
    no_answer_cooldown_hours: Hours | None = None
    busy_cooldown_hours: Hours | None = None
    failed_cooldown_hours: Hours | None = None
    enable_post_completion_cooldown: bool = False
    post_completion_cooldown_hours: Hours = 168
    do_not_call_enabled: bool = True
    do_not_call_list_source: DncSource = DncSource.ENVIRONMENT
    auto_add_to_dnc_enabled: bool = False
    auto_dnc_trigger_statuses: list[str] = Field(default_factory=list)
    auto_dnc_trigger_errors: list[str] = Field(default_factory=list)
    max_concurrent_calls: int = Field(default=10, ge=1, le=10_000)
    calls_per_minute: int = Field(default=60, ge=1, le=100_000)
    recipient_local_hours: TimeRange | None = Field(
        default_factory=lambda: TimeRange(start="08:00", end="21:00")
    )
    # Checked and turned into E.164 where it enters (the API's campaign bodies), not here: a
    # stored campaign must stay readable should a phonenumbers update stop knowing the number.
    from_number: str | None = Field(
        default=None,
        description=(
            "The caller id the carrier presents: a dialable phone number, stored in E.164;"
            " null: the dialer's default (`TWILIO_FROM_NUMBER`)."
        ),
        examples=["+12125550100"],
    )

    @field_validator("days_of_week")
    @classmethod
    def _days(cls, days: list[int]) -> list[int]:
        if any(not 1 <= d <= 7 for d in days):
            raise ValueError("must hold days from 1 (Monday) to 7 (Sunday)")
        if len(set(days)) != len(days):
            raise ValueError("must not repeat a day")
        return days

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("must be a valid IANA time zone") from exc
        return zone

    @field_validator("call_time_ranges")
    @classmethod
    def _no_overlap(cls, ranges: list[TimeRange]) -> list[TimeRange]:
        spans = sorted((hhmm_seconds(r.start), hhmm_seconds(r.end)) for r in ranges)
        for (_, end), (start, _) in itertools.pairwise(spans):
            if start < end:
                raise ValueError("must not overlap")
        return ranges

    @field_validator("end_date")
    @classmethod
    def _end_after_start(cls, end: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("start_date")
        if end is not None and start is not None and end <= start:
            raise ValueError("must be a date after start_date")
        return end


class Campaign(CampaignRules):
    id: str
    environment_id: str
    status: CampaignStatus = CampaignStatus.DRAFT
    created_at: datetime
    updated_at: datetime


class Agent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    environment_id: str
    name: str
    prompt: str
    voice: str | None = None
    language: str | None = None
    created_at: datetime


class WebhookHeader(BaseModel):
    # A header value may be a credential: kept out of reprs and validation errors (and so out
    # of logs and tracebacks).
    model_config = ConfigDict(hide_input_in_errors=True)

    key: str = Field(min_length=1, max_length=255)
    value: str = Field(max_length=2000, repr=False)


class Webhook(BaseModel):
    # The secret, the authorization value and header values are credentials: never in a repr
    # or a validation error.
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    id: str
    campaign_id: str
    environment_id: str
    name: str
    webhook_url: HttpUrl
    events: list[str]
    webhook_secret: str = Field(repr=False)
    timeout: int = 30
    max_retries: int = 3
    enabled: bool = True
    http_method: Literal["POST", "PUT", "PATCH"] = "POST"
    authorization_scheme: Literal["none", "bearer", "basic", "api_key", "custom"] = "none"
    authorization_value: str | None = Field(default=None, repr=False)
    custom_headers: list[WebhookHeader] = Field(default_factory=list)
    include_call_events: bool = False
    created_at: datetime
    # Why the notifier disabled it (shared/rules/webhook_health.py); None when enabled or
    # disabled by its owner. Enabling it again clears it.
    disabled_reason: str | None = None


class Call(BaseModel):
    """A call as stored: immutable request fields plus its current state."""

    model_config = ConfigDict(extra="ignore")

    id: str
    campaign_id: str
    environment_id: str
    to: str
    status: CallStatus = CallStatus.QUEUED
    # Checked where they enter (the API's request, the topic's event); a call is only ever
    # built from those or from what the store kept of them, so not copied and checked again.
    payload: SkipValidation[dict[str, Any]] = Field(default_factory=dict)
    context: SkipValidation[dict[str, Any]] = Field(default_factory=dict)
    is_testing: bool = False
    allow_duplicates: bool = False
    attempt: int = 0
    scheduled_at: datetime
    scheduling_reason: str
    created_at: datetime
    updated_at: datetime
    # The trace context of the request that made the call (`shared.tracing`: its
    # `traceparent`, then a space and its `tracestate` if any); None when it was not traced.
    trace: str | None = None


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What a webhook's body tells of a stored call beyond what its event carries."""

    is_testing: bool
    scheduled_at: datetime
    created_at: datetime
    # The call's context as it was given, passed through untouched.
    context: dict[str, Any]
