from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails

from services.ingest.domain.errors import (
    INVALID_DATA,
    UNAUTHENTICATED_BODY,
    ApiError,
    Invalid,
    not_found,
    validation_errors,
)
from services.ingest.domain.requests import (
    ChangeCampaignStatus,
    CreateAgent,
    CreateCampaign,
    CreateWebhook,
    MakeCall,
)
from shared.models import CampaignRules

CAMPAIGN = {
    "name": "Spring",
    "campaign_type": "sales",
    "agent_id": "agent_1",
    "start_date": "2026-04-01",
}
WEBHOOK = {
    "name": "CRM",
    "webhook_url": "https://hooks.example.com/x",
    "events": ["campaign.started"],
}


def errors_of(model: type[BaseModel], body: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return validation_errors(caught.value)


@pytest.mark.parametrize(
    ("model", "body", "field", "message"),
    [
        pytest.param(
            CreateAgent, {"prompt": "p"}, "name", "The name field is required.", id="agent-name"
        ),
        pytest.param(
            CreateAgent, {"name": "n"}, "prompt", "The prompt field is required.", id="agent-prompt"
        ),
        pytest.param(
            CreateCampaign,
            {k: v for k, v in CAMPAIGN.items() if k != "campaign_type"},
            "campaign_type",
            "The campaign type field is required.",
            id="campaign-type",
        ),
        pytest.param(
            CampaignRules,
            {k: v for k, v in CAMPAIGN.items() if k != "start_date"},
            "start_date",
            "The start date field is required.",
            id="rules-start-date",
        ),
        pytest.param(
            CreateCampaign,
            {k: v for k, v in CAMPAIGN.items() if k != "agent_id"},
            "agent_id",
            "The agent id field is required.",
            id="campaign-agent-id",
        ),
        pytest.param(
            CreateWebhook,
            {k: v for k, v in WEBHOOK.items() if k != "webhook_url"},
            "webhook_url",
            "The webhook url field is required.",
            id="webhook-url",
        ),
        pytest.param(
            ChangeCampaignStatus, {}, "status", "The status field is required.", id="status"
        ),
    ],
)
def test_missing_field_is_required(
    model: type[BaseModel], body: dict[str, Any], field: str, message: str
) -> None:
    assert errors_of(model, body) == {field: [message]}


def test_every_missing_field_is_reported() -> None:
    assert errors_of(CampaignRules, {}) == {
        "name": ["The name field is required."],
        "campaign_type": ["The campaign type field is required."],
        "agent_id": ["The agent id field is required."],
        "start_date": ["The start date field is required."],
    }


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        pytest.param(
            {"call_time_ranges": [{"start": "09:00", "end": "25:00"}]},
            "call_time_ranges.0.end",
            "HH:MM",
            id="range-end-format",
        ),
        pytest.param(
            {
                "call_time_ranges": [
                    {"start": "09:00", "end": "12:00"},
                    {"start": "9am", "end": "17:00"},
                ]
            },
            "call_time_ranges.1.start",
            "HH:MM",
            id="second-range-start",
        ),
        pytest.param(
            {"call_time_ranges": [{"start": "09:00"}]},
            "call_time_ranges.0.end",
            "field is required",
            id="range-end-missing",
        ),
        pytest.param(
            {"call_time_ranges": [{"start": "10:00", "end": "09:00"}]},
            "call_time_ranges.0.end",
            "The end must be after start.",
            id="range-order",
        ),
        pytest.param(
            {
                "call_time_ranges": [
                    {"start": "09:00", "end": "12:00"},
                    {"start": "11:00", "end": "13:00"},
                ]
            },
            "call_time_ranges",
            "must not overlap",
            id="overlap",
        ),
        pytest.param(
            {"days_of_week": [1, "x"]}, "days_of_week.1", "must be an integer", id="day-item"
        ),
        pytest.param(
            {"recipient_local_hours": {"start": "21:00", "end": "08:00"}},
            "recipient_local_hours.end",
            "The end must be after start.",
            id="local-hours-order",
        ),
    ],
)
def test_nested_errors_get_dotted_names(body: dict[str, Any], field: str, fragment: str) -> None:
    errors = errors_of(CampaignRules, {**CAMPAIGN, **body})

    assert list(errors) == [field]
    assert len(errors[field]) == 1
    assert fragment in errors[field][0]
    assert errors[field][0].startswith("The ")
    assert errors[field][0].endswith(".")


