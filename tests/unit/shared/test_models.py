from __future__ import annotations

from datetime import date
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from shared.models import (
    Campaign,
    CampaignRules,
    CampaignType,
    DncSource,
    TimeRange,
    hhmm_seconds,
)

BASE: dict[str, Any] = {
    "name": "Spring",
    "campaign_type": "sales",
    "agent_id": "agent_1",
    "start_date": "2026-04-01",
}


def rules(**fields: Any) -> CampaignRules:
    return CampaignRules.model_validate({**BASE, **fields})


def failing_fields(**fields: Any) -> set[str]:
    """The dotted locations pydantic reports; fails the test if the body is accepted."""
    with pytest.raises(ValidationError) as caught:
        rules(**fields)
    return {".".join(str(part) for part in error["loc"]) for error in caught.value.errors()}


def ranges(*spans: str) -> list[dict[str, str]]:
    return [{"start": span.split("-")[0], "end": span.split("-")[1]} for span in spans]


# --- defaults ----------------------------------------------------------------------------


def test_defaults() -> None:
    campaign = rules()

    assert campaign.campaign_type is CampaignType.SALES
    assert campaign.start_date == date(2026, 4, 1)
    assert campaign.end_date is None
    assert campaign.description is None
    assert campaign.recipient_local_hours == TimeRange(start="08:00", end="21:00")
    assert campaign.max_retries == 3
    assert campaign.retry_cooldown_hours == 24
    assert campaign.max_concurrent_calls == 10
    assert campaign.calls_per_minute == 60
    assert campaign.initial_call_delay == 0
    assert campaign.timezone == "UTC"
    assert campaign.enable_post_completion_cooldown is False
    assert campaign.post_completion_cooldown_hours == 168
    assert campaign.do_not_call_enabled is True
    assert campaign.do_not_call_list_source is DncSource.ENVIRONMENT
    assert campaign.auto_add_to_dnc_enabled is False
    assert campaign.auto_dnc_trigger_statuses == []
    assert campaign.auto_dnc_trigger_errors == []
    assert campaign.from_number is None
    for field in ("success", "voicemail", "no_answer", "busy", "failed"):
        assert getattr(campaign, f"{field}_cooldown_hours") is None


def test_defaults_are_not_shared_between_instances() -> None:
    first, second = rules(), rules()
    first.days_of_week.append(6)
    first.auto_dnc_trigger_statuses.append("completed")

    assert second.days_of_week == [1, 2, 3, 4, 5]
    assert second.auto_dnc_trigger_statuses == []


def test_recipient_local_hours_can_be_turned_off() -> None:
    assert rules(recipient_local_hours=None).recipient_local_hours is None


def test_unknown_fields_are_ignored() -> None:
    assert not hasattr(rules(surprise="x"), "surprise")


@pytest.mark.parametrize("field", ["name", "campaign_type", "agent_id", "start_date"])
def test_required_fields(field: str) -> None:
    body = {k: v for k, v in BASE.items() if k != field}

    with pytest.raises(ValidationError) as caught:
        CampaignRules.model_validate(body)

    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [((field,), "missing")]


# --- days_of_week ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "days",
    [
        pytest.param([1], id="monday"),
        pytest.param([7], id="sunday"),
        pytest.param([1, 2, 3, 4, 5, 6, 7], id="every-day"),
        pytest.param([7, 3, 1], id="any-order"),
    ],
)
def test_days_of_week_accepted(days: list[int]) -> None:
    assert rules(days_of_week=days).days_of_week == days


@pytest.mark.parametrize(
    "days",
    [
        pytest.param([], id="empty"),
        pytest.param([0], id="zero"),
        pytest.param([8], id="eight"),
        pytest.param([-1, 2], id="negative"),
        pytest.param([1, 2, 2], id="repeat"),
        pytest.param([5, 5], id="only-repeats"),
        pytest.param([1, 8, 8], id="out-of-range-and-repeat"),
    ],
)
def test_days_of_week_refused(days: list[int]) -> None:
    assert failing_fields(days_of_week=days) == {"days_of_week"}


