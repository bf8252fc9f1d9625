"""When a campaign call may ring: calling windows, recipient local hours and the next allowed time.

The allowed set of instants is the intersection of:

(a) the campaign windows: every local date D of the campaign zone whose ISO weekday is in
    ``days_of_week`` and which lies in ``[start_date, end_date]`` (``end_date`` None = open)
    contributes one interval of real time per daily range;
(b) when ``recipient_local_hours`` is set, the recipient windows of every zone of the number:
    that range on every local date of that zone. The number must be inside the hours of ALL its
    zones at once. An empty zone tuple (number without a known zone) means the campaign zone.

A daily range ``[s, e)`` on a local date D is the real-time interval from the first instant of D
whose wall clock reads ``>= s`` to the first instant of D whose wall clock reads ``>= e``;
``e = 86400`` is the first instant of D + 1. So a wall time that a spring-forward skips maps to
the transition instant, an ambiguous wall time to its first occurrence, and on a fall-back day
the repeated hour is counted once: 00:00-01:30 ends at the first 01:30, while 01:30-03:00 spans
the repeated hour as well.

``next_allowed_time`` starts from a candidate, the latest of ``now``, ``now + initial_call_delay``
(requests only; a delay over MAX_INITIAL_CALL_DELAY_S, 30 days, counts as 30 days),
``not_before`` (a cooldown) and the first instant of ``start_date``, and returns the earliest
allowed instant at or after it. The reason is ``immediate`` when that is ``now``; the bound
that made the candidate when the candidate itself is allowed (ties: start date, then cooldown,
then delay); otherwise ``outside_call_hours`` if the candidate lay outside the campaign
windows, else ``recipient_local_hours``. ``Closed`` instead: ``end_date_passed`` once ``now``
reaches the end of ``end_date`` (the first instant of the next local date),
``no_window_before_end_date`` when the search reaches that end first, ``no_window`` when
SEARCH_HORIZON_DAYS after the candidate hold nothing (also when ``end_date`` lies further away).

Window boundaries are whole seconds, so an instant with microseconds is allowed exactly when its
whole second is; ``next_allowed_time`` never rounds an allowed instant later. Everything is
computed per day in integer POSIX seconds and cached per (zone, date, ranges), never by scanning
second by second. Unknown zone names raise ``zoneinfo.ZoneInfoNotFoundError``; naive datetimes
raise ``ValueError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

from shared.rules.input_bounds import MAX_INITIAL_CALL_DELAY_S

SECONDS_PER_DAY = 86400
SEARCH_HORIZON_DAYS = 400

# date.toordinal() of 1970-01-01: turns a POSIX day number into a proleptic ordinal.
_EPOCH_ORDINAL = 719163
# Local dates differ from UTC dates by at most one day (offsets stay within ±14 h).
_ORDINAL_SLACK = 2

_Interval = tuple[int, int]


@dataclass(frozen=True, slots=True)
class DailyRange:
    """Local wall-clock span [start, end) in seconds after midnight; end may be 86400 (24:00)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= SECONDS_PER_DAY:
            raise ValueError(f"invalid daily range [{self.start}, {self.end})")


class SchedulingReason(StrEnum):
    IMMEDIATE = "immediate"
    OUTSIDE_CALL_HOURS = "outside_call_hours"
    RECIPIENT_LOCAL_HOURS = "recipient_local_hours"
    INITIAL_DELAY = "initial_delay"
    COOLDOWN = "cooldown"
    BEFORE_START_DATE = "before_start_date"
    CAMPAIGN_PAUSED = "campaign_paused"  # set by callers, not by next_allowed_time


@dataclass(frozen=True, slots=True)
class CallingPolicy:
    timezone: str  # IANA name of the campaign
    days_of_week: frozenset[int]  # 1 = Monday … 7 = Sunday, in the campaign zone
    ranges: tuple[DailyRange, ...]  # sorted, non-overlapping, campaign zone
    start_date: date  # first local date (campaign zone) dialing is allowed
    end_date: date | None  # last local date (inclusive) dialing is allowed; None = open
    initial_call_delay: int = 0  # seconds after the request
    recipient_local_hours: DailyRange | None = DailyRange(8 * 3600, 21 * 3600)


