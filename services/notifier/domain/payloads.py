"""Which webhooks get an event, and the body of a call or campaign event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from shared.clock import to_iso
from shared.events import CallEvent, CampaignEvent
from shared.models import CallFacts, Campaign, Webhook


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


def call_event_body(event: CallEvent, call: CallFacts | None) -> bytes:
    """The documented body; `context` is the call's own, passed through as stored, or, for a
    call never stored (a rejected request), the one its event carries."""
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
        **_envelope(event.event_id, event.type, event.occurred_at, event.campaign_id, data),
        "context": call.context if call else (event.context or {}),
        "attempt": event.attempt,
        "max_attempts": event.max_attempts,
        "will_retry": event.will_retry,
        "next_attempt_at": _iso(event.next_attempt_at),
    }
    return orjson.dumps(body)


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