# --- call_time_ranges --------------------------------------------------------------------


@pytest.mark.parametrize(
    "spans",
    [
        pytest.param(("09:00-17:00",), id="office-hours"),
        pytest.param(("00:00-24:00",), id="whole-day"),
        pytest.param(("18:00-24:00",), id="until-midnight"),
        pytest.param(("00:00-00:01",), id="first-minute"),
        pytest.param(("23:59-24:00",), id="last-minute"),
        pytest.param(("09:00-12:00", "13:00-17:00"), id="lunch-break"),
        pytest.param(("09:00-12:00", "12:00-17:00"), id="adjacent"),
        pytest.param(("13:00-17:00", "09:00-12:00"), id="unsorted"),
        pytest.param(("06:00-07:00", "07:00-08:00", "20:00-24:00"), id="three"),
    ],
)
def test_call_time_ranges_accepted(spans: tuple[str, ...]) -> None:
    campaign = rules(call_time_ranges=ranges(*spans))

    assert [f"{r.start}-{r.end}" for r in campaign.call_time_ranges] == list(spans)


@pytest.mark.parametrize(
    ("spans", "field"),
    [
        pytest.param(("9:00-17:00",), "call_time_ranges.0.start", id="one-digit-hour"),
        pytest.param(("09:00-17:0",), "call_time_ranges.0.end", id="one-digit-minute"),
        pytest.param(("0900-17:00",), "call_time_ranges.0.start", id="no-colon"),
        pytest.param(("09:60-17:00",), "call_time_ranges.0.start", id="minute-60"),
        pytest.param(("09:00-25:00",), "call_time_ranges.0.end", id="hour-25"),
        pytest.param(("09:00-24:01",), "call_time_ranges.0.end", id="after-24"),
        pytest.param(("09:00:00-17:00",), "call_time_ranges.0.start", id="seconds"),
        pytest.param((" 09:00-17:00",), "call_time_ranges.0.start", id="leading-space"),
        pytest.param(("17:00-09:00",), "call_time_ranges.0.end", id="end-before-start"),
        pytest.param(("09:00-09:00",), "call_time_ranges.0.end", id="empty-range"),
        pytest.param(("24:00-24:00",), "call_time_ranges.0.end", id="start-at-24"),
        pytest.param(("09:00-12:00", "11:00-13:00"), "call_time_ranges", id="overlap"),
        pytest.param(("09:00-17:00", "10:00-11:00"), "call_time_ranges", id="contained"),
        pytest.param(("09:00-12:00", "09:00-12:00"), "call_time_ranges", id="identical"),
        pytest.param(("13:00-15:00", "09:00-13:01"), "call_time_ranges", id="overlap-unsorted"),
        pytest.param(
            ("08:00-09:00", "10:00-12:00", "11:59-13:00"),
            "call_time_ranges",
            id="overlap-among-three",
        ),
    ],
)
def test_call_time_ranges_refused(spans: tuple[str, ...], field: str) -> None:
    assert failing_fields(call_time_ranges=ranges(*spans)) == {field}


@pytest.mark.parametrize(
    "spans",
    [pytest.param(("09:00-17:00\n",), id="end"), pytest.param(("09:00\n-17:00",), id="start")],
)
def test_call_time_ranges_refuse_a_trailing_newline(spans: tuple[str, ...]) -> None:
    assert failing_fields(call_time_ranges=ranges(*spans))


def test_call_time_ranges_need_at_least_one() -> None:
    assert failing_fields(call_time_ranges=[]) == {"call_time_ranges"}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:00", 0), ("09:30", 34_200), ("23:59", 86_340), ("24:00", 86_400)],
)
def test_hhmm_seconds(text: str, seconds: int) -> None:
    assert hhmm_seconds(text) == seconds


@pytest.mark.parametrize(
    ("hours", "field"),
    [
        pytest.param({"start": "21:00", "end": "08:00"}, "recipient_local_hours.end", id="order"),
        pytest.param({"start": "8:00", "end": "21:00"}, "recipient_local_hours.start", id="format"),
    ],
)
def test_recipient_local_hours_refused(hours: dict[str, str], field: str) -> None:
    assert failing_fields(recipient_local_hours=hours) == {field}