@dataclass(frozen=True, slots=True)
class Schedule:
    at: datetime  # UTC, tz-aware
    reason: SchedulingReason


@dataclass(frozen=True, slots=True)
class Closed:
    """No allowed instant remains (the campaign's end_date has passed or leaves no window)."""

    reason: str  # "end_date_passed" | "no_window_before_end_date" | "no_window"


_ZONES: dict[str, ZoneInfo] = {}


def _zone(key: str) -> ZoneInfo:
    zone = _ZONES.get(key)
    if zone is None:
        zone = _ZONES[key] = ZoneInfo(key)
    return zone


@lru_cache(maxsize=1 << 16)
def _first_instant(key: str, ordinal: int, seconds: int) -> int:
    """POSIX second of the first instant of local date `ordinal` whose clock reads >= `seconds`."""
    ordinal += seconds // SECONDS_PER_DAY
    seconds %= SECONDS_PER_DAY
    day = date.fromordinal(ordinal)
    hour, rest = divmod(seconds, 3600)
    minute, second = divmod(rest, 60)
    zone = _zone(key)
    wall = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=zone)
    first = int(wall.timestamp())
    second_reading = int(wall.replace(fold=1).timestamp())
    if first <= second_reading:
        # Existing wall time; when ambiguous, fold=0 is its first occurrence.
        return first
    # Skipped wall time: fold=1 lands before the transition and fold=0 after it, and the
    # transition instant (where the clock first reads past `wall`) lies in between.
    naive = wall.replace(tzinfo=None)
    low, high = second_reading, first
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return high


@lru_cache(maxsize=1 << 16)
def _day_intervals(key: str, ordinal: int, ranges: tuple[_Interval, ...]) -> tuple[_Interval, ...]:
    """The real-time intervals of `ranges` on one local date, sorted, empty ones dropped."""
    intervals = []
    for start, end in ranges:
        low = _first_instant(key, ordinal, start)
        high = _first_instant(key, ordinal, end)
        if low < high:
            intervals.append((low, high))
    intervals.sort()
    return tuple(intervals)


@dataclass(slots=True)
class _Windows:
    """One zone's daily windows between two local ordinals, optionally on some weekdays only."""

    key: str
    ranges: tuple[_Interval, ...]
    days: frozenset[int] | None
    first_ordinal: int
    last_ordinal: int

    def next_interval(self, t: int) -> _Interval | None:
        """The earliest interval ending after `t`; it holds `t` when it starts at or before it."""
        # Intervals of earlier dates end by the first instant of t's local date, which is <= t.
        ordinal = datetime.fromtimestamp(t, _zone(self.key)).toordinal()
        ordinal = max(ordinal, self.first_ordinal)
        days = self.days
        while ordinal <= self.last_ordinal:
            # Ordinal 1 (0001-01-01) is a Monday, ISO weekday 1.
            if days is None or (ordinal - 1) % 7 + 1 in days:
                for interval in _day_intervals(self.key, ordinal, self.ranges):
                    if interval[1] > t:
                        return interval
            ordinal += 1
        return None


def _streams(
    policy: CallingPolicy, recipient_zones: tuple[str, ...], last_ordinal: int
) -> list[_Windows]:
    """The campaign windows first, then one stream per distinct recipient zone."""
    end_ordinal = last_ordinal
    if policy.end_date is not None:
        end_ordinal = min(end_ordinal, policy.end_date.toordinal())
    campaign = _Windows(
        policy.timezone,
        tuple((r.start, r.end) for r in policy.ranges),
        policy.days_of_week,
        policy.start_date.toordinal(),
        end_ordinal,
    )
    streams = [campaign]
    hours = policy.recipient_local_hours
    if hours is not None:
        hour_ranges = ((hours.start, hours.end),)
        for key in dict.fromkeys(recipient_zones or (policy.timezone,)):
            streams.append(_Windows(key, hour_ranges, None, 1, last_ordinal))
    return streams


def _ordinal_bound(t: int) -> int:
    """A local ordinal no zone has reached yet at POSIX second `t`."""
    return t // SECONDS_PER_DAY + _EPOCH_ORDINAL + _ORDINAL_SLACK


