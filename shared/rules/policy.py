"""A campaign's settings as the policies the scheduling rules take."""

from __future__ import annotations

from datetime import datetime

from shared.models import CampaignRules, CampaignStatus, TimeRange, hhmm_seconds
from shared.phone import time_zones
from shared.rules.windows import (
    CallingPolicy,
    Closed,
    DailyRange,
    Schedule,
    SchedulingReason,
    next_allowed_time,
)

CLOSED_STATUSES = frozenset({CampaignStatus.COMPLETED, CampaignStatus.CANCELLED})


def _daily(time_range: TimeRange) -> DailyRange:
    return DailyRange(hhmm_seconds(time_range.start), hhmm_seconds(time_range.end))


def recipient_zones(rules: CampaignRules, e164: str) -> tuple[str, ...]:
    """The number's zones, looked up only when the campaign keeps to the recipient's hours."""
    return time_zones(e164) if rules.recipient_local_hours else ()


def calling_policy(rules: CampaignRules) -> CallingPolicy:
    return CallingPolicy(
        timezone=rules.timezone,
        days_of_week=frozenset(rules.days_of_week),
        ranges=tuple(sorted((_daily(r) for r in rules.call_time_ranges), key=lambda r: r.start)),
        start_date=rules.start_date,
        end_date=rules.end_date,
        initial_call_delay=rules.initial_call_delay,
        recipient_local_hours=(
            _daily(rules.recipient_local_hours) if rules.recipient_local_hours else None
        ),
    )


def schedule_first_attempt(
    rules: CampaignRules,
    status: CampaignStatus,
    recipient_zones: tuple[str, ...],
    now: datetime,
    not_before: datetime | None = None,
    policy: CallingPolicy | None = None,
) -> Schedule | Closed:
    """When a newly requested call may first ring, or why the campaign takes no more calls.

    `policy`, when given, is `calling_policy(rules)` built earlier (it is the costly part)."""
    if status in CLOSED_STATUSES:
        return Closed(f"campaign_{status.value}")
    decision = next_allowed_time(policy or calling_policy(rules), recipient_zones, now, not_before)
    if isinstance(decision, Schedule) and status is not CampaignStatus.ACTIVE:
        return Schedule(decision.at, SchedulingReason.CAMPAIGN_PAUSED)
    return decision
