"""Campaigns as read a moment ago, for the call path.

Every call request needs its campaign's rules. Reading them from Redis each time costs a command
per request for data that changes rarely, so the call path keeps what it read for up to
`max_age` seconds. Staleness never decides anything: the step that stores the call compares the
campaign's stored `updated_at` with the one the request was checked against, and a request
checked against an older version is checked again with a fresh read. Only misses are not kept,
so a campaign created a moment ago is found at once, and this process drops what it kept of a
campaign it changes itself.

What every request derives from a campaign's rules (its calling policy, the version the store
compares) is derived once per read and kept beside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shared.calls.accept import CampaignRead
from shared.models import Campaign
from shared.store.catalog import CatalogStore


class RecentCampaigns:
    def __init__(
        self,
        catalog: CatalogStore,
        max_age: float,
        size: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalog = catalog
        self._max_age = max_age
        self._size = size
        self._monotonic = monotonic
        self._entries: dict[str, tuple[float, Campaign]] = {}
        self._derived: dict[str, CampaignRead] = {}

    async def get(self, campaign_id: str) -> Campaign | None:
        """The campaign as read at most `max_age` seconds ago, or None if it does not exist."""
        now = self._monotonic()
        entry = self._entries.get(campaign_id)
        if entry is not None and now - entry[0] < self._max_age:
            return entry[1]
        return await self.refresh(campaign_id)

    def forget(self, campaign_id: str) -> None:
        """Drops what was kept; called after this process changed the campaign."""
        self._entries.pop(campaign_id, None)
        self._derived.pop(campaign_id, None)

    def derived(self, campaign: Campaign) -> CampaignRead:
        """The policy and version of this read of the campaign, derived on its first use."""
        kept = self._derived.get(campaign.id)
        if kept is not None and kept.campaign is campaign:
            return kept
        read = CampaignRead.of(campaign)
        if campaign.id not in self._derived and len(self._derived) >= self._size:
            self._derived.pop(next(iter(self._derived)))  # the oldest kept
        self._derived[campaign.id] = read
        return read

    async def refresh(self, campaign_id: str) -> Campaign | None:
        """Reads the campaign now and keeps it (a stored call found the kept one outdated)."""
        read_at = self._monotonic()
        campaign = await self._catalog.get_campaign(campaign_id)
        if campaign is None:
            self.forget(campaign_id)
            return None
        if self._max_age > 0:
            if campaign_id not in self._entries and len(self._entries) >= self._size:
                self._entries.pop(next(iter(self._entries)))  # the oldest kept
            self._entries[campaign_id] = (read_at, campaign)
        return campaign
