from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from shared.events import (
    CallDue,
    CallEvent,
    CallEventType,
    CallRequested,
    accepted_request,
    call_due,
    call_due_json,
    call_event,
    encode_call_event,
    event_id_for,
)
from shared.models import Call, CallStatus
from shared.rules.input_bounds import MAX_CALL_JSON_BYTES

NOW = datetime(2026, 3, 2, 15, 4, 5, tzinfo=UTC)


def make_call(**fields: object) -> Call:
    values: dict[str, object] = {
        "id": "call_1",
        "campaign_id": "camp_1",
        "environment_id": "env_1",
        "to": "+12125550123",
        "scheduled_at": NOW,
        "scheduling_reason": "immediate",
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return Call.model_validate(values)


@pytest.mark.parametrize("event_type", list(CallEventType))
@pytest.mark.parametrize("attempt", [0, 1, 10])
def test_event_id_is_deterministic(event_type: CallEventType, attempt: int) -> None:
    assert event_id_for("call_1", attempt, event_type) == event_id_for(
        "call_1", attempt, event_type
    )


def test_event_id_is_a_uuid() -> None:
    parsed = uuid.UUID(event_id_for("call_1", 1, CallEventType.COMPLETED))

    assert parsed.version == 5


def test_event_ids_differ_by_attempt_and_type() -> None:
    combos = list(itertools.product(range(5), CallEventType))

    ids = {event_id_for("call_1", attempt, event_type) for attempt, event_type in combos}

    assert len(ids) == len(combos)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        pytest.param(
            ("call_1", 1, CallEventType.STARTED), ("call_1", 2, CallEventType.STARTED), id="attempt"
        ),
        pytest.param(
            ("call_1", 1, CallEventType.STARTED), ("call_1", 1, CallEventType.ANSWERED), id="type"
        ),
        pytest.param(
            ("call_1", 1, CallEventType.STARTED), ("call_2", 1, CallEventType.STARTED), id="call"
        ),
        pytest.param(
            ("call_1", 11, CallEventType.STARTED),
            ("call_11", 1, CallEventType.STARTED),
            id="no-ambiguity-between-call-and-attempt",
        ),
    ],
)
def test_event_id_differs(
    left: tuple[str, int, CallEventType], right: tuple[str, int, CallEventType]
) -> None:
    assert event_id_for(*left) != event_id_for(*right)


def test_call_event_takes_its_id_and_fields_from_the_call() -> None:
    call = make_call(status=CallStatus.IN_PROGRESS)

    event = call_event(call, CallEventType.ANSWERED, NOW, attempt=2, max_attempts=4)

    assert event.event_id == event_id_for("call_1", 2, CallEventType.ANSWERED)
    assert (event.call_id, event.campaign_id, event.environment_id, event.to) == (
        "call_1",
        "camp_1",
        "env_1",
        "+12125550123",
    )
    assert event.status == "in_progress"
    assert (event.attempt, event.max_attempts, event.will_retry) == (2, 4, False)
    assert event.occurred_at == NOW


def test_call_event_replayed_later_keeps_its_id() -> None:
    call = make_call()
    first = call_event(call, CallEventType.QUEUED, NOW, attempt=0, max_attempts=4)
    replay = call_event(call, CallEventType.QUEUED, NOW.replace(hour=20), attempt=0, max_attempts=4)

    assert first.event_id == replay.event_id


def test_call_event_round_trips_through_json() -> None:
    event = call_event(
        make_call(),
        CallEventType.RETRY_SCHEDULED,
        NOW,
        attempt=1,
        max_attempts=4,
        status="queued",
        outcome="busy",
        will_retry=True,
        next_attempt_at=NOW.replace(day=3),
    )

    assert CallEvent.model_validate_json(event.model_dump_json()) == event


