"""After an attempt ends: another attempt once a cooldown has passed, or a final status.

A retry's `not_before` is only a lower bound: the caller passes it to
``windows.next_allowed_time(..., from_request=False)`` to land it inside the calling windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.models import CampaignRules
from shared.rules.outcomes import Outcome
from shared.rules.prompts import PROMPT_TOO_LARGE


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 3  # attempts after the first
    retry_cooldown_hours: float = 24
    # Completed is terminal, so success_cooldown_hours never delays a retry; kept for completeness.
    success_cooldown_hours: float | None = None
    voicemail_cooldown_hours: float | None = None
    no_answer_cooldown_hours: float | None = None
    busy_cooldown_hours: float | None = None
    failed_cooldown_hours: float | None = None
    # Errors a retry cannot mend: the number does not exist; the prompt rendered with the
    # call's payload is over the limit (the payload never changes between attempts).
    terminal_errors: frozenset[str] = frozenset({"invalid_number", PROMPT_TOO_LARGE})


@dataclass(frozen=True, slots=True)
class Retry:
    attempt: int  # the number of the next attempt, 1-based
    not_before: datetime


@dataclass(frozen=True, slots=True)
class Terminal:
    status: Outcome


def retry_policy(rules: CampaignRules) -> RetryPolicy:
    return RetryPolicy(
        max_retries=rules.max_retries,
        retry_cooldown_hours=rules.retry_cooldown_hours,
        success_cooldown_hours=rules.success_cooldown_hours,
        voicemail_cooldown_hours=rules.voicemail_cooldown_hours,
        no_answer_cooldown_hours=rules.no_answer_cooldown_hours,
        busy_cooldown_hours=rules.busy_cooldown_hours,
        failed_cooldown_hours=rules.failed_cooldown_hours,
    )


def cooldown_for(policy: RetryPolicy, outcome: Outcome) -> timedelta:
    """The wait after `outcome`: its own hours if set, else retry_cooldown_hours."""
    hours = {
        Outcome.COMPLETED: policy.success_cooldown_hours,
        Outcome.NO_ANSWER: policy.no_answer_cooldown_hours,
        Outcome.BUSY: policy.busy_cooldown_hours,
        Outcome.VOICEMAIL: policy.voicemail_cooldown_hours,
        Outcome.FAILED: policy.failed_cooldown_hours,
        # Final, so never waited after; named so that every outcome has an answer.
        Outcome.CANCELLED: None,
    }[outcome]
    return timedelta(hours=policy.retry_cooldown_hours if hours is None else hours)


def decide_after_attempt(
    policy: RetryPolicy, attempt: int, outcome: Outcome, error: str | None, now: datetime
) -> Retry | Terminal:
    """Retry or end after attempt number `attempt` (1-based) ended with `outcome` at `now`."""
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt}")
    if outcome is Outcome.COMPLETED:
        return Terminal(Outcome.COMPLETED)
    if outcome is Outcome.CANCELLED:
        return Terminal(Outcome.CANCELLED)
    if outcome is Outcome.FAILED and error is not None and error in policy.terminal_errors:
        return Terminal(Outcome.FAILED)
    # The first attempt is not a retry, so attempts 1 .. max_retries may still be followed.
    if attempt <= policy.max_retries:
        return Retry(attempt + 1, now + cooldown_for(policy, outcome))
    return Terminal(outcome)


def post_completion_hold_until(completed_at: datetime, hours: float) -> datetime:
    """Until when a number that completed a call at `completed_at` may not be called again."""
    return completed_at + timedelta(hours=hours)
