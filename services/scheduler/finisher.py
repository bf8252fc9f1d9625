"""The campaign finisher: ends the queued calls of campaigns that were completed, cancelled or
deleted, and removes every key of a deleted campaign, in the background.

The API records the move (or marks the campaign as being deleted), puts the campaign in the
"campaigns to finish" set and answers; this walks the set. One finisher walks a campaign at a
time (a lease, renewed after each chunk). A walk is idempotent: a call that is no longer
queued is left alone and gets no event, so a walk cut short by a restart is simply walked
again from where the queued index now stands. Each call is cancelled together with an entry
in the campaign's "to announce" set, which is cleared once its event is published: the next
walk publishes what a dead finisher cancelled but never announced, so every cancelled call
gets its event, with the same id, and a call announced is never announced again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

from shared.clock import Clock
from shared.events import CallEvent, CallEventType, call_event
from shared.models import Call, CallStatus, Campaign, CampaignStatus
from shared.rules.policy import CLOSED_STATUSES
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore

log = logging.getLogger(__name__)
Publish = Callable[[Iterable[CallEvent]], Awaitable[None]]
# Campaigns taken from the set per pass.
_CAMPAIGNS_PER_PASS = 10


class CampaignFinisher:
    def __init__(
        self,
        catalog: CatalogStore,
        calls: CallStore,
        clock: Clock,
        publish: Publish,
        *,
        chunk: int,
        interval_ms: int,
        lease_ms: int = 60_000,
    ) -> None:
        self._catalog = catalog
        self._calls = calls
        self._clock = clock
        self._publish = publish
        self._chunk = chunk
        self._interval = interval_ms / 1000
        self._lease_ms = lease_ms
        self._holder = uuid.uuid4().hex
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                finished = await self.finish_pending()
            except Exception:
                log.exception("finishing campaigns failed; retrying")
                finished = 0
            if finished == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._interval)

    def stop(self) -> None:
        self._stopping.set()

    async def finish_pending(self) -> int:
        """Finishes the campaigns waiting longest that no other finisher walks; returns how
        many it finished."""
        finished = 0
        for campaign_id in await self._catalog.campaigns_to_finish(_CAMPAIGNS_PER_PASS):
            if self._stopping.is_set():
                break
            finished += await self.finish(campaign_id)
        return finished

    async def finish(self, campaign_id: str) -> bool:
        """Finishes one campaign; False when another finisher walks it or this one was
        stopped before the end (it stays in the set)."""
        if not await self._catalog.take_finish_lease(campaign_id, self._holder, self._lease_ms):
            return False
        try:
            return await self._finish(campaign_id)
        finally:
            # Given back at once (stopped or failed too): another copy may go on. A copy that
            # dies keeps it until it lapses.
            await self._catalog.release_finish_lease(campaign_id, self._holder)

    async def _finish(self, campaign_id: str) -> bool:
        campaign, deleting = await self._catalog.get_campaign_to_finish(campaign_id)
        if campaign is None:
            # Nothing stored (a deletion that got as far as its last key, or a campaign that
            # never was): whatever is left under its tag goes.
            done = await self._remove_keys(campaign_id, None)
        elif deleting:
            # Its webhooks go first: a deleted campaign's cancellations are not delivered, and
            # no delivery is stored under its tag once the keys below are removed.
            await self._catalog.delete_webhooks(campaign_id)
            done = await self._cancel_queued(campaign, CampaignStatus.CANCELLED)
            done = done and await self._remove_keys(campaign_id, campaign)
        elif campaign.status in CLOSED_STATUSES:
            done = await self._cancel_queued(campaign, campaign.status)
        else:
            done = True  # moved on meanwhile (never out of a closed status): nothing to do
        if done:
            await self._catalog.finished(campaign_id)
        return done

    async def _cancel_queued(self, campaign: Campaign, ended_as: CampaignStatus) -> bool:
        """Cancels the campaign's queued calls a chunk at a time, each with its `cancelled`
        event (reason `campaign_<status>`), published once the chunk is cancelled; first the
        events of calls an earlier walk cancelled but did not announce."""
        await self._announce_left_over(campaign, ended_as)
        while not self._stopping.is_set():
            if not await self._catalog.renew_finish_lease(
                campaign.id, self._holder, self._lease_ms
            ):
                return False  # lapsed: another finisher may be walking it now
            call_ids = await self._calls.first_in_status(
                campaign.id, CallStatus.QUEUED, self._chunk
            )
            if not call_ids:
                return True
            now = self._clock.now()
            loaded = await self._calls.get_many((campaign.id, call_id) for call_id in call_ids)
            found = [call for call in loaded if call is not None]
            for call_id, call in zip(call_ids, loaded, strict=True):
                if call is None:
                    await self._calls.forget_from_status(campaign.id, CallStatus.QUEUED, call_id)
            results = await asyncio.gather(
                *(self._calls.cancel_queued(call, now, announce=True) for call in found)
            )
            events: list[CallEvent] = []
            for call, (cancelled, before) in zip(found, results, strict=True):
                if cancelled:
                    events.append(_cancelled(call, campaign, ended_as, now))
                elif before != CallStatus.QUEUED.value:
                    # Listed as queued but not: an index entry left behind; it goes.
                    await self._calls.forget_from_status(campaign.id, CallStatus.QUEUED, call.id)
            await self._publish(events)
            await self._calls.announced(campaign.id, [event.call_id for event in events])
        return False

    async def _announce_left_over(self, campaign: Campaign, ended_as: CampaignStatus) -> None:
        """Publishes the events of calls cancelled by a walk that died before announcing
        them, as that walk would have (same ids, its time of cancelling)."""
        call_ids = await self._calls.to_announce(campaign.id)
        if not call_ids:
            return
        loaded = await self._calls.get_many((campaign.id, call_id) for call_id in call_ids)
        events = [
            _cancelled(call, campaign, ended_as, call.updated_at)
            for call in loaded
            if call is not None and call.status is CallStatus.CANCELLED
        ]
        log.warning(
            "announcing %d cancellations of campaign %s left by an earlier walk",
            len(events),
            campaign.id,
        )
        await self._publish(events)
        await self._calls.announced(campaign.id, call_ids)

    async def _remove_keys(self, campaign_id: str, campaign: Campaign | None) -> bool:
        """Every key of a deleted campaign: its calls a chunk at a time through its calls
        index, then whatever else is under its tag, its entries in service-wide indexes, and
        last its hash (what tells a restarted walk that it is being deleted)."""
        while await self._calls.drop_calls(campaign_id, self._chunk):
            if self._stopping.is_set():
                return False
        await self._catalog.delete_campaign_keys(campaign_id)
        await self._calls.forget_campaign(campaign_id)
        if campaign is not None:
            await self._catalog.unlist_campaign(campaign_id, campaign.environment_id)
        await self._catalog.drop_campaign(campaign_id)
        log.info("campaign %s deleted with all its keys", campaign_id)
        return True


def _cancelled(
    call: Call, campaign: Campaign, ended_as: CampaignStatus, now: datetime
) -> CallEvent:
    return call_event(
        call,
        CallEventType.CANCELLED,
        now,
        attempt=call.attempt,
        max_attempts=campaign.max_retries + 1,
        status=CallStatus.CANCELLED.value,
        reason=f"campaign_{ended_as.value}",
    )
