"""Do-not-call rules: which list a campaign checks, when to auto-add.

When an entry stops counting (at its `expires_at` exactly) is decided where entries are read,
in Redis: `shared/store/dnc_read.lua`.

A list is named by its *scope*: ``"environment"`` for the environment-wide list, or
``"campaign:<campaign_id>"`` for one campaign's own list. Entries live inside one environment;
the environment id is not part of the scope (the store keys it separately).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from shared.models import CampaignRules, DncSource

ENVIRONMENT_SCOPE: Final = "environment"
_CAMPAIGN_PREFIX: Final = "campaign:"


class EntrySource(StrEnum):
    """Who put a number on a list."""

    API = "api"
    AUTO = "auto"
    IMPORT = "import"


def campaign_scope(campaign_id: str) -> str:
    """The scope of one campaign's own list."""
    if not campaign_id:
        raise ValueError("a campaign scope needs a campaign id")
    return f"{_CAMPAIGN_PREFIX}{campaign_id}"


def scope_for(campaign_id: str | None) -> str:
    """The campaign's own list when an id is given, else the environment-wide list."""
    return ENVIRONMENT_SCOPE if campaign_id is None else campaign_scope(campaign_id)


def campaign_id_of(scope: str) -> str | None:
    """The campaign a scope belongs to; None for the environment-wide list."""
    if scope == ENVIRONMENT_SCOPE:
        return None
    if scope.startswith(_CAMPAIGN_PREFIX) and len(scope) > len(_CAMPAIGN_PREFIX):
        return scope[len(_CAMPAIGN_PREFIX) :]
    raise ValueError(f"not a do-not-call scope: {scope!r}")


@dataclass(frozen=True, slots=True)
class DncEntry:
    """One number on one list. `expires_at` None means it never expires."""

    number: str  # E.164
    scope: str  # ENVIRONMENT_SCOPE or campaign_scope(id)
    source: EntrySource
    reason: str | None
    created_at: datetime
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        campaign_id_of(self.scope)  # rejects a malformed scope early
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")

    @property
    def campaign_id(self) -> str | None:
        return campaign_id_of(self.scope)


def list_scope(rules: CampaignRules, campaign_id: str) -> str:
    """The list the campaign's `do_not_call_list_source` names, whether or not checks are on.

    Auto-DNC adds to this list even when `do_not_call_enabled` is false.
    """
    if rules.do_not_call_list_source is DncSource.CAMPAIGN:
        return campaign_scope(campaign_id)
    return ENVIRONMENT_SCOPE


def applicable_scope(rules: CampaignRules, campaign_id: str) -> str | None:
    """The list a call of this campaign is checked against; None when checks are off."""
    if not rules.do_not_call_enabled:
        return None
    return list_scope(rules, campaign_id)
