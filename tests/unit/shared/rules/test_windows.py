from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.rules.input_bounds import MAX_INITIAL_CALL_DELAY_S
from shared.rules.windows import (
    CallingPolicy,
    Closed,
    DailyRange,
    Schedule,
    SchedulingReason,
    allowed_intervals,
    is_allowed,
    next_allowed_time,
)

NY = "America/New_York"
LONDON = "Europe/London"
ADELAIDE = "Australia/Adelaide"
ALL_DAYS = frozenset(range(1, 8))
WEEKDAYS = frozenset(range(1, 6))
DAYTIME = DailyRange(8 * 3600, 21 * 3600)

IMMEDIATE = SchedulingReason.IMMEDIATE
OUTSIDE = SchedulingReason.OUTSIDE_CALL_HOURS
RECIPIENT = SchedulingReason.RECIPIENT_LOCAL_HOURS
DELAY = SchedulingReason.INITIAL_DELAY
COOLDOWN = SchedulingReason.COOLDOWN
BEFORE_START = SchedulingReason.BEFORE_START_DATE


def hm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def policy(
    tz: str = NY,
    *,
    days: frozenset[int] = ALL_DAYS,
    ranges: tuple[str, ...] = ("09:00-17:00",),
    start: date = date(2026, 1, 1),
    end: date | None = None,
    delay: int = 0,
    hours: DailyRange | None = None,
) -> CallingPolicy:
    daily = tuple(DailyRange(hm(r.split("-")[0]), hm(r.split("-")[1])) for r in ranges)
    return CallingPolicy(tz, days, daily, start, end, delay, hours)


