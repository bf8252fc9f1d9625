"""The call path's short-lived campaign reads: kept for `max_age`, misses never kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from services.ingest.adapters.recent_campaigns import RecentCampaigns
from shared.models import Campaign
from shared.rules.policy import calling_policy
from shared.store.catalog import CatalogStore
from tests.support import ALWAYS_OPEN

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _campaign(name: str) -> Campaign:
    fields: dict[str, Any] = {**ALWAYS_OPEN, "name": name, "agent_id": "agent-1"}
    return Campaign(id="c1", environment_id="env-a", created_at=NOW, updated_at=NOW, **fields)


class Catalog:
    """The one read RecentCampaigns makes, counted."""

    def __init__(self) -> None:
        self.stored: dict[str, Campaign] = {}
        self.reads = 0

    async def get_campaign(self, campaign_id: str) -> Campaign | None:
        self.reads += 1
        return self.stored.get(campaign_id)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _recent(catalog: Catalog, clock: Clock, max_age: float = 1.0) -> RecentCampaigns:
    return RecentCampaigns(cast(CatalogStore, catalog), max_age, size=2, monotonic=clock)


async def test_a_campaign_is_read_again_only_after_max_age() -> None:
    catalog, clock = Catalog(), Clock()
    recent = _recent(catalog, clock)
    catalog.stored["c1"] = _campaign("first")
    assert (await recent.get("c1")) == catalog.stored["c1"]
    catalog.stored["c1"] = _campaign("second")
    clock.now += 0.999
    assert (await recent.get("c1")).name == "first"  # type: ignore[union-attr]
    clock.now += 0.001
    assert (await recent.get("c1")).name == "second"  # type: ignore[union-attr]
    assert catalog.reads == 2


async def test_a_missing_campaign_is_looked_up_every_time() -> None:
    catalog, clock = Catalog(), Clock()
    recent = _recent(catalog, clock)
    assert await recent.get("c1") is None
    catalog.stored["c1"] = _campaign("made")
    assert (await recent.get("c1")) is not None
    assert catalog.reads == 2


async def test_refresh_and_forget_drop_what_was_kept() -> None:
    catalog, clock = Catalog(), Clock()
    recent = _recent(catalog, clock)
    catalog.stored["c1"] = _campaign("first")
    await recent.get("c1")
    catalog.stored["c1"] = _campaign("second")
    assert (await recent.refresh("c1")).name == "second"  # type: ignore[union-attr]
    catalog.stored["c1"] = _campaign("third")
    recent.forget("c1")
    assert (await recent.get("c1")).name == "third"  # type: ignore[union-attr]
    del catalog.stored["c1"]
    assert await recent.refresh("c1") is None
    assert await recent.get("c1") is None


async def test_zero_max_age_reads_every_time_and_the_size_is_bounded() -> None:
    catalog, clock = Catalog(), Clock()
    uncached = _recent(catalog, clock, max_age=0)
    catalog.stored["c1"] = _campaign("first")
    await uncached.get("c1")
    await uncached.get("c1")
    assert catalog.reads == 2
    bounded = _recent(catalog, clock)
    for campaign_id in ("a", "b", "c1"):
        catalog.stored[campaign_id] = _campaign(campaign_id).model_copy(update={"id": campaign_id})
        await bounded.get(campaign_id)
    reads = catalog.reads
    await bounded.get("a")  # the oldest, dropped to make room for c1
    await bounded.get("c1")
    assert catalog.reads == reads + 1


async def test_a_reads_policy_and_version_are_derived_once_and_follow_a_new_read() -> None:
    catalog, clock = Catalog(), Clock()
    recent = _recent(catalog, clock)
    catalog.stored["c1"] = _campaign("first")
    first = await recent.get("c1")
    assert first is not None

    derived = recent.derived(first)

    assert recent.derived(first) is derived
    assert derived.policy == calling_policy(first)
    assert derived.version == "2026-03-02T12:00:00Z"
    later = NOW + timedelta(minutes=5)
    catalog.stored["c1"] = _campaign("second").model_copy(
        update={"updated_at": later, "days_of_week": [1]}
    )
    second = await recent.refresh("c1")
    assert second is not None
    assert recent.derived(second).policy == calling_policy(second) != derived.policy
    assert recent.derived(second).version == "2026-03-02T12:05:00Z"


async def test_what_is_derived_is_bounded_too() -> None:
    catalog, clock = Catalog(), Clock()
    recent = _recent(catalog, clock)
    made = [_campaign(name).model_copy(update={"id": name}) for name in ("a", "b", "c")]
    derived = [recent.derived(campaign) for campaign in made]

    assert recent.derived(made[2]) is derived[2]
    assert recent.derived(made[0]) is not derived[0]  # dropped to make room for c
