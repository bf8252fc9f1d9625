"""The events a webhook may list, the body of the test event and the headers of a delivery."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from shared.events import CallEventType
from shared.models import Webhook, WebhookHeader
from shared.rules.webhook_payloads import (
    EVENT_NAMES,
    TEST_EVENT,
    auth_headers,
    webhook_test_body,
)

NOW = datetime(2026, 3, 2, 15, 4, 5, tzinfo=UTC)
CAMPAIGN_EVENTS = {
    "campaign.started",
    "campaign.paused",
    "campaign.resumed",
    "campaign.completed",
    "campaign.cancelled",
}


def make_webhook(**fields: object) -> Webhook:
    values: dict[str, object] = {
        "id": "wh_1",
        "campaign_id": "camp_1",
        "environment_id": "env_1",
        "name": "CRM",
        "webhook_url": "https://hooks.example.com/calls",
        "events": ["campaign_call.completed"],
        "webhook_secret": "whsec_c2VjcmV0",
        "created_at": NOW,
    }
    values.update(fields)
    return Webhook.model_validate(values)


def test_the_names_are_the_documented_campaign_and_call_events() -> None:
    public_call_events = {t.value for t in CallEventType if t.is_public}

    assert set(EVENT_NAMES) == CAMPAIGN_EVENTS | public_call_events
    assert len(EVENT_NAMES) == len(set(EVENT_NAMES)) == 18


def test_internal_and_test_events_cannot_be_listed() -> None:
    assert CallEventType.ATTEMPT_ENDED.value not in EVENT_NAMES
    assert TEST_EVENT not in EVENT_NAMES


def test_test_event_body_is_the_documented_envelope() -> None:
    hook = make_webhook()

    body = orjson.loads(webhook_test_body(hook, "evt_test", NOW))

    assert body == {
        "id": "evt_test",
        "type": "webhook.test",
        "created_at": "2026-03-02T15:04:05Z",
        "campaign_id": "camp_1",
        "data": {"webhook_id": "wh_1", "name": "CRM", "message": body["data"]["message"]},
        "context": {},
    }
    assert body["data"]["message"]


# --- auth_headers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "value", "expected"),
    [
        pytest.param("none", None, {}, id="none"),
        pytest.param("none", "ignored", {}, id="none-with-value"),
        pytest.param("bearer", "tok_123", {"Authorization": "Bearer tok_123"}, id="bearer"),
        pytest.param("bearer", None, {}, id="bearer-without-value"),
        pytest.param("bearer", "", {}, id="bearer-empty-value"),
        pytest.param(
            "basic",
            "user:pa:ss",
            {"Authorization": "Basic " + base64.b64encode(b"user:pa:ss").decode()},
            id="basic-user-password",
        ),
        pytest.param(
            "basic",
            "dXNlcjpwYXNz",
            {"Authorization": "Basic dXNlcjpwYXNz"},
            id="basic-pre-encoded",
        ),
        pytest.param("api_key", "k_42", {"X-API-Key": "k_42"}, id="api-key"),
        pytest.param("custom", "Token abc", {"Authorization": "Token abc"}, id="custom"),
    ],
)
def test_auth_headers_per_scheme(scheme: str, value: str | None, expected: dict[str, str]) -> None:
    webhook = make_webhook(authorization_scheme=scheme, authorization_value=value)

    assert auth_headers(webhook) == expected


def test_basic_user_password_round_trips() -> None:
    webhook = make_webhook(authorization_scheme="basic", authorization_value="zoë:p@ss")

    token = auth_headers(webhook)["Authorization"].removeprefix("Basic ")

    assert base64.b64decode(token).decode() == "zoë:p@ss"


@pytest.mark.parametrize(
    ("scheme", "value", "auth"),
    [
        pytest.param("none", None, {}, id="none"),
        pytest.param("bearer", "t", {"Authorization": "Bearer t"}, id="bearer"),
        pytest.param("api_key", "k", {"X-API-Key": "k"}, id="api-key"),
    ],
)
def test_custom_headers_are_sent_with_the_auth_header(
    scheme: str, value: str | None, auth: dict[str, str]
) -> None:
    webhook = make_webhook(
        authorization_scheme=scheme,
        authorization_value=value,
        custom_headers=[
            WebhookHeader(key="X-Tenant", value="acme"),
            WebhookHeader(key="X-Trace", value=""),
        ],
    )

    assert auth_headers(webhook) == {"X-Tenant": "acme", "X-Trace": "", **auth}


def test_auth_headers_do_not_change_the_webhook() -> None:
    webhook = make_webhook(
        authorization_scheme="bearer",
        authorization_value="t",
        custom_headers=[WebhookHeader(key="X-Tenant", value="acme")],
    )

    auth_headers(webhook)["X-Tenant"] = "changed"

    assert webhook.custom_headers == [WebhookHeader(key="X-Tenant", value="acme")]
    assert auth_headers(webhook) == {"X-Tenant": "acme", "Authorization": "Bearer t"}


def test_stored_headers_that_break_the_header_rules_are_not_sent() -> None:
    # Saved before the rules existed: sending them would fail, or forge the signature.
    webhook = make_webhook(
        authorization_scheme="bearer",
        authorization_value="t",
        custom_headers=[
            WebhookHeader(key="X-Tenant", value="acme"),
            WebhookHeader(key="Content-Type", value="text/plain"),
            WebhookHeader(key="webhook-signature", value="v1,forged"),
            WebhookHeader(key="X-Injected", value="a\r\nX-Evil: 1"),
            WebhookHeader(key="Bad Name", value="x"),
            WebhookHeader(key="x-tenant", value="second"),
        ],
    )

    assert auth_headers(webhook) == {"X-Tenant": "acme", "Authorization": "Bearer t"}


@pytest.mark.parametrize(
    ("scheme", "name", "sent"),
    [
        pytest.param("bearer", "authorization", "Bearer t", id="bearer"),
        pytest.param("custom", "AUTHORIZATION", "t", id="custom"),
        pytest.param("api_key", "x-api-key", "t", id="api-key"),
    ],
)
def test_the_schemes_header_replaces_a_custom_one_of_the_same_name(
    scheme: str, name: str, sent: str
) -> None:
    webhook = make_webhook(
        authorization_scheme=scheme,
        authorization_value="t",
        custom_headers=[WebhookHeader(key=name, value="custom")],
    )

    headers = auth_headers(webhook)

    assert list(headers.values()) == [sent]
    assert [key.lower() for key in headers] == [name.lower()]


def test_a_custom_header_of_the_schemes_name_is_sent_without_a_scheme() -> None:
    webhook = make_webhook(custom_headers=[WebhookHeader(key="Authorization", value="Token x")])

    assert auth_headers(webhook) == {"Authorization": "Token x"}


@pytest.mark.parametrize("value", ["t\r\nX-Evil: 1", "t\x00"])
def test_an_authorization_value_with_a_control_character_is_not_sent(value: str) -> None:
    webhook = make_webhook(
        authorization_scheme="custom",
        authorization_value=value,
        custom_headers=[WebhookHeader(key="X-Tenant", value="acme")],
    )

    assert auth_headers(webhook) == {"X-Tenant": "acme"}


def test_a_webhooks_repr_shows_no_credential() -> None:
    webhook = make_webhook(
        webhook_secret="whsec_SECRETSECRET",
        authorization_scheme="bearer",
        authorization_value="TOKENTOKEN",
        custom_headers=[WebhookHeader(key="X-Api-Secret", value="HEADERVALUE")],
    )

    for text in (repr(webhook), str(webhook), repr(webhook.custom_headers)):
        assert "X-Api-Secret" in text or "custom_headers" in text
        for credential in ("SECRETSECRET", "TOKENTOKEN", "HEADERVALUE"):
            assert credential not in text, text


def test_a_stored_webhook_that_fails_to_load_shows_no_credential_in_the_error() -> None:
    raw = make_webhook(
        webhook_secret="whsec_SECRETSECRET",
        authorization_value="TOKENTOKEN",
        custom_headers=[WebhookHeader(key="X-A", value="HEADERVALUE")],
    ).model_dump(mode="json")
    raw["timeout"] = "not a number"
    raw["custom_headers"][0]["value"] = ["HEADERVALUE"]
    raw["authorization_value"] = {"TOKENTOKEN": 1}

    with pytest.raises(ValidationError) as caught:
        Webhook.model_validate(raw)

    text = str(caught.value)
    assert "authorization_value" in text
    for credential in ("HEADERVALUE", "TOKENTOKEN", "SECRETSECRET"):
        assert credential not in text
