"""The events a webhook may subscribe to, the test event's body, and the headers every delivery
carries besides its signature."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Literal, get_args

import orjson

from shared.clock import to_iso
from shared.models import Webhook

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


def auth_headers(webhook: Webhook) -> dict[str, str]:
    headers = {header.key: header.value for header in webhook.custom_headers}
    value = webhook.authorization_value
    if not value or webhook.authorization_scheme == "none":
        return headers
    if webhook.authorization_scheme == "bearer":
        headers["Authorization"] = f"Bearer {value}"
    elif webhook.authorization_scheme == "basic":
        token = value if ":" not in value else base64.b64encode(value.encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    elif webhook.authorization_scheme == "api_key":
        headers["X-API-Key"] = value
    else:
        headers["Authorization"] = value
    return headers
