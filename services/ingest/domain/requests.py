"""Request bodies of the public API. Unknown fields are ignored, as integrators expect."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StrictBool,
    ValidationError,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from services.ingest.domain.credentials import looks_masked
from shared.models import CampaignRules, CampaignStatus, WebhookHeader
from shared.phone import InvalidNumber, to_e164
from shared.rules.input_bounds import (
    MAX_CALL_JSON_BYTES,
    MAX_CUSTOM_HEADERS,
    MAX_DESCRIPTION_CHARS,
    MAX_INITIAL_CALL_DELAY_S,
    json_too_large,
)
from shared.rules.outcomes import KNOWN_ERRORS, Outcome
from shared.rules.prompts import MAX_PROMPT_BYTES, utf8_size
from shared.rules.webhook_headers import (
    CONTROL_CHARACTER,
    SENDER_HEADERS,
    SIGNATURE_PREFIX,
    TOKEN_PATTERN,
    VALUE_PATTERN,
    header_problems,
    is_header_value,
)


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


KNOWN_STATUSES: tuple[str, ...] = tuple(Outcome)


def _only_known(names: list[str], known: tuple[str, ...]) -> list[str]:
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(
            f"may only hold these names: {', '.join(known)} (unknown: {', '.join(unknown)})"
        )
    return names


class CampaignBody(CampaignRules):
    """A campaign's rules as the API takes them, on create and on edit.

    Bounds that a stored campaign need not meet (it was stored before they were set) are
    checked here, not in `CampaignRules`: a campaign stays readable, and an edit brings it
    within them."""

    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS)
    initial_call_delay: int = Field(
        default=0,
        ge=0,
        le=MAX_INITIAL_CALL_DELAY_S,
        description="Seconds between a request and the first dial, at most 30 days.",
    )
    auto_dnc_trigger_statuses: list[str] = Field(
        default_factory=list,
        max_length=len(KNOWN_STATUSES),
        description="Attempt outcomes that put the number on the do-not-call list.",
        json_schema_extra={"items": {"type": "string", "enum": list(KNOWN_STATUSES)}},
    )
    auto_dnc_trigger_errors: list[str] = Field(
        default_factory=list,
        max_length=len(KNOWN_ERRORS),
        description="Attempt errors that put the number on the do-not-call list.",
        json_schema_extra={"items": {"type": "string", "enum": list(KNOWN_ERRORS)}},
    )

    @field_validator("auto_dnc_trigger_statuses")
    @classmethod
    def _known_statuses(cls, names: list[str]) -> list[str]:
        return _only_known(names, KNOWN_STATUSES)

    @field_validator("auto_dnc_trigger_errors")
    @classmethod
    def _known_errors(cls, names: list[str]) -> list[str]:
        return _only_known(names, KNOWN_ERRORS)

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


_MASKED = "must be the credential itself, not its masked hint"


class HeaderBody(WebhookHeader):
    """A custom header as the API takes it; the rules are checked over the whole list."""

    key: str = Field(
        min_length=1,
        max_length=255,
        description=(
            "An HTTP header name (RFC 9110 token), each name once (ignoring case); not "
            f"{', '.join(SENDER_HEADERS)}, nor any `{SIGNATURE_PREFIX}*` name."
        ),
        json_schema_extra={"pattern": TOKEN_PATTERN},
    )
    value: str = Field(
        max_length=2000,
        repr=False,
        description=(
            "No control characters but tab. Write-only: reads show a masked hint, which sent "
            "back unchanged under the same name keeps the value."
        ),
        json_schema_extra={"pattern": VALUE_PATTERN},
    )


def _header_error(index: int, part: str, message: str) -> InitErrorDetails:
    # The message is the context, not the template, so that braces in it are kept as written.
    error = PydanticCustomError("webhook_header", "{message}", {"message": message})
    return {"type": error, "loc": (index, part), "input": None}


class CreateWebhook(BaseModel):
    # Credentials stay out of reprs and validation errors (and so out of logs).
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    name: str = Field(min_length=1, max_length=255)
    webhook_url: HttpUrl = Field(max_length=500)
    events: list[str] = Field(min_length=1)
    webhook_secret: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        repr=False,
        description=(
            "Signs each delivery; generated (`whsec_`) when left out. Write-only: reads show a "
            "masked hint, which sent back unchanged keeps the secret."
        ),
    )
    timeout: int = Field(default=30, ge=5, le=120)
    max_retries: int = Field(default=3, ge=0, le=10)
    enabled: StrictBool = True
    http_method: Literal["POST", "PUT", "PATCH"] = "POST"
    authorization_scheme: Literal["none", "bearer", "basic", "api_key", "custom"] = "none"
    authorization_value: str | None = Field(
        default=None,
        max_length=2000,
        repr=False,
        description=(
            "Sent as a header value: no control characters but tab. Write-only: reads show a "
            "masked hint, which sent back unchanged keeps the value."
        ),
        json_schema_extra={"pattern": VALUE_PATTERN},
    )
    custom_headers: list[HeaderBody] = Field(default_factory=list, max_length=MAX_CUSTOM_HEADERS)
    include_call_events: StrictBool = False

    @field_validator("webhook_secret")
    @classmethod
    def _secret_not_a_hint(cls, secret: str | None) -> str | None:
        if secret is not None and looks_masked(secret):
            raise ValueError(_MASKED)
        return secret

    @field_validator("authorization_value")
    @classmethod
    def _sendable_authorization(cls, value: str | None) -> str | None:
        if value is None:
            return value
        # Sent as a header value, under the same rule as the custom ones.
        if not is_header_value(value):
            raise ValueError(CONTROL_CHARACTER)
        if looks_masked(value):
            raise ValueError(_MASKED)
        return value

    @field_validator("custom_headers")
    @classmethod
    def _sendable_headers(cls, headers: list[HeaderBody]) -> list[HeaderBody]:
        """The header rules (shared with the sender), each refusal under its own
        `custom_headers.<index>.key` or `.value`."""
        problems = header_problems([(header.key, header.value) for header in headers])
        found = [(problem.index, problem.part, problem.message) for problem in problems]
        refused = {(index, part) for index, part, _ in found}
        found += [
            (index, "value", _MASKED)
            for index, header in enumerate(headers)
            if (index, "value") not in refused and looks_masked(header.value)
        ]
        if found:
            # Raised from a validator, each error lands under the field's own location.
            errors = [_header_error(*problem) for problem in sorted(found)]
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return headers


class MakeCall(BaseModel):
    """The Make Campaign Call body; `to` is checked separately for its documented messages."""

    model_config = ConfigDict(extra="ignore")

    payload: dict[str, Any] = Field(
        default_factory=dict,
        description=f"At most {MAX_CALL_JSON_BYTES:,} bytes as compact UTF-8 JSON.",
    )
    context: dict[str, Any] = Field(
        default_factory=dict,
        description=f"At most {MAX_CALL_JSON_BYTES:,} bytes as compact UTF-8 JSON.",
    )
    is_testing: StrictBool = False
    allow_duplicates: StrictBool = False

    @field_validator("payload", "context")
    @classmethod
    def _json_within_limit(cls, value: dict[str, Any]) -> dict[str, Any]:
        problem = json_too_large(value)
        if problem is not None:
            raise ValueError(problem)
        return value
