"""Topic names and the key each one is partitioned by."""

from __future__ import annotations

from typing import Final

CALLS_REQUESTED: Final = "campaign-calls.requested"
CALLS_DUE: Final = "campaign-calls.due"
CALLS_EVENTS: Final = "campaign-calls.events"
CALLS_DLQ: Final = "campaign-calls.dlq"

ALL_TOPICS: Final = (CALLS_REQUESTED, CALLS_DUE, CALLS_EVENTS, CALLS_DLQ)


def requested_key(campaign_id: str, e164: str) -> bytes:
    """All requests for one number in one campaign meet in one partition."""
    return f"{campaign_id}:{e164}".encode()


def call_key(call_id: str) -> bytes:
    return call_id.encode()