def local(tz: str, text: str) -> datetime:
    """A wall time in `tz` (first occurrence when ambiguous) as a UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


def ny(text: str) -> datetime:
    return local(NY, text)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def check(
    p: CallingPolicy,
    zones: tuple[str, ...],
    now: datetime,
    expected: Schedule | Closed,
    not_before: datetime | None = None,
) -> None:
    result = next_allowed_time(p, zones, now, not_before)
    assert result == expected
    if isinstance(result, Schedule):
        assert result.at.tzinfo is UTC
        assert is_allowed(p, zones, result.at)
        if result.at != now and result.reason in (OUTSIDE, RECIPIENT):
            assert not is_allowed(p, zones, result.at - timedelta(seconds=1))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(
            ny("2026-05-04 09:00:00"),
            Schedule(ny("2026-05-04 09:00"), IMMEDIATE),
            id="opens-at-09:00:00",
        ),
        pytest.param(
            ny("2026-05-04 08:59:59"),
            Schedule(ny("2026-05-04 09:00"), OUTSIDE),
            id="08:59:59-waits-a-second",
        ),
        pytest.param(
            ny("2026-05-04 08:59:59.999999"),
            Schedule(ny("2026-05-04 09:00"), OUTSIDE),
            id="08:59:59.999999-rounds-to-opening",
        ),
        pytest.param(
            ny("2026-05-04 16:59:59"),
            Schedule(ny("2026-05-04 16:59:59"), IMMEDIATE),
            id="16:59:59-allowed",
        ),
        pytest.param(
            ny("2026-05-04 16:59:59.999999"),
            Schedule(ny("2026-05-04 16:59:59.999999"), IMMEDIATE),
            id="16:59:59.999999-kept-unchanged",
        ),
        pytest.param(
            ny("2026-05-04 17:00:00"),
            Schedule(ny("2026-05-05 09:00"), OUTSIDE),
            id="17:00:00-closed-next-day",
        ),
        pytest.param(
            ny("2026-05-04 23:30:00"),
            Schedule(ny("2026-05-05 09:00"), OUTSIDE),
            id="late-evening-next-day",
        ),
    ],
)
def test_single_range_edges(now: datetime, expected: Schedule) -> None:
    check(policy(), (), now, expected)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(
            ny("2026-05-04 11:59:59"),
            Schedule(ny("2026-05-04 11:59:59"), IMMEDIATE),
            id="last-second-before-lunch",
        ),
        pytest.param(
            ny("2026-05-04 12:00:00"), Schedule(ny("2026-05-04 13:00"), OUTSIDE), id="lunch-starts"
        ),
        pytest.param(
            ny("2026-05-04 12:59:59.5"),
            Schedule(ny("2026-05-04 13:00"), OUTSIDE),
            id="end-of-lunch",
        ),
        pytest.param(
            ny("2026-05-04 13:00:00"),
            Schedule(ny("2026-05-04 13:00"), IMMEDIATE),
            id="afternoon-opens",
        ),
        pytest.param(
            ny("2026-05-04 17:00:00"),
            Schedule(ny("2026-05-05 09:00"), OUTSIDE),
            id="after-afternoon",
        ),
    ],
)
def test_lunch_break(now: datetime, expected: Schedule) -> None:
    check(policy(ranges=("09:00-12:00", "13:00-17:00")), (), now, expected)


@pytest.mark.parametrize(
    ("ranges", "now", "expected"),
    [
        pytest.param(
            ("20:00-24:00",),
            ny("2026-05-04 23:59:59"),
            Schedule(ny("2026-05-04 23:59:59"), IMMEDIATE),
            id="23:59:59-inside-24:00-end",
        ),
        pytest.param(
            ("20:00-24:00",),
            ny("2026-05-05 00:00:00"),
            Schedule(ny("2026-05-05 20:00"), OUTSIDE),
            id="midnight-outside",
        ),
        pytest.param(
            ("20:00-24:00",),
            ny("2026-05-04 19:59:59"),
            Schedule(ny("2026-05-04 20:00"), OUTSIDE),
            id="before-evening",
        ),
        pytest.param(
            ("00:00-02:00", "20:00-24:00"),
            ny("2026-05-05 00:00:00"),
            Schedule(ny("2026-05-05 00:00"), IMMEDIATE),
            id="midnight-in-next-range",
        ),
        pytest.param(
            ("00:00-24:00",),
            ny("2026-05-05 00:00:00"),
            Schedule(ny("2026-05-05 00:00"), IMMEDIATE),
            id="whole-day",
        ),
    ],
)
def test_end_of_day(ranges: tuple[str, ...], now: datetime, expected: Schedule) -> None:
    check(policy(ranges=ranges), (), now, expected)


def test_24_00_end_joins_next_day_range() -> None:
    p = policy(ranges=("00:00-02:00", "20:00-24:00"))
    pieces = allowed_intervals(p, (), ny("2026-05-04 12:00"), ny("2026-05-05 12:00"))
    assert pieces == [(ny("2026-05-04 20:00"), ny("2026-05-05 02:00"))]


@pytest.mark.parametrize(
    ("days", "now", "expected"),
    [
        pytest.param(
            WEEKDAYS,
            ny("2026-05-06 10:00"),
            Schedule(ny("2026-05-06 10:00"), IMMEDIATE),
            id="wednesday-open",
        ),
        pytest.param(
            WEEKDAYS,
            ny("2026-05-08 17:00"),
            Schedule(ny("2026-05-11 09:00"), OUTSIDE),
            id="friday-close-to-monday",
        ),
        pytest.param(
            WEEKDAYS,
            ny("2026-05-09 10:00"),
            Schedule(ny("2026-05-11 09:00"), OUTSIDE),
            id="saturday-to-monday",
        ),
        pytest.param(
            WEEKDAYS,
            ny("2026-05-10 23:59:59"),
            Schedule(ny("2026-05-11 09:00"), OUTSIDE),
            id="sunday-night-to-monday",
        ),
        pytest.param(
            frozenset({6, 7}),
            ny("2026-05-08 12:00"),
            Schedule(ny("2026-05-09 09:00"), OUTSIDE),
            id="weekend-only-friday-to-saturday",
        ),
        pytest.param(
            frozenset({3}),
            ny("2026-05-06 17:00"),
            Schedule(ny("2026-05-13 09:00"), OUTSIDE),
            id="wednesday-only-a-week-later",
        ),
    ],
)
def test_days_of_week(days: frozenset[int], now: datetime, expected: Schedule) -> None:
    check(policy(days=days), (), now, expected)


@pytest.mark.parametrize(
    ("p", "now", "expected"),
    [
        pytest.param(
            policy(ranges=("00:00-24:00",), start=date(2026, 6, 1)),
            ny("2026-05-20 12:00"),
            Schedule(ny("2026-06-01 00:00"), BEFORE_START),
            id="opens-at-start-of-start-date",
        ),
        pytest.param(
            policy(start=date(2026, 6, 1)),
            ny("2026-05-20 12:00"),
            Schedule(ny("2026-06-01 09:00"), OUTSIDE),
            id="start-date-then-first-window",
        ),
        pytest.param(
            policy(start=date(2026, 6, 1)),
            ny("2026-06-01 10:00"),
            Schedule(ny("2026-06-01 10:00"), IMMEDIATE),
            id="on-start-date",
        ),
        pytest.param(
            policy(ranges=("00:00-24:00",), days=WEEKDAYS, start=date(2026, 5, 9)),
            ny("2026-05-01 12:00"),
            Schedule(ny("2026-05-11 00:00"), OUTSIDE),
            id="start-on-saturday-weekdays-only",
        ),
        pytest.param(
            policy(ranges=("00:00-24:00",), start=date(2026, 6, 1)),
            utc("2026-06-01 03:59:59"),
            Schedule(ny("2026-06-01 00:00"), BEFORE_START),
            id="start-date-in-campaign-zone-not-utc",
        ),
    ],
)
def test_start_date(p: CallingPolicy, now: datetime, expected: Schedule) -> None:
    check(p, (), now, expected)


@pytest.mark.parametrize(
    ("p", "now", "expected"),
    [
        pytest.param(
            policy(end=date(2026, 5, 31)),
            ny("2026-05-31 16:59:59"),
            Schedule(ny("2026-05-31 16:59:59"), IMMEDIATE),
            id="last-second-of-last-window",
        ),
        pytest.param(
            policy(ranges=("00:00-24:00",), end=date(2026, 5, 31)),
            ny("2026-05-31 23:59:59.999999"),
            Schedule(ny("2026-05-31 23:59:59.999999"), IMMEDIATE),
            id="last-instant-of-end-date",
        ),
        pytest.param(
            policy(end=date(2026, 5, 31)),
            ny("2026-06-01 00:00"),
            Closed("end_date_passed"),
            id="end-date-passed-at-midnight",
        ),
        pytest.param(
            policy(end=date(2026, 5, 31)),
            ny("2026-07-04 10:00"),
            Closed("end_date_passed"),
            id="end-date-long-passed",
        ),
        pytest.param(
            policy(end=date(2026, 5, 31)),
            ny("2026-05-31 17:00"),
            Closed("no_window_before_end_date"),
            id="last-window-closed",
        ),
        pytest.param(
            policy(days=WEEKDAYS, end=date(2026, 5, 31)),
            ny("2026-05-30 10:00"),
            Closed("no_window_before_end_date"),
            id="only-weekend-left",
        ),
        pytest.param(
            policy(end=date(2026, 5, 31), delay=2 * 86400),
            ny("2026-05-30 10:00"),
            Closed("no_window_before_end_date"),
            id="delay-beyond-end-date",
        ),
        pytest.param(
            policy(start=date(2026, 6, 1), end=date(2026, 5, 31)),
            ny("2026-05-20 10:00"),
            Closed("no_window_before_end_date"),
            id="end-before-start",
        ),
    ],
)
def test_end_date(p: CallingPolicy, now: datetime, expected: Schedule | Closed) -> None:
    check(p, (), now, expected)


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        pytest.param(policy(hours=DAYTIME), Closed("no_window"), id="open-campaign"),
        pytest.param(
            policy(hours=DAYTIME, end=date(2026, 12, 31)),
            Closed("no_window_before_end_date"),
            id="with-end-date",
        ),
        pytest.param(policy(days=frozenset()), Closed("no_window"), id="no-days"),
    ],
)
def test_no_window_at_all(p: CallingPolicy, expected: Closed) -> None:
    # New York office hours never meet 08:00-21:00 in Tokyo.
    zones = ("Asia/Tokyo",) if p.recipient_local_hours else ()
    assert next_allowed_time(p, zones, ny("2026-05-04 10:00")) == expected


@pytest.mark.parametrize(
    ("now", "not_before", "delay", "expected"),
    [
        pytest.param(
            ny("2026-05-04 10:00"),
            None,
            600,
            Schedule(ny("2026-05-04 10:10"), DELAY),
            id="delay-inside-window",
        ),
        pytest.param(
            ny("2026-05-04 10:00:00.25"),
            None,
            600,
            Schedule(ny("2026-05-04 10:10:00.25"), DELAY),
            id="delay-keeps-microseconds",
        ),
        pytest.param(
            ny("2026-05-04 16:55"),
            None,
            600,
            Schedule(ny("2026-05-05 09:00"), OUTSIDE),
            id="delay-past-closing",
        ),
        pytest.param(
            ny("2026-05-04 08:00"),
            None,
            600,
            Schedule(ny("2026-05-04 09:00"), OUTSIDE),
            id="delay-before-opening",
        ),
        pytest.param(
            ny("2026-05-04 10:00"),
            ny("2026-05-04 11:30"),
            0,
            Schedule(ny("2026-05-04 11:30"), COOLDOWN),
            id="cooldown-inside-window",
        ),
        pytest.param(
            ny("2026-05-04 10:00"),
            ny("2026-05-04 11:30:00.5"),
            0,
            Schedule(ny("2026-05-04 11:30:00.5"), COOLDOWN),
            id="cooldown-keeps-microseconds",
        ),
        pytest.param(
            ny("2026-05-04 10:00"),
            ny("2026-05-04 09:00"),
            0,
            Schedule(ny("2026-05-04 10:00"), IMMEDIATE),
            id="cooldown-already-over",
        ),
        pytest.param(
            ny("2026-05-04 10:00"),
            ny("2026-05-04 10:00"),
            0,
            Schedule(ny("2026-05-04 10:00"), IMMEDIATE),
            id="cooldown-ends-now",
        ),
        pytest.param(
            ny("2026-05-04 10:00"),
            ny("2026-05-04 18:00"),
            0,
            Schedule(ny("2026-05-05 09:00"), OUTSIDE),
            id="cooldown-past-closing",
        ),
        pytest.param(
            ny("2026-05-04 10:00"),
            ny("2026-05-04 10:10"),
            600,
            Schedule(ny("2026-05-04 10:10"), COOLDOWN),
            id="tie-cooldown-beats-delay",
        ),
        pytest.param(
            ny("2026-05-04 10:00"),
            ny("2026-05-04 10:05"),
            600,
            Schedule(ny("2026-05-04 10:10"), DELAY),
            id="delay-longer-than-cooldown",
        ),
        pytest.param(
            ny("2026-05-04 10:00"),
            ny("2026-05-04 10:20"),
            600,
            Schedule(ny("2026-05-04 10:20"), COOLDOWN),
            id="cooldown-longer-than-delay",
        ),
    ],
)
def test_delay_and_cooldown(
    now: datetime, not_before: datetime | None, delay: int, expected: Schedule
) -> None:
    check(policy(delay=delay), (), now, expected, not_before)


@pytest.mark.parametrize(
    ("not_before", "expected"),
    [
        pytest.param(
            ny("2026-06-01 00:00"),
            Schedule(ny("2026-06-01 00:00"), BEFORE_START),
            id="tie-start-date-beats-cooldown",
        ),
        pytest.param(
            ny("2026-06-01 00:00:01"),
            Schedule(ny("2026-06-01 00:00:01"), COOLDOWN),
            id="cooldown-after-start",
        ),
        pytest.param(
            ny("2026-05-31 23:00"),
            Schedule(ny("2026-06-01 00:00"), BEFORE_START),
            id="start-after-cooldown",
        ),
    ],
)
def test_start_date_against_cooldown(not_before: datetime, expected: Schedule) -> None:
    p = policy(ranges=("00:00-24:00",), start=date(2026, 6, 1), delay=60)
    check(p, (), ny("2026-05-20 12:00"), expected, not_before)


def test_initial_delay_only_applies_to_requests() -> None:
    p = policy(delay=600)
    now = ny("2026-05-04 10:00")
    assert next_allowed_time(p, (), now, from_request=False) == Schedule(now, IMMEDIATE)
    later = ny("2026-05-04 12:00")
    assert next_allowed_time(p, (), now, later, from_request=False) == Schedule(later, COOLDOWN)


# Transitions in 2026: New York 03-08 07:00Z (EST→EDT) and 11-01 06:00Z (EDT→EST);
# London 03-29 01:00Z (GMT→BST) and 10-25 01:00Z (BST→GMT); in the middle of a UTC hour:
# Adelaide 04-04 16:30Z (ACDT→ACST) and 10-03 16:30Z (ACST→ACDT), St John's 03-08 05:30Z.
@pytest.mark.parametrize(
    ("tz", "ranges", "now", "expected"),
    [
        pytest.param(
            NY,
            ("02:30-04:00",),
            utc("2026-03-08 06:59:59"),
            Schedule(utc("2026-03-08 07:00"), OUTSIDE),
            id="ny-spring-start-in-gap-opens-at-transition",
        ),
        pytest.param(
            NY,
            ("02:30-04:00",),
            utc("2026-03-08 07:00"),
            Schedule(utc("2026-03-08 07:00"), IMMEDIATE),
            id="ny-spring-03:00-edt-inside",
        ),
        pytest.param(
            NY,
            ("02:30-04:00",),
            utc("2026-03-08 07:59:59"),
            Schedule(utc("2026-03-08 07:59:59"), IMMEDIATE),
            id="ny-spring-03:59:59-inside",
        ),
        pytest.param(
            NY,
            ("02:30-04:00",),
            utc("2026-03-08 08:00"),
            Schedule(utc("2026-03-09 06:30"), OUTSIDE),
            id="ny-spring-04:00-edt-closed",
        ),
        pytest.param(
            NY,
            ("00:00-02:30",),
            utc("2026-03-08 06:59:59"),
            Schedule(utc("2026-03-08 06:59:59"), IMMEDIATE),
            id="ny-spring-end-in-gap-last-second",
        ),
        pytest.param(
            NY,
            ("00:00-02:30",),
            utc("2026-03-08 07:00"),
            Schedule(utc("2026-03-09 04:00"), OUTSIDE),
            id="ny-spring-end-in-gap-closes-at-transition",
        ),
        pytest.param(
            NY,
            ("02:00-03:00",),
            utc("2026-03-08 06:00"),
            Schedule(utc("2026-03-09 06:00"), OUTSIDE),
            id="ny-spring-range-inside-gap-is-empty",
        ),
        pytest.param(
            NY,
            ("09:00-17:00",),
            utc("2026-03-08 12:59:59"),
            Schedule(utc("2026-03-08 13:00"), OUTSIDE),
            id="ny-spring-day-office-hours-in-edt",
        ),
        pytest.param(
            NY,
            ("00:00-01:30",),
            utc("2026-11-01 05:29:59"),
            Schedule(utc("2026-11-01 05:29:59"), IMMEDIATE),
            id="ny-fall-before-first-01:30",
        ),
        pytest.param(
            NY,
            ("00:00-01:30",),
            utc("2026-11-01 05:30"),
            Schedule(utc("2026-11-02 05:00"), OUTSIDE),
            id="ny-fall-ends-at-first-01:30",
        ),
        pytest.param(
            NY,
            ("00:00-01:30",),
            utc("2026-11-01 06:15"),
            Schedule(utc("2026-11-02 05:00"), OUTSIDE),
            id="ny-fall-repeated-01:15-not-inside",
        ),
        pytest.param(
            NY,
            ("01:30-03:00",),
            utc("2026-11-01 05:15"),
            Schedule(utc("2026-11-01 05:30"), OUTSIDE),
            id="ny-fall-first-01:15-waits",
        ),
        pytest.param(
            NY,
            ("01:30-03:00",),
            utc("2026-11-01 06:15"),
            Schedule(utc("2026-11-01 06:15"), IMMEDIATE),
            id="ny-fall-repeated-01:15-inside-later-range",
        ),
        pytest.param(
            NY,
            ("01:30-03:00",),
            utc("2026-11-01 07:59:59"),
            Schedule(utc("2026-11-01 07:59:59"), IMMEDIATE),
            id="ny-fall-02:59:59-est-inside",
        ),
        pytest.param(
            NY,
            ("01:30-03:00",),
            utc("2026-11-01 08:00"),
            Schedule(utc("2026-11-02 06:30"), OUTSIDE),
            id="ny-fall-03:00-est-closed",
        ),
        pytest.param(
            NY,
            ("01:00-01:30",),
            utc("2026-11-01 06:00"),
            Schedule(utc("2026-11-02 06:00"), OUTSIDE),
            id="ny-fall-repeated-01:00-not-reopened",
        ),
        pytest.param(
            LONDON,
            ("01:30-03:00",),
            utc("2026-03-29 00:59:59"),
            Schedule(utc("2026-03-29 01:00"), OUTSIDE),
            id="london-spring-start-in-gap",
        ),
        pytest.param(
            LONDON,
            ("01:30-03:00",),
            utc("2026-03-29 01:00"),
            Schedule(utc("2026-03-29 01:00"), IMMEDIATE),
            id="london-spring-02:00-bst-inside",
        ),
        pytest.param(
            LONDON,
            ("00:00-01:30",),
            utc("2026-03-29 00:59:59"),
            Schedule(utc("2026-03-29 00:59:59"), IMMEDIATE),
            id="london-spring-end-in-gap-last-second",
        ),
        pytest.param(
            LONDON,
            ("00:00-01:30",),
            utc("2026-03-29 01:00"),
            Schedule(utc("2026-03-29 23:00"), OUTSIDE),
            id="london-spring-end-in-gap-closes",
        ),
        pytest.param(
            LONDON,
            ("00:00-01:30",),
            utc("2026-10-25 00:29:59"),
            Schedule(utc("2026-10-25 00:29:59"), IMMEDIATE),
            id="london-fall-before-first-01:30",
        ),
        pytest.param(
            LONDON,
            ("00:00-01:30",),
            utc("2026-10-25 00:30"),
            Schedule(utc("2026-10-26 00:00"), OUTSIDE),
            id="london-fall-ends-at-first-01:30",
        ),
        pytest.param(
            LONDON,
            ("00:00-01:30",),
            utc("2026-10-25 01:15"),
            Schedule(utc("2026-10-26 00:00"), OUTSIDE),
            id="london-fall-repeated-01:15-not-inside",
        ),
        pytest.param(
            LONDON,
            ("01:30-24:00",),
            utc("2026-10-25 00:15"),
            Schedule(utc("2026-10-25 00:30"), OUTSIDE),
            id="london-fall-first-01:15-waits",
        ),
        pytest.param(
            LONDON,
            ("01:30-24:00",),
            utc("2026-10-25 01:15"),
            Schedule(utc("2026-10-25 01:15"), IMMEDIATE),
            id="london-fall-repeated-01:15-inside",
        ),
        pytest.param(
            ADELAIDE,
            ("03:00-04:00",),
            utc("2026-10-03 16:29:59"),
            Schedule(utc("2026-10-03 16:30"), OUTSIDE),
            id="adelaide-spring-mid-hour-utc-transition",
        ),
        pytest.param(
            ADELAIDE,
            ("03:00-04:00",),
            utc("2026-10-03 16:45"),
            Schedule(utc("2026-10-03 16:45"), IMMEDIATE),
            id="adelaide-spring-03:15-acdt-inside",
        ),
        pytest.param(
            ADELAIDE,
            ("00:00-02:30",),
            utc("2026-04-04 16:45"),
            Schedule(utc("2026-04-05 14:30"), OUTSIDE),
            id="adelaide-fall-repeated-02:15-not-inside",
        ),
        pytest.param(
            "America/St_Johns",
            ("03:00-04:00",),
            utc("2026-03-08 05:45"),
            Schedule(utc("2026-03-08 05:45"), IMMEDIATE),
            id="st-johns-spring-03:15-ndt-inside",
        ),
    ],
)
def test_dst(tz: str, ranges: tuple[str, ...], now: datetime, expected: Schedule) -> None:
    check(policy(tz, ranges=ranges), (), now, expected)


@pytest.mark.parametrize(
    ("tz", "day", "hours"),
    [
        pytest.param(NY, date(2026, 3, 8), 23, id="ny-spring-23h"),
        pytest.param(NY, date(2026, 11, 1), 25, id="ny-fall-25h"),
        pytest.param(LONDON, date(2026, 3, 29), 23, id="london-spring-23h"),
        pytest.param(LONDON, date(2026, 10, 25), 25, id="london-fall-25h"),
        pytest.param(LONDON, date(2026, 7, 5), 24, id="london-summer-24h"),
    ],
)
def test_whole_day_range_length_on_dst_days(tz: str, day: date, hours: int) -> None:
    p = policy(tz, days=frozenset({day.isoweekday()}), ranges=("00:00-24:00",))
    around = datetime.combine(day, datetime.min.time(), UTC)
    pieces = allowed_intervals(p, (), around - timedelta(days=2), around + timedelta(days=2))
    assert len(pieces) == 1
    start, end = pieces[0]
    assert end - start == timedelta(hours=hours)
    assert start == local(tz, f"{day} 00:00")


@pytest.mark.parametrize(
    ("zones", "now", "expected"),
    [
        pytest.param(
            ("America/Los_Angeles",),
            ny("2026-05-04 09:00"),
            Schedule(ny("2026-05-04 11:00"), RECIPIENT),
            id="los-angeles-still-asleep",
        ),
        pytest.param(
            ("America/Los_Angeles",),
            ny("2026-05-04 11:00"),
            Schedule(ny("2026-05-04 11:00"), IMMEDIATE),
            id="los-angeles-08:00",
        ),
        pytest.param(
            ("America/Los_Angeles",),
            ny("2026-05-04 18:00"),
            Schedule(ny("2026-05-05 11:00"), OUTSIDE),
            id="los-angeles-after-campaign-hours",
        ),
        pytest.param(
            (LONDON,),
            ny("2026-05-04 15:59:59"),
            Schedule(ny("2026-05-04 15:59:59"), IMMEDIATE),
            id="london-20:59:59",
        ),
        pytest.param(
            (LONDON,),
            ny("2026-05-04 16:00"),
            Schedule(ny("2026-05-05 09:00"), RECIPIENT),
            id="london-21:00-closed",
        ),
        pytest.param(
            (NY,),
            ny("2026-05-04 09:00"),
            Schedule(ny("2026-05-04 09:00"), IMMEDIATE),
            id="same-zone",
        ),
    ],
)
def test_recipient_hours_in_another_zone(
    zones: tuple[str, ...], now: datetime, expected: Schedule
) -> None:
    check(policy(hours=DAYTIME), zones, now, expected)


ALASKA = ("America/Anchorage", "America/Adak")  # UTC-8 and UTC-9 in May


@pytest.mark.parametrize(
    ("zones", "now", "expected"),
    [
        pytest.param(
            ALASKA,
            utc("2026-05-04 16:30"),
            Schedule(utc("2026-05-04 17:00"), RECIPIENT),
            id="anchorage-awake-adak-not",
        ),
        pytest.param(
            ALASKA,
            utc("2026-05-04 17:00"),
            Schedule(utc("2026-05-04 17:00"), IMMEDIATE),
            id="both-awake",
        ),
        pytest.param(
            ALASKA,
            utc("2026-05-05 04:59:59"),
            Schedule(utc("2026-05-05 04:59:59"), IMMEDIATE),
            id="anchorage-20:59:59",
        ),
        pytest.param(
            ALASKA,
            utc("2026-05-05 05:00"),
            Schedule(utc("2026-05-05 17:00"), RECIPIENT),
            id="anchorage-21:00-closed",
        ),
        pytest.param(
            ALASKA[::-1],
            utc("2026-05-04 16:30"),
            Schedule(utc("2026-05-04 17:00"), RECIPIENT),
            id="order-does-not-matter",
        ),
        pytest.param(
            ALASKA[:1],
            utc("2026-05-04 16:30"),
            Schedule(utc("2026-05-04 16:30"), IMMEDIATE),
            id="anchorage-alone",
        ),
        pytest.param(
            ALASKA[1:],
            utc("2026-05-05 05:30"),
            Schedule(utc("2026-05-05 05:30"), IMMEDIATE),
            id="adak-alone",
        ),
    ],
)
def test_multi_zone_number(zones: tuple[str, ...], now: datetime, expected: Schedule) -> None:
    check(policy("UTC", ranges=("00:00-24:00",), hours=DAYTIME), zones, now, expected)


def test_multi_zone_allowed_intervals() -> None:
    p = policy("UTC", ranges=("00:00-24:00",), hours=DAYTIME)
    pieces = allowed_intervals(p, ALASKA, utc("2026-05-04 12:00"), utc("2026-05-05 12:00"))
    assert pieces == [(utc("2026-05-04 17:00"), utc("2026-05-05 05:00"))]


@pytest.mark.parametrize(
    ("hours", "now", "expected"),
    [
        pytest.param(
            DAYTIME,
            ny("2026-05-04 07:00"),
            Schedule(ny("2026-05-04 08:00"), RECIPIENT),
            id="campaign-zone-07:00",
        ),
        pytest.param(
            DAYTIME,
            ny("2026-05-04 20:59:59"),
            Schedule(ny("2026-05-04 20:59:59"), IMMEDIATE),
            id="campaign-zone-20:59:59",
        ),
        pytest.param(
            DAYTIME,
            ny("2026-05-04 21:00"),
            Schedule(ny("2026-05-05 08:00"), RECIPIENT),
            id="campaign-zone-21:00",
        ),
        pytest.param(
            None,
            ny("2026-05-04 03:00"),
            Schedule(ny("2026-05-04 03:00"), IMMEDIATE),
            id="hours-off",
        ),
    ],
)
def test_unknown_zone_uses_campaign_zone(
    hours: DailyRange | None, now: datetime, expected: Schedule
) -> None:
    p = policy(ranges=("00:00-24:00",), hours=hours)
    check(p, (), now, expected)
    assert next_allowed_time(p, (NY,), now) == expected


@pytest.mark.parametrize(
    ("p", "zones", "now", "not_before", "reason"),
    [
        pytest.param(policy(), (), ny("2026-05-04 10:00"), None, IMMEDIATE, id="immediate"),
        pytest.param(policy(), (), ny("2026-05-04 18:00"), None, OUTSIDE, id="outside_call_hours"),
        pytest.param(
            policy(hours=DAYTIME),
            ("Asia/Kolkata",),
            ny("2026-05-04 12:00"),
            None,
            RECIPIENT,
            id="recipient_local_hours",
        ),
        pytest.param(policy(delay=60), (), ny("2026-05-04 10:00"), None, DELAY, id="initial_delay"),
        pytest.param(
            policy(), (), ny("2026-05-04 10:00"), ny("2026-05-04 11:00"), COOLDOWN, id="cooldown"
        ),
        pytest.param(
            policy(ranges=("00:00-24:00",), start=date(2026, 6, 1)),
            (),
            ny("2026-05-04 10:00"),
            None,
            BEFORE_START,
            id="before_start_date",
        ),
    ],
)
def test_every_reason(
    p: CallingPolicy,
    zones: tuple[str, ...],
    now: datetime,
    not_before: datetime | None,
    reason: SchedulingReason,
) -> None:
    result = next_allowed_time(p, zones, now, not_before)
    assert isinstance(result, Schedule)
    assert result.reason is reason


def test_every_reason_but_paused_is_covered() -> None:
    covered = {IMMEDIATE, OUTSIDE, RECIPIENT, DELAY, COOLDOWN, BEFORE_START}
    assert covered == set(SchedulingReason) - {SchedulingReason.CAMPAIGN_PAUSED}


def test_result_is_utc_whatever_the_zone_of_now() -> None:
    now = datetime(2026, 5, 4, 10, 0, tzinfo=ZoneInfo(NY))
    result = next_allowed_time(policy(), (), now)
    assert result == Schedule(now.astimezone(UTC), IMMEDIATE)
    assert isinstance(result, Schedule)
    assert result.at.tzinfo is UTC


@pytest.mark.parametrize(
    ("instant", "allowed"),
    [
        pytest.param(utc("2026-11-01 05:29:59.999999"), True, id="ny-fall-first-01:29:59.999999"),
        pytest.param(utc("2026-11-01 05:30"), False, id="ny-fall-first-01:30"),
        pytest.param(utc("2026-11-01 06:00"), False, id="ny-fall-repeated-01:00"),
        pytest.param(utc("2026-11-01 06:29:59"), False, id="ny-fall-repeated-01:29:59"),
        pytest.param(utc("2026-11-02 05:00"), True, id="ny-next-midnight"),
        pytest.param(
            datetime(2026, 11, 1, 1, 15, fold=1, tzinfo=ZoneInfo(NY)), False, id="ny-aware-fold-1"
        ),
        pytest.param(
            datetime(2026, 11, 1, 1, 15, fold=0, tzinfo=ZoneInfo(NY)), True, id="ny-aware-fold-0"
        ),
    ],
)
def test_is_allowed_on_fall_back(instant: datetime, allowed: bool) -> None:
    assert is_allowed(policy(ranges=("00:00-01:30",)), (), instant) is allowed


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_allowed_time(policy(), (), datetime(2026, 5, 4, 10))
    with pytest.raises(ValueError, match="timezone-aware"):
        is_allowed(policy(), (), datetime(2026, 5, 4, 10))


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param(-1, 3600, id="negative-start"),
        pytest.param(3600, 3600, id="empty"),
        pytest.param(7200, 3600, id="reversed"),
        pytest.param(0, 86401, id="past-24:00"),
    ],
)
def test_invalid_daily_range(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="invalid daily range"):
        DailyRange(start, end)


def test_allowed_intervals_clips_to_the_asked_span() -> None:
    p = policy(ranges=("09:00-12:00", "13:00-17:00"))
    start = ny("2026-05-04 10:30:00.5")
    pieces = allowed_intervals(p, (), start, ny("2026-05-04 14:00"))
    assert pieces == [
        (start, ny("2026-05-04 12:00")),
        (ny("2026-05-04 13:00"), ny("2026-05-04 14:00")),
    ]
    assert allowed_intervals(p, (), ny("2026-05-04 12:00"), ny("2026-05-04 13:00")) == []


@pytest.mark.parametrize("delay", [MAX_INITIAL_CALL_DELAY_S + 1, 10**12, 10**18])
def test_a_delay_over_the_bound_counts_as_the_bound(delay: int) -> None:
    """A campaign stored before the API bound its delay still gets a time, 30 days out."""
    now = datetime(2026, 5, 4, 14, 0, tzinfo=UTC)
    decision = next_allowed_time(policy(ranges=("00:00-24:00",), delay=delay), (), now)
    bound = timedelta(seconds=MAX_INITIAL_CALL_DELAY_S)
    assert decision == Schedule(now + bound, DELAY)
