from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.scheduler.domain.auto_dnc import auto_dnc_entry, auto_dnc_reason
from shared.models import CampaignRules
from shared.rules.dnc import ENVIRONMENT_SCOPE, DncEntry, EntrySource

CAMPAIGN = "camp_42"
NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
NUMBER = "+12125550123"


def rules(**overrides: Any) -> CampaignRules:
    return CampaignRules.model_validate(
        {
            "name": "c",
            "campaign_type": "sales",
            "agent_id": "agent_1",
            "start_date": "2026-01-01",
            **overrides,
        }
    )


@pytest.mark.parametrize(
    ("overrides", "outcome", "error", "reason"),
    [
        pytest.param(
            {"auto_dnc_trigger_statuses": ["voicemail"]},
            "voicemail",
            None,
            None,
            id="disabled",
        ),
        pytest.param(
            {"auto_add_to_dnc_enabled": True, "auto_dnc_trigger_statuses": ["voicemail"]},
            "voicemail",
            None,
            "outcome:voicemail",
            id="status-matches",
        ),
        pytest.param(
            {"auto_add_to_dnc_enabled": True, "auto_dnc_trigger_statuses": ["voicemail"]},
            "busy",
            None,
            None,
            id="status-does-not-match",
        ),
        pytest.param(
            {"auto_add_to_dnc_enabled": True, "auto_dnc_trigger_errors": ["invalid_number"]},
            "failed",
            "invalid_number",
            "error:invalid_number",
            id="error-matches",
        ),
        pytest.param(
            {"auto_add_to_dnc_enabled": True, "auto_dnc_trigger_errors": ["invalid_number"]},
            "failed",
            "timeout",
            None,
            id="error-does-not-match",
        ),
        pytest.param(
            {"auto_add_to_dnc_enabled": True, "auto_dnc_trigger_errors": ["invalid_number"]},
            "failed",
            None,
            None,
            id="no-error",
        ),
        pytest.param(
            {
                "auto_add_to_dnc_enabled": True,
                "auto_dnc_trigger_statuses": ["failed"],
                "auto_dnc_trigger_errors": ["disconnected"],
            },
            "failed",
            "disconnected",
            "outcome:failed",
            id="both-match-outcome-wins",
        ),
        pytest.param(
            {"auto_add_to_dnc_enabled": True, "auto_dnc_trigger_statuses": ["Completed"]},
            "completed",
            None,
            "outcome:completed",
            id="ignores-case",
        ),
        pytest.param(
            {"auto_add_to_dnc_enabled": True},
            "completed",
            "invalid_number",
            None,
            id="enabled-without-triggers",
        ),
        pytest.param(
            {"auto_add_to_dnc_enabled": True, "auto_dnc_trigger_statuses": ["completed"]},
            "",
            None,
            None,
            id="empty-outcome",
        ),
    ],
)
def test_auto_dnc_reason(
    overrides: dict[str, Any], outcome: str, error: str | None, reason: str | None
) -> None:
    assert auto_dnc_reason(rules(**overrides), outcome, error) == reason


@pytest.mark.parametrize(
    ("overrides", "scope"),
    [
        pytest.param({}, ENVIRONMENT_SCOPE, id="environment-list"),
        pytest.param(
            {"do_not_call_list_source": "campaign"}, f"campaign:{CAMPAIGN}", id="campaign-list"
        ),
    ],
)
def test_auto_dnc_entry_goes_on_the_campaigns_list(overrides: dict[str, Any], scope: str) -> None:
    campaign = rules(
        auto_add_to_dnc_enabled=True, auto_dnc_trigger_statuses=["completed"], **overrides
    )

    made = auto_dnc_entry(campaign, CAMPAIGN, NUMBER, "completed", None, NOW)

    assert made == DncEntry(NUMBER, scope, EntrySource.AUTO, "outcome:completed", NOW, None)


def test_auto_dnc_entry_is_none_when_nothing_triggers() -> None:
    campaign = rules(auto_add_to_dnc_enabled=True, auto_dnc_trigger_statuses=["completed"])

    assert auto_dnc_entry(campaign, CAMPAIGN, NUMBER, "busy", None, NOW) is None
