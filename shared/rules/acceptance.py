"""Whether a newly requested call is accepted, and when it may first ring."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from shared.models import CampaignRules, CampaignStatus
from shared.rules.policy import CLOSED_STATUSES, calling_policy, recipient_zones
from shared.rules.windows import (
    CallingPolicy,
    Closed,
    Schedule,
    SchedulingReason,
    next_allowed_time,
)


class Refusal(StrEnum):
    """Why a call request is refused (the reasons of a `campaign_call.rejected` event)."""

    CAMPAIGN_NOT_FOUND = "campaign_not_found"
    INVALID_NUMBER = "invalid_number"
    CAMPAIGN_CLOSED = "campaign_closed"
    DO_NOT_CALL = "do_not_call"
    DUPLICATE = "duplicate"


def decide_first_attempt(
    rules: CampaignRules,
    status: CampaignStatus,
    e164: str,
    now: datetime,
    *,
    on_dnc: bool,
    rests_until: datetime | None,
    policy: CallingPolicy | None = None,
) -> Schedule | Refusal:
    """When a call requested at `now` may first ring, or why it is refused.

    A `completed` or `cancelled` campaign refuses before the lists count (`on_dnc`: the number
    is on the list the campaign checks). Otherwise the first instant the calling windows allow,
    not before `rests_until` (the number rests after a completed call of its environment); a
    campaign whose windows have ended refuses as closed, and one not `active` takes the call
    with reason `campaign_paused`. `policy`, when given, is `calling_policy(rules)` built
    earlier (it is the costly part)."""
    if status in CLOSED_STATUSES:
        return Refusal.CAMPAIGN_CLOSED
    if on_dnc:
        return Refusal.DO_NOT_CALL
    decision = next_allowed_time(
        policy or calling_policy(rules), recipient_zones(rules, e164), now, rests_until
    )
    if isinstance(decision, Closed):
        return Refusal.CAMPAIGN_CLOSED
    if status is not CampaignStatus.ACTIVE:
        return Schedule(decision.at, SchedulingReason.CAMPAIGN_PAUSED)
    return decision
