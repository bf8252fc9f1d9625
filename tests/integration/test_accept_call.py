"""The "accept a call" use case on a real Redis: what it stores, and how it treats a campaign
read before its last change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from shared import keys
from shared.calls.accept import (
    UNSETTLED,
    AcceptCall,
    Accepted,
    CampaignRead,
    NewCall,
    Refused,
    StoredCampaigns,
)
from shared.models import Campaign, CampaignRules, CampaignStatus
from shared.rules.acceptance import Refusal
from shared.rules.windows import SchedulingReason
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.store.dnc import DncStore
from tests.clock import MovableClock
from tests.support import ALWAYS_OPEN

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
NUMBER = "+12125550123"


def _campaign(status: CampaignStatus = CampaignStatus.ACTIVE, at: datetime = T0) -> Campaign:
    rules = CampaignRules.model_validate({**ALWAYS_OPEN, "agent_id": "agent-1"})
    return Campaign(
        **rules.model_dump(),
        id="campaign-1",
        environment_id="env-a",
        status=status,
        created_at=T0,
        updated_at=at,
    )


def _request(call_id: str = "call-1", to: str = NUMBER) -> NewCall:
    return NewCall(call_id, to, {"first_name": "Ada"}, {"crm_id": "42"}, False, False)


@pytest.fixture
def catalog(redis: Redis) -> CatalogStore:
    return CatalogStore(redis)


@pytest.fixture
def calls(redis: Redis) -> CallStore:
    return CallStore(redis, 16)


@pytest.fixture
def accept(redis: Redis, catalog: CatalogStore, calls: CallStore) -> AcceptCall:
    clock = MovableClock(T0 + timedelta(minutes=1))
    return AcceptCall(calls, DncStore(redis), StoredCampaigns(catalog), clock, 60_000)


async def test_an_accepted_call_is_stored_with_its_first_ring(
    accept: AcceptCall, catalog: CatalogStore, calls: CallStore
) -> None:
    campaign = _campaign()
    await catalog.save_campaign(campaign)

    result = await accept(campaign, _request(), current=True)

    assert isinstance(result, Accepted)
    assert result.first
    assert result.call.scheduling_reason == SchedulingReason.IMMEDIATE.value
    stored = await calls.get(campaign.id, "call-1")
    assert stored is not None
    assert (stored.to, stored.payload, stored.context) == (
        NUMBER,
        {"first_name": "Ada"},
        {"crm_id": "42"},
    )
    assert stored.scheduled_at == result.call.scheduled_at


async def test_a_campaign_changed_since_it_was_read_is_read_again_before_storing(
    accept: AcceptCall, catalog: CatalogStore, calls: CallStore
) -> None:
    read_before = _campaign()
    paused_since = _campaign(CampaignStatus.PAUSED, T0 + timedelta(seconds=30))
    await catalog.save_campaign(paused_since)

    result = await accept(read_before, _request(), current=True)

    assert isinstance(result, Accepted)
    assert result.campaign.status is CampaignStatus.PAUSED
    stored = await calls.get(read_before.id, "call-1")
    assert stored is not None
    assert stored.scheduling_reason == SchedulingReason.CAMPAIGN_PAUSED.value


async def test_a_refusal_from_an_older_read_is_checked_against_the_stored_campaign(
    accept: AcceptCall, catalog: CatalogStore
) -> None:
    await catalog.save_campaign(_campaign())
    read_before = _campaign(CampaignStatus.CANCELLED, T0 - timedelta(hours=1))

    assert isinstance(await accept(read_before, _request(), current=False), Accepted)


async def test_a_refusal_from_a_current_read_is_final(accept: AcceptCall, redis: Redis) -> None:
    # No campaign is stored: read again, it would refuse as not found instead.
    result = await accept(_campaign(CampaignStatus.CANCELLED), _request(), current=True)

    assert result == Refused(Refusal.CAMPAIGN_CLOSED, _campaign(CampaignStatus.CANCELLED))
    assert await redis.exists(keys.call("campaign-1", "call-1")) == 0


async def test_a_campaign_deleted_since_it_was_read_refuses_as_not_found(
    accept: AcceptCall, redis: Redis
) -> None:
    result = await accept(_campaign(), _request(), current=False)

    assert result == Refused(Refusal.CAMPAIGN_NOT_FOUND, None)
    assert await redis.exists(keys.call("campaign-1", "call-1")) == 0


async def test_the_same_request_again_finds_the_call_it_stored(
    accept: AcceptCall, catalog: CatalogStore, calls: CallStore
) -> None:
    campaign = _campaign()
    await catalog.save_campaign(campaign)

    first = await accept(campaign, _request(), current=True)
    again = await accept(campaign, _request(), current=True)

    assert isinstance(first, Accepted)
    assert isinstance(again, Accepted)
    assert (first.first, again.first) == (True, False)
    assert await calls.call_ids(campaign.id) == ["call-1"]


async def test_a_second_call_to_a_reserved_number_names_the_holder(
    accept: AcceptCall, catalog: CatalogStore
) -> None:
    campaign = _campaign()
    await catalog.save_campaign(campaign)
    assert isinstance(await accept(campaign, _request("call-1"), current=True), Accepted)

    result = await accept(campaign, _request("call-2"), current=True)

    assert result == Refused(Refusal.DUPLICATE, campaign, "call-1")


class AlwaysOutdated:
    """A source whose every read is older than the stored campaign."""

    def __init__(self) -> None:
        self.reads = 0

    async def refresh(self, campaign_id: str) -> Campaign | None:
        self.reads += 1
        return _campaign(at=T0 - timedelta(hours=1))

    def derived(self, campaign: Campaign) -> CampaignRead:
        return CampaignRead.of(campaign)


async def test_a_campaign_that_keeps_changing_stores_nothing(
    redis: Redis, catalog: CatalogStore, calls: CallStore
) -> None:
    await catalog.save_campaign(_campaign())
    source = AlwaysOutdated()
    accept = AcceptCall(calls, DncStore(redis), source, MovableClock(T0), 60_000)

    result = await accept(_campaign(at=T0 - timedelta(hours=1)), _request(), current=True)

    assert result is UNSETTLED
    assert source.reads == 3
    assert await calls.call_ids("campaign-1") == []