def _earliest(streams: list[_Windows], t: int, limit: int) -> int | None:
    """The earliest second >= t inside every stream, if it is before `limit`."""
    if t >= limit:
        return None
    count = len(streams)
    satisfied = 0
    index = 0
    # Leapfrog: jump to the next opening of whichever stream excludes t, until every stream in a
    # row accepts the same t.
    while satisfied < count:
        interval = streams[index].next_interval(t)
        if interval is None:
            return None
        if interval[0] > t:
            t = interval[0]
            if t >= limit:
                return None
            satisfied = 1
        else:
            satisfied += 1
        index = (index + 1) % count
    return t


@lru_cache(maxsize=1 << 16)
def _steady_offset(key: str, hour: int) -> int | None:
    """The UTC offset in seconds throughout one UTC hour, or None if it changes or repeats time.

    Equal offsets and fold=0 at both ends mean no transition inside (zones never change twice
    within an hour) and no second occurrence of any wall time in the hour.
    """
    zone = _zone(key)
    first = datetime.fromtimestamp(hour * 3600, zone)
    last = datetime.fromtimestamp(hour * 3600 + 3599, zone)
    offset = first.utcoffset()
    if first.fold or last.fold or offset is None or offset != last.utcoffset():
        return None
    return offset.days * SECONDS_PER_DAY + offset.seconds


def _quick_allowed(policy: CallingPolicy, recipient_zones: tuple[str, ...], t: int) -> bool | None:
    """Decide second `t` by local wall clock; None when the exact rule is needed.

    For an instant that is not the second occurrence of its wall time, "inside [first >= s,
    first >= e)" is the same as "s <= wall < e", because no earlier instant of that date read a
    later wall time. Hours holding a transition go to the exact rule instead.
    """
    hour = t // 3600
    offset = _steady_offset(policy.timezone, hour)
    if offset is None:
        return None
    local_ordinal, wall = divmod(t + offset, SECONDS_PER_DAY)
    local_ordinal += _EPOCH_ORDINAL
    # Ordinal 1 (0001-01-01) is a Monday, ISO weekday 1.
    if (local_ordinal - 1) % 7 + 1 not in policy.days_of_week:
        return False
    if local_ordinal < policy.start_date.toordinal() or (
        policy.end_date is not None and local_ordinal > policy.end_date.toordinal()
    ):
        return False
    for daily in policy.ranges:
        if daily.start <= wall < daily.end:
            break
    else:
        return False
    hours = policy.recipient_local_hours
    if hours is None:
        return True
    if not recipient_zones:
        return hours.start <= wall < hours.end
    for key in recipient_zones:
        offset = _steady_offset(key, hour)
        if offset is None:
            return None
        if not hours.start <= (t + offset) % SECONDS_PER_DAY < hours.end:
            return False
    return True


def _exact_allowed(policy: CallingPolicy, recipient_zones: tuple[str, ...], t: int) -> bool:
    for stream in _streams(policy, recipient_zones, _ordinal_bound(t)):
        interval = stream.next_interval(t)
        if interval is None or interval[0] > t:
            return False
    return True


def _floor_seconds(instant: datetime) -> int:
    return math.floor(instant.timestamp())


def _aware_utc(instant: datetime, name: str) -> datetime:
    if instant.tzinfo is UTC:
        return instant
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return instant.astimezone(UTC)


def is_allowed(policy: CallingPolicy, recipient_zones: tuple[str, ...], instant: datetime) -> bool:
    """Whether a call may ring at `instant` (tz-aware); start_date and end_date included."""
    t = _floor_seconds(_aware_utc(instant, "instant"))
    quick = _quick_allowed(policy, recipient_zones, t)
    if quick is not None:
        return quick
    return _exact_allowed(policy, recipient_zones, t)


