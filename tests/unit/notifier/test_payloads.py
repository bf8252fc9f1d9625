from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter

from services.notifier.domain.payloads import call_event_body, campaign_event_body, wants
from shared.events import (
    CallEvent,
    CallEventType,
    CampaignEventType,
    call_event,
    campaign_event,
    event_id_for,
)
from shared.models import (
    Call,
    CallFacts,
    CallStatus,
    Campaign,
    CampaignRules,
    CampaignStatus,
    Webhook,
)
from shared.rules.webhook_payloads import EVENT_NAMES, TEST_EVENT
from tests.support import ALWAYS_OPEN

NOW = datetime(2026, 3, 2, 15, 4, 5, tzinfo=UTC)
CREATED = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
SCHEDULED = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
RETRY_AT = datetime(2026, 3, 3, 15, 4, 5, tzinfo=UTC)
# As a consumer gets it from the bus: pydantic's own fixed-offset tzinfo, not datetime.UTC.
FROM_JSON = TypeAdapter(datetime).validate_python("2026-03-02T15:04:05Z")
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z$")

CAMPAIGN_EVENTS = [
    "campaign.started",
    "campaign.paused",
    "campaign.resumed",
    "campaign.completed",
    "campaign.cancelled",
]
PUBLIC_CALL_EVENTS = [t.value for t in CallEventType if t.is_public]

DOCUMENTED_KEYS = {
    "id",
    "type",
    "created_at",
    "campaign_id",
    "data",
    "context",
    "attempt",
    "max_attempts",
    "will_retry",
    "next_attempt_at",
}


def make_webhook(**fields: Any) -> Webhook:
    values: dict[str, Any] = {
        "id": "wh_1",
        "campaign_id": "camp_1",
        "environment_id": "env_1",
        "name": "CRM",
        "webhook_url": "https://hooks.example.com/calls",
        "events": [],
        "webhook_secret": "whsec_c2VjcmV0",
        "created_at": CREATED,
    }
    values.update(fields)
    return Webhook.model_validate(values)


def make_call(**fields: Any) -> Call:
    values: dict[str, Any] = {
        "id": "call_1",
        "campaign_id": "camp_1",
        "environment_id": "env_1",
        "to": "+12125550123",
        "scheduled_at": SCHEDULED,
        "scheduling_reason": "immediate",
        "created_at": CREATED,
        "updated_at": CREATED,
    }
    values.update(fields)
    return Call.model_validate(values)


def decode(body: bytes) -> dict[str, Any]:
    decoded = orjson.loads(body)
    assert isinstance(decoded, dict)
    return decoded


# --- wants -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "include_call_events", "event_type", "expected"),
    [
        pytest.param(
            ["campaign_call.completed"],
            False,
            "campaign_call.completed",
            True,
            id="listed-call-event",
        ),
        pytest.param(
            ["campaign.started"], False, "campaign.started", True, id="listed-campaign-event"
        ),
        pytest.param(
            ["campaign_call.completed"],
            False,
            "campaign_call.failed",
            False,
            id="unlisted-call-event",
        ),
        pytest.param(
            ["campaign_call.completed"],
            False,
            "campaign.paused",
            False,
            id="unlisted-campaign-event",
        ),
        pytest.param([], True, "campaign_call.failed", True, id="include-adds-call-event"),
        pytest.param([], True, "campaign.started", False, id="include-not-campaign-event"),
        pytest.param(["campaign.paused"], True, "campaign.paused", True, id="include-keeps-listed"),
        pytest.param([], True, "internal.attempt_ended", False, id="include-not-internal"),
    ],
)
def test_wants(
    events: list[str], include_call_events: bool, event_type: str, expected: bool
) -> None:
    webhook = make_webhook(events=events, include_call_events=include_call_events)

    assert wants(webhook, event_type) is expected


@pytest.mark.parametrize("event_type", PUBLIC_CALL_EVENTS)
def test_include_call_events_adds_every_call_event(event_type: str) -> None:
    webhook = make_webhook(events=["campaign.started"], include_call_events=True)

    assert wants(webhook, event_type) is True


@pytest.mark.parametrize("event_type", CAMPAIGN_EVENTS)
def test_include_call_events_does_not_add_campaign_events(event_type: str) -> None:
    webhook = make_webhook(events=["campaign_call.completed"], include_call_events=True)

    assert wants(webhook, event_type) is False


@pytest.mark.parametrize("event_type", [*PUBLIC_CALL_EVENTS, *CAMPAIGN_EVENTS])
def test_disabled_webhook_gets_nothing(event_type: str) -> None:
    webhook = make_webhook(
        events=[*PUBLIC_CALL_EVENTS, *CAMPAIGN_EVENTS], include_call_events=True, enabled=False
    )

    assert wants(webhook, event_type) is False


