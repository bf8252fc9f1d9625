"""Properties of the calling windows against an oracle that walks UTC minute by minute.

Every window boundary falls on a whole UTC minute here: ranges are on minute boundaries, every
zone below has whole-minute offsets and transitions. The oracle finds "the first instant of a
date whose wall clock reads >= s" by walking the clock forward a minute at a time, which shares
nothing with the interval arithmetic under test.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.rules.windows import (
    SEARCH_HORIZON_DAYS,
    CallingPolicy,
    Closed,
    DailyRange,
    Schedule,
    SchedulingReason,
    allowed_intervals,
    is_allowed,
    next_allowed_time,
)

ZONES = (
    "UTC",
    "America/New_York",
    "Europe/London",
    "Asia/Kolkata",  # +05:30, no DST
    "Australia/Adelaide",  # +09:30 / +10:30, southern DST
    "America/Anchorage",
    "America/Adak",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "America/Santiago",  # transitions at local midnight
    "America/Havana",  # spring-forward skips midnight
    "Asia/Kathmandu",  # +05:45
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/St_Johns",  # -03:30 / -02:30
)
SECOND = timedelta(seconds=1)
FIRST_DAY = datetime(2025, 1, 1, tzinfo=UTC)
LAST_DAY = datetime(2027, 12, 31, tzinfo=UTC)
PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _transitions() -> dict[str, list[datetime]]:
    """Every UTC-offset change of ZONES in 2025-2027, found by sampling and bisection."""
    transitions: dict[str, list[datetime]] = {}
    step = 6 * 3600
    begin, end = int(FIRST_DAY.timestamp()), int(LAST_DAY.timestamp())
    for key in ZONES:
        zone = ZoneInfo(key)
        found = transitions[key] = []
        previous = datetime.fromtimestamp(begin, zone).utcoffset()
        for t in range(begin + step, end, step):
            offset = datetime.fromtimestamp(t, zone).utcoffset()
            if offset != previous:
                low, high = t - step, t
                while high - low > 1:
                    middle = (low + high) // 2
                    if datetime.fromtimestamp(middle, zone).utcoffset() == previous:
                        low = middle
                    else:
                        high = middle
                found.append(datetime.fromtimestamp(high, UTC))
                previous = offset
    return transitions


TRANSITIONS = _transitions()


@cache
def oracle_first(key: str, day: date, seconds: int) -> int:
    """The first instant of `day` in `key` whose wall clock reads >= `seconds`, by walking."""
    zone = ZoneInfo(key)
    target = datetime.combine(day, time()) + timedelta(seconds=seconds)
    offset = zone.utcoffset(target)
    assert offset is not None
    # Four hours before the instant: earlier than any reading of `target` (shifts here are <= 1 h).
    t = int((target - offset).replace(tzinfo=UTC).timestamp()) - 4 * 3600
    while datetime.fromtimestamp(t, zone).replace(tzinfo=None) < target:
        t += 60
    return t


def _inside(key: str, day: date, ranges: tuple[DailyRange, ...], t: int) -> bool:
    return any(oracle_first(key, day, r.start) <= t < oracle_first(key, day, r.end) for r in ranges)


def _nearby_days(key: str, t: int) -> list[date]:
    today = datetime.fromtimestamp(t, ZoneInfo(key)).date()
    return [today + timedelta(days=n) for n in (-1, 0, 1)]


def _campaign_day(policy: CallingPolicy, day: date) -> bool:
    return (
        day.isoweekday() in policy.days_of_week
        and policy.start_date <= day
        and (policy.end_date is None or day <= policy.end_date)
    )


def oracle_campaign(policy: CallingPolicy, t: int) -> bool:
    key = policy.timezone
    return any(
        _campaign_day(policy, day) and _inside(key, day, policy.ranges, t)
        for day in _nearby_days(key, t)
    )


def oracle_allowed(policy: CallingPolicy, zones: tuple[str, ...], t: int) -> bool:
    if not oracle_campaign(policy, t):
        return False
    hours = policy.recipient_local_hours
    if hours is None:
        return True
    return all(
        any(_inside(key, day, (hours,), t) for day in _nearby_days(key, t))
        for key in zones or (policy.timezone,)
    )


def window_starts(policy: CallingPolicy, zones: tuple[str, ...], low: int, high: int) -> list[int]:
    """Every window start of every zone strictly between low and high (by the oracle)."""
    streams: list[tuple[str, tuple[DailyRange, ...], bool]] = [
        (policy.timezone, policy.ranges, True)
    ]
    if policy.recipient_local_hours is not None:
        hours = (policy.recipient_local_hours,)
        streams += [(key, hours, False) for key in zones or (policy.timezone,)]
    starts = []
    for key, ranges, campaign in streams:
        day = _nearby_days(key, low)[0]
        last = _nearby_days(key, high)[-1]
        while day <= last:
            if not campaign or _campaign_day(policy, day):
                for r in ranges:
                    start = oracle_first(key, day, r.start)
                    if low < start < high:
                        starts.append(start)
            day += timedelta(days=1)
    return starts


# Wall times (minutes) where DST shifts happen in these zones, drawn often to meet them.
minutes = st.integers(0, 1440) | st.sampled_from([0, 30, 60, 90, 120, 150, 180, 210, 240, 1440])


@st.composite
def policies(draw: st.DrawFn) -> CallingPolicy:
    points = sorted(draw(st.lists(minutes, min_size=2, max_size=6, unique=True)))
    points = points[: len(points) // 2 * 2]
    ranges = tuple(
        DailyRange(a * 60, b * 60) for a, b in zip(points[::2], points[1::2], strict=True)
    )
    start = draw(st.dates(date(2025, 6, 1), date(2027, 6, 30)))
    end = draw(st.none() | st.integers(0, 400).map(lambda n: start + timedelta(days=n)))
    hours = draw(
        st.none()
        | st.just(DailyRange(8 * 3600, 21 * 3600))
        | st.lists(minutes, min_size=2, max_size=2, unique=True)
        .map(sorted)
        .map(lambda pair: DailyRange(pair[0] * 60, pair[1] * 60))
    )
    return CallingPolicy(
        timezone=draw(st.sampled_from(ZONES)),
        days_of_week=draw(st.frozensets(st.integers(1, 7), min_size=1)),
        ranges=ranges,
        start_date=start,
        end_date=end,
        initial_call_delay=draw(st.sampled_from([0, 0, 60, 3600, 86400]) | st.integers(0, 259200)),
        recipient_local_hours=hours,
    )


def every_day_in(policy: CallingPolicy, key: str) -> CallingPolicy:
    """The policy moved to zone `key` with every day open, so a transition day is a campaign day."""
    return replace(
        policy,
        timezone=key,
        days_of_week=frozenset(range(1, 8)),
        start_date=FIRST_DAY.date(),
        end_date=None,
    )


transition_zones = st.sampled_from([key for key in ZONES if TRANSITIONS[key]])
recipient_zones = st.lists(st.sampled_from(ZONES), max_size=3).map(tuple)
micros = st.integers(0, 999_999)


@st.composite
def instants(draw: st.DrawFn, policy: CallingPolicy, zones: tuple[str, ...]) -> datetime:
    """Uniform, near a DST transition of a zone involved, or right at a window edge."""
    hours = policy.recipient_local_hours
    # Each zone with the wall-clock edges that matter in it.
    edges = {policy.timezone: [s for r in policy.ranges for s in (r.start, r.end)]}
    if hours is not None:
        for key in zones or (policy.timezone,):
            edges.setdefault(key, []).extend((hours.start, hours.end))
    kind = draw(st.sampled_from(["uniform", "transition", "edge", "transition-day-edge"]))
    key = draw(st.sampled_from(sorted(edges)))
    if not TRANSITIONS[key] and kind.startswith("transition"):
        kind = "edge"
    if kind == "uniform":
        return draw(st.datetimes(FIRST_DAY.replace(tzinfo=None), LAST_DAY.replace(tzinfo=None)))
    if kind == "transition":
        anchor = draw(st.sampled_from(TRANSITIONS[key]))
        anchor += timedelta(minutes=draw(st.integers(-180, 180)))
    else:
        day = draw(st.dates(FIRST_DAY.date(), LAST_DAY.date()))
        if kind == "transition-day-edge":
            day = draw(st.sampled_from(TRANSITIONS[key])).astimezone(ZoneInfo(key)).date()
        seconds = draw(st.sampled_from(edges[key]))
        anchor = datetime.fromtimestamp(oracle_first(key, day, seconds), UTC)
    nudge = draw(st.sampled_from([timedelta(), -SECOND, timedelta(microseconds=-1), SECOND]))
    return (anchor + nudge).replace(tzinfo=None)


def as_utc(naive: datetime) -> datetime:
    return naive.replace(tzinfo=UTC)


@PROPERTY_SETTINGS
@given(data=st.data(), policy=policies(), zones=recipient_zones)
def test_is_allowed_matches_the_oracle(
    data: st.DataObject, policy: CallingPolicy, zones: tuple[str, ...]
) -> None:
    instant = as_utc(data.draw(instants(policy, zones)))
    expected = oracle_allowed(policy, zones, math.floor(instant.timestamp()))
    assert is_allowed(policy, zones, instant) is expected


@PROPERTY_SETTINGS
@given(
    data=st.data(),
    policy=policies(),
    zones=recipient_zones,
    key=transition_zones,
    minute=st.integers(-120, 120),
    nudge=st.sampled_from([0, -1, 1, 1799]),
)
def test_is_allowed_matches_the_oracle_around_transitions(
    data: st.DataObject,
    policy: CallingPolicy,
    zones: tuple[str, ...],
    key: str,
    minute: int,
    nudge: int,
) -> None:
    policy = every_day_in(policy, key)
    anchor = data.draw(st.sampled_from(TRANSITIONS[key]))
    t = int(anchor.timestamp()) + minute * 60 + nudge
    instant = datetime.fromtimestamp(t, UTC)
    assert is_allowed(policy, zones, instant) is oracle_allowed(policy, zones, t)


def _candidate(
    policy: CallingPolicy, now: datetime, not_before: datetime | None, from_request: bool
) -> tuple[datetime, SchedulingReason]:
    """The lower bound and what set it; later entries win ties."""
    bounds = [(now, SchedulingReason.IMMEDIATE)]
    if from_request:
        delay = now + timedelta(seconds=policy.initial_call_delay)
        bounds.append((delay, SchedulingReason.INITIAL_DELAY))
    if not_before is not None:
        bounds.append((not_before, SchedulingReason.COOLDOWN))
    start = oracle_first(policy.timezone, policy.start_date, 0)
    bounds.append((datetime.fromtimestamp(start, UTC), SchedulingReason.BEFORE_START_DATE))
    best = bounds[0]
    for bound in bounds[1:]:
        if bound[0] > now and bound[0] >= best[0]:
            best = bound
    return best


@PROPERTY_SETTINGS
@given(
    data=st.data(),
    policy=policies(),
    zones=recipient_zones,
    wait=st.none() | st.tuples(st.integers(-86400, 5 * 86400), micros),
    from_request=st.booleans(),
)
def test_next_allowed_time_is_the_earliest_allowed_second(
    data: st.DataObject,
    policy: CallingPolicy,
    zones: tuple[str, ...],
    wait: tuple[int, int] | None,
    from_request: bool,
) -> None:
    now = as_utc(data.draw(instants(policy, zones)))
    not_before = None
    if wait is not None:
        not_before = now + timedelta(seconds=wait[0], microseconds=wait[1])
    check_next_allowed_time(policy, zones, now, not_before, from_request)


@PROPERTY_SETTINGS
@given(
    data=st.data(),
    policy=policies(),
    zones=recipient_zones,
    key=transition_zones,
    seconds=st.integers(-4 * 3600, 3600),
    from_request=st.booleans(),
)
def test_next_allowed_time_around_transitions(
    data: st.DataObject,
    policy: CallingPolicy,
    zones: tuple[str, ...],
    key: str,
    seconds: int,
    from_request: bool,
) -> None:
    anchor = data.draw(st.sampled_from(TRANSITIONS[key]))
    now = anchor + timedelta(seconds=seconds)
    check_next_allowed_time(every_day_in(policy, key), zones, now, None, from_request)


def check_next_allowed_time(
    policy: CallingPolicy,
    zones: tuple[str, ...],
    now: datetime,
    not_before: datetime | None,
    from_request: bool,
) -> None:
    result = next_allowed_time(policy, zones, now, not_before, from_request=from_request)
    candidate, pushed_by = _candidate(policy, now, not_before, from_request)
    first = math.floor(candidate.timestamp())
    end_limit = None
    if policy.end_date is not None:
        end_limit = oracle_first(policy.timezone, policy.end_date + timedelta(days=1), 0)

    if isinstance(result, Closed):
        if end_limit is not None and now.timestamp() >= end_limit:
            assert result.reason == "end_date_passed"
            return
        horizon = first + SEARCH_HORIZON_DAYS * 86400
        if end_limit is not None and end_limit <= horizon:
            assert result.reason == "no_window_before_end_date"
            horizon = end_limit
        else:
            assert result.reason == "no_window"
        assert not is_allowed(policy, zones, candidate)
        span_end = datetime.fromtimestamp(horizon, UTC)
        assert allowed_intervals(policy, zones, candidate, span_end) == []
        return

    at = result.at
    assert at.tzinfo is UTC
    assert at >= candidate
    assert is_allowed(policy, zones, at)
    at_second = math.floor(at.timestamp())
    assert oracle_allowed(policy, zones, at_second)
    assert end_limit is None or at_second < end_limit
    if at == candidate:
        assert result.reason is pushed_by
        return

    # Moved by the windows: a whole second, and nothing in [candidate, at) was allowed.
    assert at.microsecond == 0
    assert not oracle_allowed(policy, zones, first)
    if oracle_campaign(policy, first):
        assert result.reason is SchedulingReason.RECIPIENT_LOCAL_HOURS
    else:
        assert result.reason is SchedulingReason.OUTSIDE_CALL_HOURS
    assert not is_allowed(policy, zones, at - SECOND)
    gap = at_second - first
    if gap <= 2 * 3600:
        for t in range(first, at_second):
            assert not is_allowed(policy, zones, datetime.fromtimestamp(t, UTC)), t
        return
    # Allowed-ness only switches on at some zone's window start, so checking every start in
    # (first, at) proves the gap empty; for long gaps check the ends of it.
    spans = [(first, at_second)]
    if gap > 8 * 86400:
        spans = [(first, first + 2 * 86400), (at_second - 2 * 86400, at_second)]
    for low, high in spans:
        for start in window_starts(policy, zones, low, high):
            assert not is_allowed(policy, zones, datetime.fromtimestamp(start, UTC)), start


@PROPERTY_SETTINGS
@given(
    data=st.data(),
    policy=policies(),
    zones=recipient_zones,
    length=st.integers(1, 4 * 86400),
)
def test_allowed_intervals_are_maximal_and_agree_with_next_allowed_time(
    data: st.DataObject, policy: CallingPolicy, zones: tuple[str, ...], length: int
) -> None:
    start = as_utc(data.draw(instants(policy, zones)))
    end = start + timedelta(seconds=length)
    pieces = allowed_intervals(policy, zones, start, end)
    for (low, high), following in zip(pieces, [*pieces[1:], None], strict=False):
        assert start <= low < high <= end
        assert following is None or high < following[0]
        assert is_allowed(policy, zones, low)
        assert is_allowed(policy, zones, high - timedelta(microseconds=1))
        assert low == start or not is_allowed(policy, zones, low - SECOND)
        assert high == end or not is_allowed(policy, zones, high)
    result = next_allowed_time(policy, zones, start, from_request=False)
    if isinstance(result, Schedule) and result.at < end:
        assert pieces
        assert pieces[0][0] == result.at
    else:
        assert pieces == []
