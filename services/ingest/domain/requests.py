"""Request bodies of the public API. Unknown fields are ignored, as integrators expect."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StrictBool, field_validator

from shared.models import CampaignRules, CampaignStatus, WebhookHeader
from shared.phone import InvalidNumber, to_e164
from shared.rules.prompts import MAX_PROMPT_BYTES, utf8_size


class CreateAgent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=255)
    # No more characters than bytes allowed; the validator below counts the bytes.
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_BYTES)
    voice: str | None = Field(default=None, max_length=100)
    language: str | None = Field(default=None, max_length=35)

    @field_validator("prompt")
    @classmethod
    def _prompt_within_limit(cls, prompt: str) -> str:
        # As written, placeholders and all: what a call without a payload would be given.
        if utf8_size(prompt) > MAX_PROMPT_BYTES:
            raise ValueError(f"must not be greater than {MAX_PROMPT_BYTES} bytes (UTF-8)")
        return prompt


class CampaignBody(CampaignRules):
    """A campaign's rules as the API takes them, on create and on edit."""

    @field_validator("from_number", mode="before")
    @classmethod
    def _from_number_e164(cls, raw: object) -> str | None:
        # Before the type check, so that a number sent as a JSON number reads as an invalid
        # phone number, as `to` does, rather than as a type error.
        if raw is None:
            return None
        if not isinstance(raw, str):
            raise ValueError("must be a valid phone number")
        try:
            return to_e164(raw)
        except InvalidNumber as exc:
            raise ValueError("must be a valid phone number") from exc


class CreateCampaign(CampaignBody):
    pass


class ChangeCampaignStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: CampaignStatus


class CreateWebhook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=255)
    webhook_url: HttpUrl = Field(max_length=500)
    events: list[str] = Field(min_length=1)
    webhook_secret: str | None = Field(default=None, min_length=1, max_length=255)
    timeout: int = Field(default=30, ge=5, le=120)
    max_retries: int = Field(default=3, ge=0, le=10)
    enabled: StrictBool = True
    http_method: Literal["POST", "PUT", "PATCH"] = "POST"
    authorization_scheme: Literal["none", "bearer", "basic", "api_key", "custom"] = "none"
    authorization_value: str | None = Field(default=None, max_length=2000)
    custom_headers: list[WebhookHeader] = Field(default_factory=list)
    include_call_events: StrictBool = False


class MakeCall(BaseModel):
    """The Make Campaign Call body; `to` is checked separately for its documented messages."""

    model_config = ConfigDict(extra="ignore")

    payload: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    is_testing: StrictBool = False
    allow_duplicates: StrictBool = False