def test_every_listable_event_reaches_a_webhook_that_lists_it() -> None:
    for name in EVENT_NAMES:
        assert wants(make_webhook(events=[name]), name), name


def test_no_webhook_subscribes_to_the_test_event() -> None:
    hook = make_webhook(events=list(EVENT_NAMES), include_call_events=True)

    assert not wants(hook, TEST_EVENT)


# --- call_event_body ---------------------------------------------------------------------


def facts(call: Call) -> CallFacts:
    """What the notifier reads of a stored call (CallStore.facts_many)."""
    return CallFacts(call.is_testing, call.scheduled_at, call.created_at, call.context)


CONTEXTS = [
    pytest.param({}, id="empty"),
    pytest.param({"crm_id": "42", "score": 9.5, "vip": True, "note": None}, id="scalars"),
    pytest.param({"lead": {"owner": {"id": 7, "tags": ["a", "b"]}}}, id="nested"),
    pytest.param({"name": "Zoë", "city": "東京", "emoji": "☎️"}, id="unicode"),
    pytest.param({"items": [1, "two", {"three": [3]}, [], None]}, id="lists"),
    pytest.param({"big": 2**53, "neg": -1, "zero": 0, "float": 1e-3}, id="numbers"),
]


@pytest.mark.parametrize("context", CONTEXTS)
def test_body_carries_the_call_context_exactly(context: dict[str, Any]) -> None:
    call = make_call(context=context, payload={"not": "context"})
    event = call_event(call, CallEventType.COMPLETED, NOW, attempt=1, max_attempts=4)

    body = decode(call_event_body(event, facts(call)))

    assert body["context"] == context
    assert orjson.dumps(body["context"]) == orjson.dumps(context)


def test_body_has_the_documented_keys_and_values() -> None:
    call = make_call(status=CallStatus.QUEUED, context={"k": "v"}, is_testing=True)
    event = call_event(
        call,
        CallEventType.NO_ANSWER,
        NOW,
        attempt=2,
        max_attempts=4,
        status="queued",
        outcome="no_answer",
        duration_seconds=0.0,
        will_retry=True,
        next_attempt_at=RETRY_AT,
    )

    body = decode(call_event_body(event, facts(call)))

    assert set(body) == DOCUMENTED_KEYS
    assert body["id"] == event_id_for("call_1", 2, CallEventType.NO_ANSWER)
    assert body["type"] == "campaign_call.no_answer"
    assert body["created_at"] == "2026-03-02T15:04:05Z"
    assert body["campaign_id"] == "camp_1"
    assert body["context"] == {"k": "v"}
    assert body["attempt"] == 2
    assert body["max_attempts"] == 4
    assert body["will_retry"] is True
    assert body["next_attempt_at"] == "2026-03-03T15:04:05Z"
    assert body["data"]["id"] == "call_1"
    assert body["data"]["campaign_id"] == "camp_1"
    assert body["data"]["to"] == "+12125550123"
    assert body["data"]["status"] == "queued"
    assert body["data"]["outcome"] == "no_answer"
    assert body["data"]["is_testing"] is True
    assert body["data"]["scheduled_at"] == "2026-03-02T14:30:00Z"
    assert body["data"]["created_at"] == "2026-03-02T14:00:00Z"


def test_last_attempt_has_no_retry_and_null_next_attempt() -> None:
    call = make_call()
    event = call_event(
        call, CallEventType.FAILED, NOW, attempt=4, max_attempts=4, error="carrier_error"
    )

    body = decode(call_event_body(event, facts(call)))

    assert body["will_retry"] is False
    assert body["next_attempt_at"] is None
    assert body["data"]["error"] == "carrier_error"


def test_body_without_a_stored_call_has_empty_context() -> None:
    event = call_event(
        make_call(context={"k": "v"}),
        CallEventType.REJECTED,
        NOW,
        attempt=0,
        max_attempts=1,
        reason="duplicate",
    )

    body = decode(call_event_body(event, None))

    assert set(body) == DOCUMENTED_KEYS
    assert body["context"] == {}
    assert body["data"]["reason"] == "duplicate"
    assert body["data"]["scheduled_at"] is None
    assert body["data"]["is_testing"] is False


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_rejected_call_never_stored_carries_its_events_context(context: dict[str, Any]) -> None:
    event = call_event(
        make_call(context={"ignored": True}),
        CallEventType.REJECTED,
        NOW,
        attempt=0,
        max_attempts=1,
        status="rejected",
        reason="invalid_number",
        context=context,
    )
    wire = CallEvent.model_validate_json(event.model_dump_json())

    body = decode(call_event_body(wire, None))

    assert set(body) == DOCUMENTED_KEYS
    assert orjson.dumps(body["context"]) == orjson.dumps(context)
    assert body["data"]["reason"] == "invalid_number"


