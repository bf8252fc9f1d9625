"""Which webhooks get an event, and the body and headers they get."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Literal, get_args

import orjson

from shared.clock import to_iso
from shared.events import CallEvent, CampaignEvent
from shared.models import Call, Campaign, Webhook

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


def _iso(moment: datetime | None) -> str | None:
    return to_iso(moment) if moment else None


def wants(webhook: Webhook, event_type: str) -> bool:
    if not webhook.enabled:
        return False
    if event_type in webhook.events:
        return True
    return webhook.include_call_events and event_type.startswith("campaign_call.")


def _envelope(
    event_id: str, event_type: str, occurred_at: datetime, campaign_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    """What every event body starts with (API.md): id, type, created_at, campaign_id, data."""
    return {
        "id": event_id,
        "type": event_type,
        "created_at": _iso(occurred_at),
        "campaign_id": campaign_id,
        "data": data,
    }


def call_event_body(event: CallEvent, call: Call | None) -> bytes:
    """The documented body; `context` is the call's own, passed through as stored."""
    data: dict[str, Any] = {
        "id": event.call_id,
        "campaign_id": event.campaign_id,
        "to": event.to,
        "status": event.status,
        "outcome": event.outcome,
        "error": event.error,
        "duration_seconds": event.duration_seconds,
        "reason": event.reason,
        "is_testing": call.is_testing if call else False,
        "scheduled_at": _iso(call.scheduled_at) if call else None,
        "created_at": _iso(call.created_at) if call else None,
    }
    body = {
        **_envelope(event.event_id, event.type.value, event.occurred_at, event.campaign_id, data),
        "context": call.context if call else {},
        "attempt": event.attempt,
        "max_attempts": event.max_attempts,
        "will_retry": event.will_retry,
        "next_attempt_at": _iso(event.next_attempt_at),
    }
    return orjson.dumps(body)


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


def campaign_event_body(event: CampaignEvent, campaign: Campaign | None) -> bytes:
    """The documented body of a `campaign.*` event: the campaign as the move left it."""
    data: dict[str, Any] = {
        "id": event.campaign_id,
        "name": campaign.name if campaign else None,
        "status": event.status,
        "previous_status": event.previous_status,
        "agent_id": campaign.agent_id if campaign else None,
        "created_at": _iso(campaign.created_at) if campaign else None,
    }
    body = {
        **_envelope(event.event_id, event.type.value, event.occurred_at, event.campaign_id, data),
        "context": {},
    }
    return orjson.dumps(body)