# Every key of a call event's message as it was before rejected events carried a context.
MESSAGE_KEYS = {
    "schema_version",
    "event_id",
    "type",
    "call_id",
    "campaign_id",
    "environment_id",
    "to",
    "attempt",
    "max_attempts",
    "status",
    "occurred_at",
    "outcome",
    "error",
    "duration_seconds",
    "will_retry",
    "next_attempt_at",
    "reason",
}


def test_an_event_without_a_context_has_none_in_its_message() -> None:
    event = call_event(
        make_call(context={"k": "v"}), CallEventType.STARTED, NOW, attempt=1, max_attempts=1
    )

    message = orjson.loads(event.model_dump_json())

    assert set(message) == MESSAGE_KEYS
    assert CallEvent.model_validate_json(event.model_dump_json()).context is None


@pytest.mark.parametrize("context", [{}, {"crm": {"id": 7, "tags": ["a", "ü"]}, "n": None}])
def test_a_rejected_event_carries_the_requests_context_through_json(
    context: dict[str, object],
) -> None:
    event = call_event(
        make_call(),
        CallEventType.REJECTED,
        NOW,
        attempt=0,
        max_attempts=1,
        status="rejected",
        reason="duplicate",
        context=context,
    )

    message = orjson.loads(event.model_dump_json())

    assert set(message) == MESSAGE_KEYS | {"context"}
    assert message["context"] == context
    assert CallEvent.model_validate_json(event.model_dump_json()) == event


# The call events API.md documents for webhooks.
DOCUMENTED_CALL_EVENTS = {
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
}


def test_public_event_types_are_the_documented_ones() -> None:
    public = {t.value for t in CallEventType if t.is_public}

    assert public == DOCUMENTED_CALL_EVENTS
    assert not CallEventType.ATTEMPT_ENDED.is_public


def _as_model(call: Call) -> CallRequested:
    return CallRequested(
        campaign_id=call.campaign_id,
        call_id=call.id,
        to=call.to,
        payload=call.payload,
        context=call.context,
        is_testing=call.is_testing,
        allow_duplicates=call.allow_duplicates,
        accepted=True,
        requested_at=call.created_at,
    )


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="plain"),
        pytest.param(
            {"created_at": datetime(2026, 3, 2, 9, 30, 15, 123, tzinfo=UTC)}, id="microseconds"
        ),
        pytest.param(
            {
                "payload": {"name": "Zoë ☎", "n": [1, 2.5, None, True], "deep": {"a": {}}},
                "context": {"crm": "0042", "score": 0.1},
                "is_testing": True,
                "allow_duplicates": True,
            },
            id="payload-context-and-flags",
        ),
    ],
)
def test_an_accepted_request_is_the_models_own_json(fields: dict[str, object]) -> None:
    call = make_call(**fields)

    encoded = accepted_request(call)

    assert encoded == _as_model(call).model_dump_json().encode()
    assert CallRequested.model_validate_json(encoded) == _as_model(call)


@pytest.mark.parametrize("name", ["payload", "context"])
def test_a_call_request_over_the_size_bound_is_invalid_unless_already_accepted(
    name: str,
) -> None:
    big = {"k": "x" * MAX_CALL_JSON_BYTES}
    fields = {"campaign_id": "c", "to": "+12125550123", name: big}
    with pytest.raises(ValidationError, match=f"{name} must not be greater than"):
        CallRequested.model_validate(fields)
    # One the API accepted was checked there (or stored before the bound): queued as it is.
    assert getattr(CallRequested.model_validate({**fields, "accepted": True}), name) == big


@pytest.mark.parametrize(
    ("fields", "due_at", "released_at"),
    [
        pytest.param({"attempt": 1}, NOW, NOW, id="whole-seconds"),
        pytest.param(
            {"attempt": 3, "is_testing": True, "payload": {"x": 1}},
            datetime(2026, 3, 2, 9, 30, 15, 123, tzinfo=UTC),
            datetime(2026, 3, 2, 9, 30, 16, 999_999, tzinfo=UTC),
            id="microseconds-and-flags",
        ),
    ],
)
def test_a_due_message_is_the_models_own_json(
    fields: dict[str, object], due_at: datetime, released_at: datetime
) -> None:
    call = make_call(**fields)

    encoded = call_due_json(call, due_at, released_at)

    assert encoded == call_due(call, due_at, released_at).model_dump_json().encode()
    assert CallDue.model_validate_json(encoded) == call_due(call, due_at, released_at)