def next_allowed_time(
    policy: CallingPolicy,
    recipient_zones: tuple[str, ...],
    now: datetime,
    not_before: datetime | None = None,
    *,
    from_request: bool = True,
) -> Schedule | Closed:
    """The earliest allowed instant at or after every lower bound, or why there is none.

    The lower bounds are `now`, `now + initial_call_delay` (only `from_request`), `not_before`
    (a cooldown) and the start of `start_date`. The search stops at the end of `end_date` or
    after SEARCH_HORIZON_DAYS.
    """
    now = _aware_utc(now, "now")
    now_seconds = now.timestamp()
    key = policy.timezone
    end_limit: int | None = None
    if policy.end_date is not None:
        end_limit = _first_instant(key, policy.end_date.toordinal() + 1, 0)
        if now_seconds >= end_limit:
            return Closed("end_date_passed")

    # Ties between the bounds go to the later check: start date, then cooldown, then delay.
    candidate = now
    candidate_seconds = now_seconds
    pushed_by = SchedulingReason.IMMEDIATE
    if from_request and policy.initial_call_delay > 0:
        # Held to the API's bound: a campaign stored before it cannot wait past the calendar.
        delay = min(policy.initial_call_delay, MAX_INITIAL_CALL_DELAY_S)
        candidate = now + timedelta(seconds=delay)
        candidate_seconds = candidate.timestamp()
        pushed_by = SchedulingReason.INITIAL_DELAY
    if not_before is not None:
        not_before = _aware_utc(not_before, "not_before")
        if not_before > now and not_before >= candidate:
            candidate = not_before
            candidate_seconds = candidate.timestamp()
            pushed_by = SchedulingReason.COOLDOWN
    start_seconds = _first_instant(key, policy.start_date.toordinal(), 0)
    if start_seconds > now_seconds and start_seconds >= candidate_seconds:
        candidate = datetime.fromtimestamp(start_seconds, UTC)
        candidate_seconds = start_seconds
        pushed_by = SchedulingReason.BEFORE_START_DATE

    # Boundaries are whole seconds: the candidate is allowed exactly when its second is.
    first = math.floor(candidate_seconds)
    if _quick_allowed(policy, recipient_zones, first):
        return Schedule(candidate, pushed_by)

    limit = first + SEARCH_HORIZON_DAYS * SECONDS_PER_DAY
    closed = Closed("no_window")
    if end_limit is not None and end_limit <= limit:
        limit = end_limit
        closed = Closed("no_window_before_end_date")
    streams = _streams(policy, recipient_zones, _ordinal_bound(limit))
    found = _earliest(streams, first, limit)
    if found is None:
        return closed
    if found == first:
        # Only reached when the quick check could not decide (a transition hour).
        return Schedule(candidate, pushed_by)
    campaign = streams[0].next_interval(first)
    if campaign is None or campaign[0] > first:
        return Schedule(datetime.fromtimestamp(found, UTC), SchedulingReason.OUTSIDE_CALL_HOURS)
    return Schedule(datetime.fromtimestamp(found, UTC), SchedulingReason.RECIPIENT_LOCAL_HOURS)


def allowed_intervals(
    policy: CallingPolicy,
    recipient_zones: tuple[str, ...],
    start: datetime,
    end: datetime,
) -> list[tuple[datetime, datetime]]:
    """The allowed set clipped to [start, end): disjoint, sorted, adjacent pieces merged, UTC."""
    start = _aware_utc(start, "start")
    end = _aware_utc(end, "end")
    if end <= start:
        return []
    limit = math.ceil(end.timestamp())
    streams = _streams(policy, recipient_zones, _ordinal_bound(limit))
    pieces: list[list[int]] = []
    t = _floor_seconds(start)
    while (found := _earliest(streams, t, limit)) is not None:
        # `found` lies inside an interval of every stream: the run ends at the first to close.
        run_end = limit
        for stream in streams:
            interval = stream.next_interval(found)
            if interval is not None:
                run_end = min(run_end, interval[1])
        if pieces and pieces[-1][1] == found:
            pieces[-1][1] = run_end
        else:
            pieces.append([found, run_end])
        t = run_end
    result = []
    for low, high in pieces:
        begin = max(datetime.fromtimestamp(low, UTC), start)
        finish = min(datetime.fromtimestamp(high, UTC), end)
        if begin < finish:
            result.append((begin, finish))
    return result