def test_nested_errors_in_webhook_headers() -> None:
    errors = errors_of(
        CreateWebhook, {**WEBHOOK, "custom_headers": [{"key": "X-A", "value": "1"}, {}]}
    )

    assert errors == {
        "custom_headers.1.key": ["The key field is required."],
        "custom_headers.1.value": ["The value field is required."],
    }


HEADER_RULES = [
    pytest.param(
        [{"key": "X Tenant", "value": "acme"}],
        {
            "custom_headers.0.key": [
                "The key must be an HTTP header name: letters, digits and !#$%&'*+-.^_`|~ only, "
                "no spaces."
            ]
        },
        id="not-a-token",
    ),
    pytest.param(
        [{"key": "X-Ok", "value": "1"}, {"key": "content-type", "value": "text/plain"}],
        {"custom_headers.1.key": ["The key must not be Content-Type: the sender sets it."]},
        id="sender-header",
    ),
    pytest.param(
        [{"key": "Webhook-Signature", "value": "v1,x"}],
        {
            "custom_headers.0.key": [
                "The key must not start with webhook-: the signature headers are the sender's."
            ]
        },
        id="signature-header",
    ),
    pytest.param(
        [{"key": "X-A", "value": "1"}, {"key": "x-a", "value": "2"}],
        {
            "custom_headers.1.key": [
                "The key must not repeat the name of header 0 (names ignore case)."
            ]
        },
        id="repeated",
    ),
    pytest.param(
        [{"key": "X-A", "value": "1\r\nX-Injected: 1"}],
        {
            "custom_headers.0.value": [
                "The value must not contain control characters (CR, LF, NUL and the like; tab "
                "is allowed)."
            ]
        },
        id="crlf",
    ),
    pytest.param(
        [{"key": "X-A", "value": "****"}],
        {
            "custom_headers.0.value": [
                "The value must be the credential itself, not its masked hint."
            ]
        },
        id="masked-value",
    ),
    pytest.param(
        [{"key": "Host", "value": "\x00"}, {"key": "X-B", "value": "****abcd"}],
        {
            "custom_headers.0.key": ["The key must not be Host: the sender sets it."],
            "custom_headers.0.value": [
                "The value must not contain control characters (CR, LF, NUL and the like; tab "
                "is allowed)."
            ],
            "custom_headers.1.value": [
                "The value must be the credential itself, not its masked hint."
            ],
        },
        id="several",
    ),
]


@pytest.mark.parametrize(("headers", "expected"), HEADER_RULES)
def test_custom_header_rules_are_reported_per_header(
    headers: list[dict[str, str]], expected: dict[str, list[str]]
) -> None:
    assert errors_of(CreateWebhook, {**WEBHOOK, "custom_headers": headers}) == expected


def test_header_rules_sit_beside_the_other_fields_messages() -> None:
    body = {**WEBHOOK, "timeout": 1, "custom_headers": [{"key": "Host", "value": "x"}]}

    assert set(errors_of(CreateWebhook, body)) == {"timeout", "custom_headers.0.key"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        pytest.param(
            "authorization_value",
            "t\nX-Injected: 1",
            "The authorization value must not contain control characters (CR, LF, NUL and the "
            "like; tab is allowed).",
            id="authorization-control-character",
        ),
        pytest.param(
            "authorization_value",
            "****wxyz",
            "The authorization value must be the credential itself, not its masked hint.",
            id="authorization-hint",
        ),
        pytest.param(
            "webhook_secret",
            "****",
            "The webhook secret must be the credential itself, not its masked hint.",
            id="secret-hint",
        ),
    ],
)
def test_credentials_are_refused_as_hints_or_with_control_characters(
    field: str, value: str, message: str
) -> None:
    errors = errors_of(CreateWebhook, {**WEBHOOK, "authorization_scheme": "custom", field: value})

    assert errors == {field: [message]}


def test_no_credential_is_echoed_in_a_validation_error() -> None:
    body = {
        **WEBHOOK,
        "webhook_secret": ["SECRETSECRET"],
        "authorization_value": {"TOKENTOKEN": 1},
        "custom_headers": [{"key": "Host", "value": "HEADERVALUE"}],
    }

    with pytest.raises(ValidationError) as caught:
        CreateWebhook.model_validate(body)

    # What a log or a traceback would print.
    text = str(caught.value)
    assert "custom_headers.0.key" in text
    for credential in ("SECRETSECRET", "TOKENTOKEN", "HEADERVALUE"):
        assert credential not in text


