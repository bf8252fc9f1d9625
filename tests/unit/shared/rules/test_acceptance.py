from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.models import CampaignRules, CampaignStatus
from shared.rules.acceptance import Refusal, decide_first_attempt
from shared.rules.policy import calling_policy
from shared.rules.windows import Schedule, SchedulingReason
from tests.support import ALWAYS_OPEN

NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
NUMBER = "+12125550123"


def rules(**overrides: Any) -> CampaignRules:
    return CampaignRules.model_validate({**ALWAYS_OPEN, "agent_id": "agent-1", **overrides})


@pytest.mark.parametrize(
    ("status", "on_dnc", "rests_until", "overrides", "expected"),
    [
        pytest.param(
            CampaignStatus.ACTIVE,
            False,
            None,
            {},
            Schedule(NOW, SchedulingReason.IMMEDIATE),
            id="open-now",
        ),
        pytest.param(
            CampaignStatus.PAUSED,
            False,
            None,
            {},
            Schedule(NOW, SchedulingReason.CAMPAIGN_PAUSED),
            id="paused-holds-it",
        ),
        pytest.param(
            CampaignStatus.DRAFT,
            False,
            None,
            {},
            Schedule(NOW, SchedulingReason.CAMPAIGN_PAUSED),
            id="draft-holds-it",
        ),
        pytest.param(
            CampaignStatus.ACTIVE,
            False,
            NOW + timedelta(hours=2),
            {},
            Schedule(NOW + timedelta(hours=2), SchedulingReason.COOLDOWN),
            id="number-resting",
        ),
        pytest.param(CampaignStatus.ACTIVE, True, None, {}, Refusal.DO_NOT_CALL, id="on-the-list"),
        pytest.param(
            CampaignStatus.COMPLETED, True, None, {}, Refusal.CAMPAIGN_CLOSED, id="closed-first"
        ),
        pytest.param(
            CampaignStatus.CANCELLED, False, None, {}, Refusal.CAMPAIGN_CLOSED, id="cancelled"
        ),
        pytest.param(
            CampaignStatus.ACTIVE,
            False,
            None,
            {"end_date": "2026-03-01"},
            Refusal.CAMPAIGN_CLOSED,
            id="windows-ended",
        ),
    ],
)
def test_decide_first_attempt(
    status: CampaignStatus,
    on_dnc: bool,
    rests_until: datetime | None,
    overrides: dict[str, Any],
    expected: Schedule | Refusal,
) -> None:
    campaign = rules(**overrides)

    decided = decide_first_attempt(
        campaign, status, NUMBER, NOW, on_dnc=on_dnc, rests_until=rests_until
    )

    assert decided == expected


def test_a_policy_built_earlier_decides_as_the_rules_do() -> None:
    campaign = rules(call_time_ranges=[{"start": "13:00", "end": "14:00"}])
    policy = calling_policy(campaign)

    with_policy = decide_first_attempt(
        campaign, CampaignStatus.ACTIVE, NUMBER, NOW, on_dnc=False, rests_until=None, policy=policy
    )
    without = decide_first_attempt(
        campaign, CampaignStatus.ACTIVE, NUMBER, NOW, on_dnc=False, rests_until=None
    )

    assert (
        with_policy
        == without
        == Schedule(NOW + timedelta(hours=1), SchedulingReason.OUTSIDE_CALL_HOURS)
    )