def test_the_stored_calls_context_wins_over_the_events() -> None:
    call = make_call(context={"from": "store"})
    event = call_event(
        call, CallEventType.REJECTED, NOW, attempt=0, max_attempts=1, context={"from": "event"}
    )

    assert decode(call_event_body(event, facts(call)))["context"] == {"from": "store"}


@pytest.mark.parametrize(
    ("occurred_at", "expected"),
    [
        pytest.param(NOW, "2026-03-02T15:04:05Z", id="utc"),
        pytest.param(NOW.replace(microsecond=250000), "2026-03-02T15:04:05.250000Z", id="fraction"),
        pytest.param(
            datetime(2026, 3, 2, 15, 4, 5, tzinfo=timezone(timedelta(0))),
            "2026-03-02T15:04:05Z",
            id="zero-offset",
        ),
        pytest.param(FROM_JSON, "2026-03-02T15:04:05Z", id="parsed-from-json"),
    ],
)
def test_timestamps_are_rfc3339_utc_with_z(occurred_at: datetime, expected: str) -> None:
    call = make_call()
    event = call_event(call, CallEventType.QUEUED, occurred_at, attempt=0, max_attempts=1)

    body = decode(call_event_body(event, facts(call)))

    assert body["created_at"] == expected
    for value in (body["created_at"], body["data"]["scheduled_at"], body["data"]["created_at"]):
        assert RFC3339_UTC.match(value), value


def test_non_utc_timestamps_are_converted_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    call = make_call()
    event = call_event(
        call,
        CallEventType.RETRY_SCHEDULED,
        datetime(2026, 3, 2, 17, 4, 5, tzinfo=plus_two),
        attempt=1,
        max_attempts=2,
        will_retry=True,
        next_attempt_at=datetime(2026, 3, 3, 17, 4, 5, tzinfo=plus_two),
    )

    body = decode(call_event_body(event, facts(call)))

    assert body["created_at"] == "2026-03-02T15:04:05Z"
    assert body["next_attempt_at"] == "2026-03-03T15:04:05Z"


def _campaign() -> Campaign:
    rules = CampaignRules.model_validate({**ALWAYS_OPEN, "name": "Spring", "agent_id": "agent-1"})
    return Campaign(
        **rules.model_dump(),
        id="camp_1",
        environment_id="env_1",
        status=CampaignStatus.ACTIVE,
        created_at=CREATED,
        updated_at=NOW,
    )


def test_a_campaign_event_body_has_the_documented_keys_and_the_move() -> None:
    event = campaign_event(
        CampaignEventType.PAUSED, "camp_1", "env_1", "active", "paused", FROM_JSON
    )

    body = orjson.loads(campaign_event_body(event, _campaign()))

    assert body == {
        "id": event.event_id,
        "type": "campaign.paused",
        "created_at": "2026-03-02T15:04:05Z",
        "campaign_id": "camp_1",
        "data": {
            "id": "camp_1",
            "name": "Spring",
            "status": "paused",
            "previous_status": "active",
            "agent_id": "agent-1",
            "created_at": "2026-03-02T14:00:00Z",
        },
        "context": {},
    }


def test_a_campaign_event_of_a_deleted_campaign_still_names_the_move() -> None:
    event = campaign_event(
        CampaignEventType.CANCELLED, "camp_1", "env_1", "draft", "cancelled", NOW
    )

    data = orjson.loads(campaign_event_body(event, None))["data"]

    assert (data["id"], data["status"], data["previous_status"], data["name"]) == (
        "camp_1",
        "cancelled",
        "draft",
        None,
    )


def test_a_campaign_event_id_is_the_same_for_the_same_move_only() -> None:
    def event_id(event_type: CampaignEventType, at: datetime) -> str:
        return campaign_event(event_type, "camp_1", "env_1", "active", "paused", at).event_id

    assert event_id(CampaignEventType.PAUSED, NOW) == event_id(CampaignEventType.PAUSED, NOW)
    assert event_id(CampaignEventType.PAUSED, NOW) != event_id(
        CampaignEventType.PAUSED, NOW + timedelta(seconds=1)
    )
    assert event_id(CampaignEventType.PAUSED, NOW) != event_id(CampaignEventType.RESUMED, NOW)


@pytest.mark.parametrize("event_type", list(CampaignEventType))
def test_every_campaign_event_type_is_one_a_webhook_may_subscribe_to(
    event_type: CampaignEventType,
) -> None:
    assert event_type.value in CAMPAIGN_EVENTS
