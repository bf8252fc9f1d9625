"""The due pump: releases calls whose time has come, once each, to the dialer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from opentelemetry.trace import Span, SpanKind
from prometheus_client import Counter

from services.scheduler.handlers import SchedulerRuntime, max_attempts, queue_call
from shared import keys, tracing
from shared.bus import Record, publish_events
from shared.calls.hand_back import hand_back
from shared.clock import from_ms
from shared.events import CallEventType, call_due_json, call_event
from shared.models import CallStatus, Campaign, CampaignStatus
from shared.phone import time_zones
from shared.rules.outcomes import Outcome
from shared.rules.policy import CLOSED_STATUSES, calling_policy
from shared.rules.windows import CallingPolicy, Closed, Schedule, next_allowed_time
from shared.store.calls import DueCall, DueClaim
from shared.store.limits import Grant
from shared.topics import CALLS_DUE, call_key

log = logging.getLogger(__name__)
# The error an attempt ends with when its dialer stopped renewing its slot.
DIALER_LOST = "dialer_lost"
# Looks for stranded calls in one reap pass, each at most a claim batch per campaign.
_STRANDED_LOOKS = 20


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
        slot_recheck_ms: int,
        claim_ttl_ms: int,
        handoff_grace_ms: int,
        released: Counter | None = None,
    ) -> None:
        self._rt = runtime
        self._released = released
        self._batch = claim_batch
        self._lease_ms = lease_ms
        self._interval = interval_ms / 1000
        # Set by `wake` and `stop`: the pump looks again at once.
        self._work = asyncio.Event()
        self._reap_every = timedelta(milliseconds=reap_interval_ms)
        self._hold = timedelta(milliseconds=hold_recheck_ms)
        self._slot_recheck = timedelta(milliseconds=slot_recheck_ms)
        self._claim_ttl_ms = claim_ttl_ms
        self._handoff_grace = timedelta(milliseconds=handoff_grace_ms)
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
                    await asyncio.wait_for(self._work.wait(), self._interval)
            self._work.clear()

    def wake(self) -> None:
        """Calls were queued: look for due ones now rather than at the next interval."""
        self._work.set()

    def stop(self) -> None:
        self._stopping.set()
        self._work.set()

    async def tick(self) -> int:
        """One pass over every shard; returns how many calls were handed to the dialer."""
        now = self._rt.clock.now()
        if self._last_reap is None or now - self._last_reap >= self._reap_every:
            self._last_reap = now
            for shard in range(self._rt.calls.due_shards):
                requeued = await self._rt.calls.requeue_expired(shard, now)
                if requeued:
                    log.warning("requeued %d calls whose release lease ran out", requeued)
            await self.recover_lost_slots(now)
            try:
                await self.queue_stranded(now)
            except Exception:
                # Releases go on: the stranded calls are looked for again at the next reap.
                log.exception("looking for stranded calls failed")
        # The shards are released side by side, so that one shard's round trips to Redis and
        # its wait for the broker's acknowledgement overlap the others' work.
        results = await asyncio.gather(
            *(self._release_shard(shard, now) for shard in range(self._rt.calls.due_shards)),
            return_exceptions=True,
        )
        released = 0
        failure: BaseException | None = None
        for result in results:
            if isinstance(result, BaseException):
                failure = failure or result
            else:
                released += result
        if failure is not None:
            # The failed shards' claims keep their leases and come back when those run out.
            raise failure
        return released

    async def _release_shard(self, shard: int, now: datetime) -> int:
        claims = await self._rt.calls.claim_due(shard, now, self._batch, self._lease_ms)
        return await self._release(claims, now) if claims else 0

    async def _release(self, claims: list[DueClaim], now: datetime) -> int:
        calls, campaigns = await asyncio.gather(
            self._rt.calls.due_calls((c.campaign_id, c.call_id) for c in claims),
            self._campaigns({claim.campaign_id for claim in claims}),
        )
        due: list[tuple[DueClaim, DueCall]] = []
        done: list[DueClaim] = []
        later: list[tuple[DueClaim, datetime]] = []
        policies: dict[str, CallingPolicy] = {}
        # The window depends only on the campaign, the number's zones and `now`: worked out
        # once per campaign and set of zones in a batch.
        windows: dict[tuple[str, tuple[str, ...]], Schedule | Closed] = {}
        for claim, call in zip(claims, calls, strict=True):
            campaign = campaigns[claim.campaign_id]
            if call is None or campaign is None or call.status is not CallStatus.QUEUED:
                done.append(claim)
                continue
            if campaign.status in CLOSED_STATUSES:
                await self._cancel(claim, campaign, now)
                done.append(claim)
                continue
            if campaign.status is not CampaignStatus.ACTIVE:
                # Held, not dropped: looked at again shortly, released once resumed.
                later.append((claim, now + self._hold))
                continue
            # The rules are checked again at release: the campaign may have changed since.
            policy = policies.get(campaign.id)
            if policy is None:
                policy = policies[campaign.id] = calling_policy(campaign)
            zones = time_zones(call.to) if policy.recipient_local_hours else ()
            window = windows.get((campaign.id, zones))
            if window is None:
                window = windows[(campaign.id, zones)] = next_allowed_time(
                    policy, zones, now, from_request=False
                )
            if isinstance(window, Closed):
                await self._expire(claim, campaign, now)
                done.append(claim)
            elif window.at > now:
                later.append((claim, window.at))
            else:
                due.append((claim, call))
        due = await self._after_cooldowns(due, now, later)
        due = await self._within_limits(due, campaigns, now, later)
        # What waits goes back to the queue for its time, dropping its lease, in one step.
        await self._rt.calls.reschedule_many(later)
        if due:
            records: list[Record] = [
                (call_key(call.id), call_due_json(call, from_ms(claim.due_ms), now))
                for claim, call in due
            ]
            spans = self._release_spans(due, records) if self._rt.tracing.on else []
            try:
                await self._rt.sender.send_all(CALLS_DUE, records)
            except Exception as exc:
                for span in spans:
                    span.record_exception(exc)
                    tracing.failed(span, "not handed to the broker")
                raise
            finally:
                for span in spans:
                    span.end()
            if self._released is not None:
                self._released.inc(len(due))
        await self._rt.calls.handed_off([*done, *(claim for claim, _ in due)])
        return len(due)

    async def _campaigns(self, campaign_ids: set[str]) -> dict[str, Campaign | None]:
        """The claims' campaigns, read together."""
        ordered = list(campaign_ids)
        found = await asyncio.gather(*(self._rt.catalog.get_campaign(c) for c in ordered))
        return dict(zip(ordered, found, strict=True))

    def _release_spans(
        self, due: list[tuple[DueClaim, DueCall]], records: list[Record]
    ) -> list[Span]:
        """A producer span for each call released, in the trace stored with it; each record
        gets its span's context in its headers."""
        spans: list[Span] = []
        for index, (_, call) in enumerate(due):
            span = self._rt.tracing.start(
                "release call",
                kind=SpanKind.PRODUCER,
                parent=tracing.from_stored(call.trace),
                attributes={
                    tracing.CALL_ID: call.id,
                    tracing.CAMPAIGN_ID: call.campaign_id,
                    tracing.ATTEMPT: call.attempt,
                    tracing.TOPIC: CALLS_DUE,
                },
            )
            spans.append(span)
            key, value = records[index][0], records[index][1]
            records[index] = (key, value, tracing.headers_of(span))
        return spans

    async def _after_cooldowns(
        self,
        due: list[tuple[DueClaim, DueCall]],
        now: datetime,
        later: list[tuple[DueClaim, datetime]],
    ) -> list[tuple[DueClaim, DueCall]]:
        """A number resting after a completed call is held until its rest ends (added to
        `later`)."""
        held = await self._rt.cooldowns.held_until(
            [(call.environment_id, call.to) for _, call in due], now
        )
        free: list[tuple[DueClaim, DueCall]] = []
        for (claim, call), until in zip(due, held, strict=True):
            if until is None:
                free.append((claim, call))
            else:
                later.append((claim, until))
        return free

    async def _within_limits(
        self,
        due: list[tuple[DueClaim, DueCall]],
        campaigns: dict[str, Campaign | None],
        now: datetime,
        later: list[tuple[DueClaim, datetime]],
    ) -> list[tuple[DueClaim, DueCall]]:
        """Takes each campaign's concurrency and rate slots, every campaign's at once; what
        does not fit waits (added to `later`)."""
        by_campaign: dict[str, list[tuple[DueClaim, DueCall]]] = {}
        for claim, call in due:
            by_campaign.setdefault(call.campaign_id, []).append((claim, call))
        grants = await asyncio.gather(
            *(
                self._acquire(campaigns[campaign_id], items, now)
                for campaign_id, items in by_campaign.items()
            )
        )
        allowed: list[tuple[DueClaim, DueCall]] = []
        for items, grant in zip(by_campaign.values(), grants, strict=True):
            allowed.extend(items[: grant.granted])
            wait_until = grant.next_rate_slot or now + self._slot_recheck
            later.extend((claim, wait_until) for claim, _ in items[grant.granted :])
        return allowed

    async def _acquire(
        self, campaign: Campaign | None, items: list[tuple[DueClaim, DueCall]], now: datetime
    ) -> Grant:
        assert campaign is not None
        return await self._rt.limits.acquire(
            campaign.id,
            [keys.slot_member(call.id, call.attempt) for _, call in items],
            campaign.max_concurrent_calls,
            campaign.calls_per_minute,
            now,
        )

    async def recover_lost_slots(self, now: datetime) -> int:
        """Ends attempts whose dialer died mid-call, so the retry policy takes over."""
        recovered = 0
        for lost in await self._rt.limits.lost(now):
            member = keys.slot_member(lost.call_id, lost.attempt)
            call = await self._rt.calls.get(lost.campaign_id, lost.call_id)
            history = await self._rt.calls.history(lost.campaign_id, lost.call_id)
            unfinished = (
                call is not None
                and call.attempt == lost.attempt
                and call.status in (CallStatus.QUEUED, CallStatus.IN_PROGRESS)
                and f"outcome:{lost.attempt}" not in history
            )
            if call is not None and unfinished:
                # Claim the attempt first: a dialer that merely lagged must not dial it now.
                won = await self._rt.calls.claim_attempt(call, lost.attempt, self._claim_ttl_ms)
                if won:
                    # No dialer ever took it (none was running, or all lagged a whole lease):
                    # it never rang, so it goes back to the due queue as the same attempt.
                    log.warning(
                        "attempt %s of call %s was never taken by a dialer; requeued",
                        lost.attempt,
                        call.id,
                    )
                    await hand_back(
                        self._rt.calls, self._rt.limits, call, lost.attempt, now, claimed=True
                    )
                    continue
                # A dialer holds the claim; it renews the slot while it holds the call, so a
                # lease that is fresh again means it is alive.
                deadline = await self._rt.limits.lease_deadline(lost.campaign_id, member)
                if deadline is not None and deadline > now:
                    continue
                campaign = await self._rt.catalog.get_campaign(call.campaign_id)
                log.warning("attempt %s of call %s lost its dialer", lost.attempt, call.id)
                event = call_event(
                    call,
                    CallEventType.ATTEMPT_ENDED,
                    now,
                    attempt=lost.attempt,
                    max_attempts=max_attempts(campaign),
                    status=Outcome.FAILED.value,
                    outcome=Outcome.FAILED.value,
                    error=DIALER_LOST,
                )
                with tracing.continued(call.trace):
                    await publish_events(self._rt.broker, [event])
                recovered += 1
            await self._rt.limits.free(lost.campaign_id, member)
        return recovered

    async def queue_stranded(self, now: datetime) -> int:
        """Queues calls stored longer than the hand-off grace ago whose request never reached
        this service (their ingest died before publishing it, or the broker refused it).

        Looks again while a look finds a full batch, up to `_STRANDED_LOOKS` looks a pass, so
        a backlog left by a long broker outage drains quickly without stalling releases."""
        queued = 0
        for _ in range(_STRANDED_LOOKS):
            stranded = await self._rt.calls.stranded(now - self._handoff_grace, self._batch)
            for campaign_id, call_id in stranded:
                call = await self._rt.calls.get(campaign_id, call_id)
                if call is None or call.status is not CallStatus.QUEUED:
                    # Gone, or no longer waiting (a cancel clears the mark itself, so this is
                    # what an older copy left behind): nothing left to hand on.
                    await self._rt.calls.drop_handoff(campaign_id, call_id)
                    continue
                with tracing.continued(call.trace):
                    await queue_call(self._rt, call)
                queued += 1
            if len(stranded) < self._batch:
                break
        if queued:
            log.warning("queued %d calls that were stored but never handed on", queued)
        return queued

    async def _cancel(self, claim: DueClaim, campaign: Campaign, now: datetime) -> None:
        """A call of a finished campaign that was still waiting is cancelled, not held."""
        call = await self._rt.calls.get(claim.campaign_id, claim.call_id)
        if call is None:
            return
        cancelled, _ = await self._rt.calls.cancel_queued(call, now)
        if not cancelled:
            return
        event = call_event(
            call,
            CallEventType.CANCELLED,
            now,
            attempt=call.attempt,
            max_attempts=max_attempts(campaign),
            status=CallStatus.CANCELLED.value,
            reason=f"campaign_{campaign.status.value}",
        )
        with tracing.continued(call.trace):
            await publish_events(self._rt.broker, [event])

    async def _expire(self, claim: DueClaim, campaign: Campaign, now: datetime) -> None:
        call = await self._rt.calls.get(claim.campaign_id, claim.call_id)
        if call is None:
            return
        await self._rt.calls.end_undialed(call, call.attempt, CallStatus.EXPIRED, now)
        event = call_event(
            call,
            CallEventType.EXPIRED,
            now,
            attempt=call.attempt,
            max_attempts=max_attempts(campaign),
            status=CallStatus.EXPIRED.value,
            reason="campaign_ended",
        )
        with tracing.continued(call.trace):
            await publish_events(self._rt.broker, [event])
