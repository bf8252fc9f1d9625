from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.models import CampaignRules
from shared.rules.dnc import (
    ENVIRONMENT_SCOPE,
    DncEntry,
    EntrySource,
    applicable_scope,
    campaign_id_of,
    campaign_scope,
    list_scope,
    scope_for,
)

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


def entry(expires_at: datetime | None = None, scope: str = ENVIRONMENT_SCOPE) -> DncEntry:
    return DncEntry(NUMBER, scope, EntrySource.API, "asked", NOW - timedelta(days=1), expires_at)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({}, ENVIRONMENT_SCOPE, id="defaults-environment"),
        pytest.param(
            {"do_not_call_list_source": "environment"}, ENVIRONMENT_SCOPE, id="environment"
        ),
        pytest.param(
            {"do_not_call_list_source": "campaign"}, f"campaign:{CAMPAIGN}", id="campaign"
        ),
        pytest.param({"do_not_call_enabled": False}, None, id="disabled"),
        pytest.param(
            {"do_not_call_enabled": False, "do_not_call_list_source": "campaign"},
            None,
            id="disabled-campaign",
        ),
    ],
)
def test_applicable_scope(overrides: dict[str, Any], expected: str | None) -> None:
    assert applicable_scope(rules(**overrides), CAMPAIGN) == expected


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({}, ENVIRONMENT_SCOPE, id="environment"),
        pytest.param(
            {"do_not_call_list_source": "campaign"}, f"campaign:{CAMPAIGN}", id="campaign"
        ),
        pytest.param(
            {"do_not_call_enabled": False, "do_not_call_list_source": "campaign"},
            f"campaign:{CAMPAIGN}",
            id="named-even-when-checks-are-off",
        ),
    ],
)
def test_list_scope_names_the_list_whether_or_not_checks_are_on(
    overrides: dict[str, Any], expected: str
) -> None:
    assert list_scope(rules(**overrides), CAMPAIGN) == expected


@pytest.mark.parametrize(
    ("campaign_id", "scope"),
    [
        pytest.param(None, "environment", id="environment"),
        pytest.param("c1", "campaign:c1", id="campaign"),
        pytest.param("9b2f1c4e-0000-4000-8000-000000000001", None, id="uuid"),
    ],
)
def test_scopes_round_trip(campaign_id: str | None, scope: str | None) -> None:
    built = scope_for(campaign_id)

    if scope is not None:
        assert built == scope
    assert campaign_id_of(built) == campaign_id


@pytest.mark.parametrize("scope", ["", "campaign:", "global", "Environment", "campaigns:x"])
def test_a_malformed_scope_is_refused(scope: str) -> None:
    with pytest.raises(ValueError, match="scope"):
        campaign_id_of(scope)
    with pytest.raises(ValueError, match="scope"):
        entry(scope=scope)


def test_campaign_scope_needs_an_id() -> None:
    with pytest.raises(ValueError, match="campaign id"):
        campaign_scope("")


@pytest.mark.parametrize(
    ("created_at", "expires_at"),
    [
        pytest.param(datetime(2026, 1, 1), None, id="naive-created"),
        pytest.param(NOW, datetime(2026, 1, 1), id="naive-expires"),
    ],
)
def test_entries_need_aware_times(created_at: datetime, expires_at: datetime | None) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        DncEntry(NUMBER, ENVIRONMENT_SCOPE, EntrySource.API, None, created_at, expires_at)


def test_entry_knows_its_campaign() -> None:
    assert entry(scope=campaign_scope("c9")).campaign_id == "c9"
    assert entry().campaign_id is None