@pytest.mark.parametrize("event_type", list(CallEventType))
@pytest.mark.parametrize("call_id", ["call_1", "Zx8kQ2mN4pR6tV8wY0aB1c", "ümlaut:call", "x" * 64])
@pytest.mark.parametrize("attempt", [0, 1, 17])
def test_event_id_is_uuid5_of_call_attempt_and_type(
    event_type: CallEventType, call_id: str, attempt: int
) -> None:
    namespace = uuid.UUID("6f1c2e0a-4b7d-4c36-9a57-2f7c0d1e8b90")

    expected = str(uuid.uuid5(namespace, f"{call_id}:{attempt}:{event_type.value}"))

    assert event_id_for(call_id, attempt, event_type) == expected


@pytest.mark.parametrize(
    "occurred_at",
    [
        NOW,
        NOW.replace(microsecond=1),
        NOW.replace(microsecond=123456),
        NOW.astimezone(timezone(timedelta(hours=-5))),
    ],
)
@pytest.mark.parametrize("duration", [None, 0, 0.0, 7, 1.5, 0.001, 1e-7, 86_400.25])
@pytest.mark.parametrize(
    ("status", "outcome", "error"),
    [(None, None, None), ("completed", "completed", None), ("failed", "failed", "carrier_error")],
)
def test_encoded_event_is_the_models_json(
    occurred_at: datetime,
    duration: float | None,
    status: str | None,
    outcome: str | None,
    error: str | None,
) -> None:
    call = make_call(status=CallStatus.IN_PROGRESS, attempt=2, is_testing=True)
    for event_type in (CallEventType.STARTED, CallEventType.ATTEMPT_ENDED):
        fields: dict[str, Any] = {
            "attempt": 2,
            "max_attempts": 3,
            "status": status,
            "outcome": outcome,
            "error": error,
            "duration_seconds": duration,
        }

        encoded = encode_call_event(call, event_type, occurred_at, **fields)

        assert (
            encoded
            == call_event(call, event_type, occurred_at, **fields).model_dump_json().encode()
        )
        assert CallEvent.model_validate_json(encoded).event_id == event_id_for(
            call.id, 2, event_type
        )


@pytest.mark.parametrize(
    ("fields", "occurred_at", "next_attempt_at", "reason"),
    [
        pytest.param({}, NOW, NOW, "immediate", id="whole-seconds"),
        pytest.param(
            {"status": CallStatus.QUEUED, "attempt": 2, "to": "+44 20 \u00e9"},
            datetime(2026, 3, 2, 9, 30, 15, 123, tzinfo=UTC),
            datetime(2026, 3, 2, 9, 30, 16, 120_000, tzinfo=UTC),
            "",
            id="microseconds-and-empty-reason",
        ),
        pytest.param({}, NOW, None, None, id="no-next-attempt"),
    ],
)
def test_a_queued_event_is_the_models_own_json(
    fields: dict[str, object],
    occurred_at: datetime,
    next_attempt_at: datetime | None,
    reason: str | None,
) -> None:
    call = make_call(**fields)

    encoded = encode_call_event(
        call,
        CallEventType.QUEUED,
        occurred_at,
        attempt=1,
        max_attempts=3,
        next_attempt_at=next_attempt_at,
        reason=reason,
    )

    model = call_event(
        call,
        CallEventType.QUEUED,
        occurred_at,
        attempt=1,
        max_attempts=3,
        next_attempt_at=next_attempt_at,
        reason=reason,
    )
    assert encoded == model.model_dump_json().encode()
    assert CallEvent.model_validate_json(encoded) == model
