"""A campaign's settings as the policies the scheduling rules take."""

from __future__ import annotations

from shared.models import CampaignRules, CampaignStatus, TimeRange, hhmm_seconds
from shared.phone import time_zones
from shared.rules.windows import CallingPolicy, DailyRange

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