# --- timezone ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "zone", ["America/New_York", "Europe/London", "Asia/Kolkata", "UTC", "Etc/GMT+5"]
)
def test_timezone_accepted(zone: str) -> None:
    assert rules(timezone=zone).timezone == zone


@pytest.mark.parametrize(
    "zone",
    [
        pytest.param("Mars/Olympus", id="unknown"),
        pytest.param("", id="empty"),
        pytest.param("+05:00", id="offset"),
        pytest.param("America/New_York ", id="trailing-space"),
        pytest.param("../../etc/passwd", id="path"),
        pytest.param("America/" + "X" * 43, id="longer-than-50"),
    ],
)
def test_timezone_refused(zone: str) -> None:
    assert failing_fields(timezone=zone) == {"timezone"}


# --- dates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("end_date", "expected"),
    [
        pytest.param(None, None, id="open-ended"),
        pytest.param("2026-04-02", date(2026, 4, 2), id="next-day"),
        pytest.param("2027-01-01", date(2027, 1, 1), id="next-year"),
    ],
)
def test_end_date_accepted(end_date: str | None, expected: date | None) -> None:
    assert rules(end_date=end_date).end_date == expected


@pytest.mark.parametrize("end_date", ["2026-04-01", "2026-03-31", "2025-12-31"])
def test_end_date_must_be_after_start_date(end_date: str) -> None:
    with pytest.raises(ValidationError, match="must be a date after start_date"):
        rules(end_date=end_date)


# --- numeric ranges ----------------------------------------------------------------------


HOUR_FIELDS = [
    "retry_cooldown_hours",
    "success_cooldown_hours",
    "voicemail_cooldown_hours",
    "no_answer_cooldown_hours",
    "busy_cooldown_hours",
    "failed_cooldown_hours",
    "post_completion_cooldown_hours",
]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_retries", 0),
        ("max_retries", 10),
        ("initial_call_delay", 0),
        ("initial_call_delay", 86_400),
        ("max_concurrent_calls", 1),
        ("calls_per_minute", 1),
        *[(field, value) for field in HOUR_FIELDS for value in (1, 1.5, 168)],
    ],
)
def test_numbers_within_range_accepted(field: str, value: float) -> None:
    assert getattr(rules(**{field: value}), field) == value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_retries", -1),
        ("max_retries", 11),
        ("initial_call_delay", -1),
        ("max_concurrent_calls", 0),
        ("calls_per_minute", 0),
        *[(field, value) for field in HOUR_FIELDS for value in (0, 0.99, 168.01, -24)],
    ],
)
def test_numbers_out_of_range_refused(field: str, value: float) -> None:
    assert failing_fields(**{field: value}) == {field}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("name", "", id="empty-name"),
        pytest.param("name", "x" * 256, id="long-name"),
        pytest.param("agent_id", "", id="empty-agent"),
        pytest.param("campaign_type", "cold_call", id="unknown-type"),
        pytest.param("do_not_call_list_source", "global", id="unknown-dnc-source"),
        pytest.param("start_date", "01/04/2026", id="start-date-format"),
    ],
)
def test_other_fields_refused(field: str, value: Any) -> None:
    assert failing_fields(**{field: value}) == {field}


def test_name_of_255_characters_accepted() -> None:
    assert rules(name="x" * 255).name == "x" * 255


# --- from_number -------------------------------------------------------------------------


def test_a_campaign_stored_without_from_number_reads_as_none() -> None:
    stored = {
        **BASE,
        "id": "c1",
        "environment_id": "env-a",
        "status": "active",
        "created_at": "2026-03-01T00:00:00Z",
        "updated_at": "2026-03-01T00:00:00Z",
    }

    assert Campaign.model_validate_json(orjson.dumps(stored)).from_number is None


def test_a_stored_from_number_is_read_as_stored() -> None:
    # The API checked it on the way in; reading it back must not depend on phonenumbers'
    # metadata of the day.
    assert rules(from_number="+10000000000").from_number == "+10000000000"
