"""Topic names and the key each one is partitioned by."""

from __future__ import annotations

from typing import Final

CALLS_REQUESTED: Final = "campaign-calls.requested"
CALLS_DUE: Final = "campaign-calls.due"
CALLS_EVENTS: Final = "campaign-calls.events"
CALLS_DLQ: Final = "campaign-calls.dlq"
# A campaign's lifecycle (`campaign.started` …), keyed by campaign id: its moves in order.
CAMPAIGN_EVENTS: Final = "campaign-calls.campaign-events"

ALL_TOPICS: Final = (CALLS_REQUESTED, CALLS_DUE, CALLS_EVENTS, CALLS_DLQ, CAMPAIGN_EVENTS)


def requested_key(campaign_id: str, e164: str) -> bytes:
    """All requests for one number in one campaign meet in one partition."""
    return f"{campaign_id}:{e164}".encode()


def call_key(call_id: str) -> bytes:
    return call_id.encode()


def campaign_key(campaign_id: str) -> bytes:
    return campaign_id.encode()
