"""Auto-DNC: which ended attempts put their number on the campaign's do-not-call list."""

from __future__ import annotations

from datetime import datetime

from shared.models import CampaignRules
from shared.rules.dnc import DncEntry, EntrySource, list_scope


def _matches(value: str, triggers: list[str]) -> bool:
    wanted = value.strip().casefold()
    return any(trigger.strip().casefold() == wanted for trigger in triggers)


def auto_dnc_reason(rules: CampaignRules, outcome: str, error: str | None) -> str | None:
    """Why an attempt that ended with `outcome` (and `error`) puts its number on the list.

    None unless `auto_add_to_dnc_enabled` and the outcome is one of `auto_dnc_trigger_statuses`
    or the error one of `auto_dnc_trigger_errors` (compared ignoring case). The outcome wins
    when both match. Reasons read ``"outcome:<outcome>"`` or ``"error:<error>"``.
    """
    if not rules.auto_add_to_dnc_enabled:
        return None
    if outcome and _matches(outcome, rules.auto_dnc_trigger_statuses):
        return f"outcome:{outcome}"
    if error and _matches(error, rules.auto_dnc_trigger_errors):
        return f"error:{error}"
    return None


def auto_dnc_entry(
    rules: CampaignRules,
    campaign_id: str,
    number: str,
    outcome: str,
    error: str | None,
    now: datetime,
) -> DncEntry | None:
    """The entry to add after an attempt, on the campaign's list, or None when nothing to add."""
    reason = auto_dnc_reason(rules, outcome, error)
    if reason is None:
        return None
    return DncEntry(
        number=number,
        scope=list_scope(rules, campaign_id),
        source=EntrySource.AUTO,
        reason=reason,
        created_at=now,
    )
