"""The events a webhook may subscribe to, the test event's body, and the headers every delivery
carries besides its signature."""

from __future__ import annotations

import base64
from datetime import datetime
from functools import lru_cache
from typing import Literal, get_args

import orjson

from shared.clock import to_iso
from shared.models import Webhook
from shared.rules.webhook_headers import is_header_value, sendable_headers

# The events a webhook may subscribe to (API.md, Webhooks).
WebhookEvent = Literal[
    "campaign.started",
    "campaign.paused",
    "campaign.resumed",
    "campaign.completed",
    "campaign.cancelled",
    "campaign_call.queued",
    "campaign_call.rejected",
    "campaign_call.started",
    "campaign_call.answered",
    "campaign_call.completed",
    "campaign_call.no_answer",
    "campaign_call.busy",
    "campaign_call.voicemail",
    "campaign_call.failed",
    "campaign_call.retry_scheduled",
    "campaign_call.cancelled",
    "campaign_call.blocked",
    "campaign_call.expired",
]
EVENT_NAMES: tuple[str, ...] = get_args(WebhookEvent)
# Sent only by the test endpoint; no webhook subscribes to it.
TEST_EVENT = "webhook.test"
# A test event is sent with at most this timeout, and the API waits at most TEST_WAIT_S for its
# result (the notifier sends it; the API answers with what the receiver said, or that it has
# not answered yet).
TEST_TIMEOUT_S = 8.0
TEST_WAIT_S = 10.0


def _iso(moment: datetime | None) -> str | None:
    return to_iso(moment) if moment else None


def webhook_test_body(webhook: Webhook, event_id: str, now: datetime) -> bytes:
    """The body of a `webhook.test` event: the documented envelope around the webhook's ids."""
    body = {
        "id": event_id,
        "type": TEST_EVENT,
        "created_at": _iso(now),
        "campaign_id": webhook.campaign_id,
        "data": {
            "webhook_id": webhook.id,
            "name": webhook.name,
            "message": "A test event: the webhook is reachable and its signature checks out.",
        },
        "context": {},
    }
    return orjson.dumps(body)


def _scheme_header(scheme: str, value: str | None) -> tuple[str, str] | None:
    """The header of the webhook's authorization scheme, if it has one to send."""
    if not value or scheme == "none":
        return None
    if scheme == "bearer":
        return "Authorization", f"Bearer {value}"
    if scheme == "basic":
        token = value if ":" not in value else base64.b64encode(value.encode()).decode()
        return "Authorization", f"Basic {token}"
    if scheme == "api_key":
        return "X-API-Key", value
    return "Authorization", value


def auth_headers(webhook: Webhook) -> dict[str, str]:
    """The webhook's custom headers and its authorization header.

    A stored custom header that breaks the header rules (saved before they existed) is left
    out, and so is an authorization value with a control character: sending them would fail.
    The scheme's header replaces a custom one of the same name."""
    custom = tuple((header.key, header.value) for header in webhook.custom_headers)
    # A copy: the caller adds the signature's headers to it.
    return dict(_auth_headers(custom, webhook.authorization_scheme, webhook.authorization_value))


@lru_cache(maxsize=4096)
def _auth_headers(
    custom: tuple[tuple[str, str], ...], scheme: str, value: str | None
) -> tuple[tuple[str, str], ...]:
    """`auth_headers`, worked out once per webhook's headers and credentials (every attempt to
    a webhook sends the same)."""
    headers = dict(sendable_headers(custom))
    header = _scheme_header(scheme, value)
    if header is None or not is_header_value(header[1]):
        return tuple(headers.items())
    name, value = header
    headers = {key: kept for key, kept in headers.items() if key.lower() != name.lower()}
    headers[name] = value
    return tuple(headers.items())
    name, value = scheme
    headers = {key: kept for key, kept in headers.items() if key.lower() != name.lower()}
    headers[name] = value
    return headers
