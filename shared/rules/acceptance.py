"""Whether a newly requested call is accepted, and when it may first ring."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from shared.models import CampaignRules, CampaignStatus
from shared.rules.policy import CLOSED_STATUSES, recipient_zones, schedule_first_attempt
from shared.rules.windows import CallingPolicy, Closed, Schedule


class Refusal(StrEnum):
    """Why a call request is refused (the reasons of a `campaign_call.rejected` event)."""

    CAMPAIGN_NOT_FOUND = "campaign_not_found"
    INVALID_NUMBER = "invalid_number"
    CAMPAIGN_CLOSED = "campaign_closed"
    DO_NOT_CALL = "do_not_call"
    DUPLICATE = "duplicate"


def takes_calls(status: CampaignStatus) -> bool:
    """Whether a campaign in `status` may still be asked for calls (paused ones hold them)."""
    return status not in CLOSED_STATUSES


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

    `on_dnc`: the number is on the list the campaign checks; `rests_until`: the number rests
    after a completed call of its environment until then. A closed campaign refuses before the
    lists count, and a campaign whose calling windows have ended refuses as closed. `policy`,
    when given, is `calling_policy(rules)` built earlier."""
    if status in CLOSED_STATUSES:
        return Refusal.CAMPAIGN_CLOSED
    if on_dnc:
        return Refusal.DO_NOT_CALL
    decision = schedule_first_attempt(
        rules, status, recipient_zones(rules, e164), now, rests_until, policy
    )
    return Refusal.CAMPAIGN_CLOSED if isinstance(decision, Closed) else decision
