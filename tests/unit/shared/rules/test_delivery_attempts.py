from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from shared.rules.delivery_attempts import AttemptRecord, Trigger
from shared.rules.delivery_retries import DeliveryState

NOW = datetime(2026, 3, 2, 15, 4, 5, 250000, tzinfo=UTC)

DOCUMENTED_KEYS = {
    "delivery_id",
    "event_id",
    "event_type",
    "attempt",
    "trigger",
    "success",
    "status_code",
    "latency_ms",
    "error",
    "attempted_at",
    "state",
    "next_attempt_at",
    "response_body",
    "response_truncated",
}


BASE = AttemptRecord(
    delivery_id="d_1",
    event_id="evt_1",
    event_type="campaign_call.completed",
    attempt=2,
    trigger=Trigger.RETRY,
    status_code=500,
    latency_ms=12.3456,
    error=None,
    attempted_at=NOW,
    state=DeliveryState.PENDING,
    next_attempt_at=NOW + timedelta(seconds=2),
    response_body='{"error": "busy"}',
)


def make_record(**fields: Any) -> AttemptRecord:
    return replace(BASE, **fields)


def test_view_has_the_documented_keys_and_values() -> None:
    view = make_record().view()

    assert set(view) == DOCUMENTED_KEYS
    assert view == {
        "delivery_id": "d_1",
        "event_id": "evt_1",
        "event_type": "campaign_call.completed",
        "attempt": 2,
        "trigger": "retry",
        "success": False,
        "status_code": 500,
        "latency_ms": 12.3,
        "error": None,
        "attempted_at": "2026-03-02T15:04:05.250000Z",
        "state": "pending",
        "next_attempt_at": "2026-03-02T15:04:07.250000Z",
        "response_body": '{"error": "busy"}',
        "response_truncated": False,
    }


@pytest.mark.parametrize(
    ("status_code", "success"),
    [(200, True), (204, True), (299, True), (300, False), (404, False), (None, False)],
)
def test_success_is_a_2xx(status_code: int | None, success: bool) -> None:
    assert make_record(status_code=status_code).view()["success"] is success


def test_a_failed_connection_has_an_error_and_no_status() -> None:
    view = make_record(
        status_code=None,
        error="Timed out after 30 s.",
        state=DeliveryState.FAILED,
        next_attempt_at=None,
        response_body=None,
    ).view()

    assert view["status_code"] is None
    assert view["response_body"] is None
    assert view["error"] == "Timed out after 30 s."
    assert view["state"] == "failed"
    assert view["next_attempt_at"] is None


def test_a_truncated_answer_says_so() -> None:
    view = make_record(response_body="x" * 65_536, response_truncated=True).view()

    assert (len(view["response_body"]), view["response_truncated"]) == (65_536, True)
    assert AttemptRecord.from_json(orjson.dumps(view)).response_truncated is True


def test_an_entry_recorded_before_answers_were_kept_reads_without_one() -> None:
    view = make_record().view()
    del view["response_body"], view["response_truncated"]

    read = AttemptRecord.from_json(orjson.dumps(view))

    assert (read.response_body, read.response_truncated) == (None, False)
    assert read == make_record(response_body=None, latency_ms=12.3)


@pytest.mark.parametrize("trigger", list(Trigger))
def test_round_trips_through_json(trigger: Trigger) -> None:
    record = make_record(trigger=trigger, latency_ms=12.3)

    stored = record.to_json()

    assert AttemptRecord.from_json(stored) == record
    assert orjson.loads(stored) == record.view()


def test_timestamps_are_utc_with_z_whatever_the_offset() -> None:
    plus_two = timezone(timedelta(hours=2))
    view = make_record(attempted_at=datetime(2026, 3, 2, 17, 4, 5, tzinfo=plus_two)).view()

    assert view["attempted_at"] == "2026-03-02T15:04:05Z"
