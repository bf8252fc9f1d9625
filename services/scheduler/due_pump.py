"""The due pump: releases calls whose time has come, once each, to the dialer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from services.scheduler.domain.policy import calling_policy
from services.scheduler.domain.windows import Closed, next_allowed_time
from services.scheduler.handlers import SchedulerRuntime, max_attempts
from shared.bus import publish_events
from shared.events import CallDue, CallEventType, call_event
from shared.models import Call, CallStatus, Campaign, CampaignStatus
from shared.phone import time_zones
from shared.state_redis import DueClaim, from_ms
from shared.topics import CALLS_DUE, call_key

log = logging.getLogger(__name__)


class DuePump:
    def __init__(
        self,
        runtime: SchedulerRuntime,
        *,
        claim_batch: int,
        lease_ms: int,
        interval_ms: int,
        reap_interval_ms: int,
        hold_recheck_ms: int,
    ) -> None:
        self._rt = runtime
        self._batch = claim_batch
        self._lease_ms = lease_ms
        self._interval = interval_ms / 1000
        self._reap_every = timedelta(milliseconds=reap_interval_ms)
        self._hold = timedelta(milliseconds=hold_recheck_ms)
        self._last_reap: datetime | None = None
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                released = await self.tick()
            except Exception:
                log.exception("due pump pass failed; retrying")
                released = 0
            if released == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._interval)

    def stop(self) -> None:
        self._stopping.set()

    async def tick(self) -> int:
        """One pass over every shard; returns how many calls were handed to the dialer."""
        now = self._rt.clock.now()
        if self._last_reap is None or now - self._last_reap >= self._reap_every:
            self._last_reap = now
            for shard in range(self._rt.calls.due_shards):
                requeued = await self._rt.calls.requeue_expired(shard, now)
                if requeued:
                    log.warning("requeued %d calls whose release lease ran out", requeued)
        released = 0
        for shard in range(self._rt.calls.due_shards):
            claims = await self._rt.calls.claim_due(shard, now, self._batch, self._lease_ms)
            if claims:
                released += await self._release(claims, now)
        return released

    async def _release(self, claims: list[DueClaim], now: datetime) -> int:
        calls = await self._rt.calls.get_many((c.campaign_id, c.call_id) for c in claims)
        campaigns: dict[str, Campaign | None] = {}
        for claim in claims:
            if claim.campaign_id not in campaigns:
                campaigns[claim.campaign_id] = await self._rt.catalog.get_campaign(
                    claim.campaign_id
                )
        due: list[tuple[DueClaim, Call]] = []
        done: list[DueClaim] = []
        for claim, call in zip(claims, calls, strict=True):
            campaign = campaigns[claim.campaign_id]
            if call is None or campaign is None or call.status is not CallStatus.QUEUED:
                done.append(claim)
                continue
            if campaign.status is not CampaignStatus.ACTIVE:
                # Held, not dropped: looked at again shortly, released once resumed.
                await self._rt.calls.reschedule(claim, now + self._hold)
                continue
            # The rules are checked again at release: the campaign may have changed since.
            window = next_allowed_time(
                calling_policy(campaign), time_zones(call.to), now, from_request=False
            )
            if isinstance(window, Closed):
                await self._expire(call, campaign, now)
                done.append(claim)
            elif window.at > now:
                await self._rt.calls.reschedule(claim, window.at)
            else:
                due.append((claim, call))
        if due:
            await asyncio.gather(
                *(
                    self._rt.broker.publish(
                        CallDue(
                            call_id=call.id,
                            campaign_id=call.campaign_id,
                            environment_id=call.environment_id,
                            attempt=call.attempt,
                            to=call.to,
                            is_testing=call.is_testing,
                            due_at=from_ms(claim.due_ms),
                            released_at=now,
                        )
                        .model_dump_json()
                        .encode(),
                        topic=CALLS_DUE,
                        key=call_key(call.id),
                    )
                    for claim, call in due
                )
            )
        await self._rt.calls.handed_off([*done, *(claim for claim, _ in due)])
        return len(due)

    async def _expire(self, call: Call, campaign: Campaign, now: datetime) -> None:
        _first, _ = await self._rt.calls.apply_outcome(
            call, call.attempt, "expired", CallStatus.EXPIRED, now, terminal=True
        )
        event = call_event(
            call,
            CallEventType.EXPIRED,
            now,
            attempt=call.attempt,
            max_attempts=max_attempts(campaign),
            status=CallStatus.EXPIRED.value,
            reason="campaign_ended",
        )
        await publish_events(self._rt.broker, [event])