@pytest.mark.parametrize(
    ("model", "body", "expected"),
    [
        pytest.param(
            CampaignRules,
            {**CAMPAIGN, "timezone": "Mars/Olympus"},
            {"timezone": ["The timezone must be a valid IANA time zone."]},
            id="value-error-prefix-dropped",
        ),
        pytest.param(
            MakeCall,
            {"is_testing": "yes"},
            {"is_testing": ["The is testing must be true or false."]},
            id="strict-bool",
        ),
        pytest.param(
            MakeCall,
            {"context": [1]},
            {"context": ["The context must be an object."]},
            id="context-object",
        ),
    ],
)
def test_messages_name_the_field(
    model: type[BaseModel], body: dict[str, Any], expected: dict[str, list[str]]
) -> None:
    assert errors_of(model, body) == expected


@pytest.mark.parametrize("body", [[], "text", 3, None])
def test_a_body_that_is_not_an_object_is_reported_under_body(body: Any) -> None:
    errors = errors_of(MakeCall, body)

    assert list(errors) == ["body"]
    assert len(errors["body"]) == 1


def test_end_date_before_start_date_is_reported_under_end_date() -> None:
    errors = errors_of(CampaignRules, {**CAMPAIGN, "end_date": "2026-03-01"})

    assert list(errors) == ["end_date"]


def _error(loc: tuple[str | int, ...], message: str | None) -> InitErrorDetails:
    if message is None:
        return {"type": "missing", "loc": loc, "input": {}}
    return {"type": "value_error", "loc": loc, "input": "x", "ctx": {"error": ValueError(message)}}


def test_several_messages_for_one_field_are_gathered_in_one_list() -> None:
    exc = ValidationError.from_exception_data(
        "MakeCall",
        [
            _error(("to",), None),
            _error(("payload",), "must be an object"),
            _error(("to",), "must be a valid phone number"),
            _error(("to",), "must be a valid phone number"),
        ],
    )

    assert validation_errors(exc) == {
        "to": ["The to field is required.", "The to must be a valid phone number."],
        "payload": ["The payload must be an object."],
    }


def test_each_failing_list_item_gets_its_own_dotted_name() -> None:
    errors = errors_of(
        CampaignRules, {**CAMPAIGN, "days_of_week": ["x", 2, "y"], "max_retries": 11}
    )

    assert sorted(errors) == ["days_of_week.0", "days_of_week.2", "max_retries"]
    assert all("must be an integer" in errors[f"days_of_week.{i}"][0] for i in (0, 2))
    assert errors["max_retries"] == ["The max retries must not be greater than 10."]


def test_invalid_body_shape() -> None:
    errors = {"to": ["The to field is required.", "The to must be a valid phone number."]}

    invalid = Invalid(errors)

    assert invalid.body() == {
        "success": False,
        "message": "The given data was invalid.",
        "errors": {"to": ["The to field is required.", "The to must be a valid phone number."]},
    }
    assert str(invalid) == INVALID_DATA == "The given data was invalid."


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        pytest.param(
            ApiError(409, "The campaign is not accepting calls.", "CAMPAIGN_CLOSED"),
            409,
            {
                "success": False,
                "message": "The campaign is not accepting calls.",
                "code": "CAMPAIGN_CLOSED",
            },
            id="closed",
        ),
        pytest.param(
            ApiError(400, "Invalid transition.", "INVALID_TRANSITION", allowed=["paused"]),
            400,
            {
                "success": False,
                "message": "Invalid transition.",
                "code": "INVALID_TRANSITION",
                "allowed": ["paused"],
            },
            id="extra-fields",
        ),
        pytest.param(
            not_found("campaign"),
            404,
            {"success": False, "message": "Campaign not found.", "code": "CAMPAIGN_NOT_FOUND"},
            id="campaign-not-found",
        ),
        pytest.param(
            not_found("webhook"),
            404,
            {"success": False, "message": "Webhook not found.", "code": "WEBHOOK_NOT_FOUND"},
            id="webhook-not-found",
        ),
    ],
)
def test_api_error_body_shape(error: ApiError, status: int, body: dict[str, Any]) -> None:
    assert error.status == status
    assert error.body() == body
    assert str(error) == body["message"]


def test_unauthenticated_body() -> None:
    assert UNAUTHENTICATED_BODY == {"success": False, "message": "Unauthenticated."}
