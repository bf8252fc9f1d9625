"""Credentials as the API shows them (masked hints) and an edit that sends a hint back."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.domain.credentials import (
    HINT_PATTERN,
    keep_unchanged_credentials,
    looks_masked,
    masked,
    masked_view,
)
from shared.models import Webhook, WebhookHeader

NOW = datetime(2026, 3, 2, 15, 4, 5, tzinfo=UTC)
LONG_SECRET = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ"


def make_webhook(**fields: Any) -> Webhook:
    values: dict[str, Any] = {
        "id": "wh_1",
        "campaign_id": "camp_1",
        "environment_id": "env_1",
        "name": "CRM",
        "webhook_url": "https://hooks.example.com/calls",
        "events": ["campaign_call.completed"],
        "webhook_secret": LONG_SECRET,
        "authorization_scheme": "bearer",
        "authorization_value": "tok_live_0123456789abcdef",
        "custom_headers": [
            WebhookHeader(key="X-Tenant", value="acme"),
            WebhookHeader(key="X-Api-Secret", value="hdr_0123456789abcdef"),
        ],
        "created_at": NOW,
    }
    values.update(fields)
    return Webhook.model_validate(values)


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        pytest.param("", "", id="empty"),
        pytest.param("a", "****", id="one"),
        pytest.param("abcd", "****", id="four"),
        pytest.param("x" * 11 + "1234", "****", id="fifteen"),
        pytest.param("x" * 12 + "1234", "****1234", id="sixteen"),
        pytest.param(LONG_SECRET, "****yZXQ", id="secret"),
        # Four code points: the phone and its variation selector count as two.
        pytest.param("Zoë-東京-password-☎\ufe0fx", "****-☎\ufe0fx", id="unicode"),
    ],
)
def test_a_hint_shows_the_last_four_characters_of_long_values_only(value: str, hint: str) -> None:
    assert masked(value) == hint


@given(st.text(max_size=40))
def test_a_hint_reveals_at_most_a_quarter_of_a_value_and_has_the_documented_shape(
    value: str,
) -> None:
    hint = masked(value)

    assert re.fullmatch(HINT_PATTERN, hint)
    assert looks_masked(hint) or hint == ""
    shown = len(hint) - 4 if hint else 0
    assert shown * 4 <= len(value)
    if value:
        assert hint != value or value == "****"


@pytest.mark.parametrize(
    ("value", "looks"),
    [
        ("****", True),
        ("****abcd", True),
        ("****abc", False),
        ("****abcde", False),
        ("***abcd", False),
        ("abcd****", False),
        ("", False),
        ("tok_live", False),
    ],
)
def test_the_shape_of_a_hint(value: str, looks: bool) -> None:
    assert looks_masked(value) is looks


def test_the_view_shows_every_credential_as_its_hint() -> None:
    webhook = make_webhook()

    view = masked_view(webhook, {"id": "wh_1"})

    assert view == {
        "id": "wh_1",
        "webhook_secret": "****" + LONG_SECRET[-4:],
        "authorization_value": "****cdef",
        "custom_headers": [
            {"key": "X-Tenant", "value": "****"},
            {"key": "X-Api-Secret", "value": "****cdef"},
        ],
    }


def test_a_view_without_an_authorization_value_shows_null() -> None:
    assert masked_view(make_webhook(authorization_value=None), {})["authorization_value"] is None


def test_an_edit_that_sends_every_hint_back_keeps_every_credential() -> None:
    current = make_webhook()
    read = masked_view(current, {"name": "CRM"})

    kept = keep_unchanged_credentials({**read, "name": "CRM v2"}, current)

    assert kept == {
        "name": "CRM v2",
        "authorization_value": current.authorization_value,
        "custom_headers": [
            {"key": "X-Tenant", "value": "acme"},
            {"key": "X-Api-Secret", "value": "hdr_0123456789abcdef"},
        ],
    }


def test_new_values_replace_the_stored_ones() -> None:
    current = make_webhook()
    changes = {
        "webhook_secret": "whsec_bmV3",
        "authorization_value": "tok_new",
        "custom_headers": [{"key": "X-Tenant", "value": "globex"}],
    }

    assert keep_unchanged_credentials(changes, current) == changes


def test_a_header_is_matched_by_name_ignoring_case_and_keeps_its_key_as_sent() -> None:
    current = make_webhook()
    changes = {
        "custom_headers": [
            {"key": "x-api-secret", "value": "****cdef"},
            {"key": "X-New", "value": "****"},
            {"key": "X-Tenant", "value": "****cdef"},
        ]
    }

    kept = keep_unchanged_credentials(changes, current)

    assert kept["custom_headers"] == [
        # The hint of the stored header of that name: its value.
        {"key": "x-api-secret", "value": "hdr_0123456789abcdef"},
        # No stored header of that name, or not its hint: left as sent, for validation.
        {"key": "X-New", "value": "****"},
        {"key": "X-Tenant", "value": "****cdef"},
    ]


def test_a_stale_hint_is_left_as_sent() -> None:
    current = make_webhook(authorization_value="tok_rotated_0000000000")

    kept = keep_unchanged_credentials({"authorization_value": "****cdef"}, current)

    assert kept == {"authorization_value": "****cdef"}


def test_a_hint_for_an_authorization_value_never_set_is_left_as_sent() -> None:
    current = make_webhook(authorization_value=None)

    assert keep_unchanged_credentials({"authorization_value": "****"}, current) == {
        "authorization_value": "****"
    }


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param("not a list", id="not-a-list"),
        pytest.param([7, None, {"key": 1, "value": "****"}, {"value": "****"}], id="odd-items"),
    ],
)
def test_headers_not_shaped_as_the_api_takes_them_are_left_for_validation(headers: Any) -> None:
    current = make_webhook()

    assert keep_unchanged_credentials({"custom_headers": headers}, current) == {
        "custom_headers": headers
    }


def test_the_changes_sent_are_not_changed() -> None:
    current = make_webhook()
    headers = [{"key": "X-Tenant", "value": "****"}]
    changes = {"custom_headers": headers, "authorization_value": "****cdef"}

    keep_unchanged_credentials(changes, current)

    assert changes == {
        "custom_headers": [{"key": "X-Tenant", "value": "****"}],
        "authorization_value": "****cdef",
    }
    assert headers == [{"key": "X-Tenant", "value": "****"}]
