"""The events a webhook may list, and the body of the test event."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from services.notifier.domain.payloads import (
    EVENT_NAMES,
    TEST_EVENT,
    wants,
    webhook_test_body,
)
from shared.events import CallEventType
from shared.models import Webhook

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


def test_every_listable_event_reaches_a_webhook_that_lists_it() -> None:
    for name in EVENT_NAMES:
        assert wants(make_webhook(events=[name]), name), name


def test_no_webhook_subscribes_to_the_test_event() -> None:
    hook = make_webhook(events=list(EVENT_NAMES), include_call_events=True)

    assert not wants(hook, TEST_EVENT)


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
