"""The dialer's consumer: claims each due attempt once and places it through the provider."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from services.dialer.domain.telephony import PlaceCall, Telephony
from shared import keys
from shared.bus import publish_events, send_to_dlq
from shared.clock import Clock
from shared.events import CallDue, CallEventType, call_event
from shared.models import Call, CallStatus, CampaignStatus
from shared.rules.outcomes import Outcome
from shared.rules.prompts import PROMPT_TOO_LARGE, PromptTooLarge, render_prompt
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.store.dnc import DncStore
from shared.store.limits import DialLimits
from shared.topics import CALLS_DUE

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DialerRuntime:
    catalog: CatalogStore
    calls: CallStore
    broker: KafkaBroker
    telephony: Telephony
    clock: Clock
    claim_ttl_ms: int
    limits: DialLimits
    dnc: DncStore


class DialHandler:
    def __init__(self, runtime: DialerRuntime, max_in_flight: int) -> None:
        self._rt = runtime
        self._slots = asyncio.Semaphore(max_in_flight)
        self._calls: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._calls)

    async def on_call_due(self, body: bytes, key: bytes | None) -> None:
        try:
            due = CallDue.model_validate_json(body)
        except ValidationError as exc:
            await send_to_dlq(self._rt.broker, body, key, CALLS_DUE, "dialer", str(exc)[:2000])
            return
        call = await self._rt.calls.get(due.campaign_id, due.call_id)
        if call is None or call.status is not CallStatus.QUEUED or call.attempt != due.attempt:
            await self._skip_stale(due, call)
            return
        # Backpressure: the consumer waits here while this process holds its maximum of calls.
        await self._slots.acquire()
        started = False
        try:
            started = await self._start(due, call)
        finally:
            if not started:
                self._slots.release()

    async def _skip_stale(self, due: CallDue, call: Call | None) -> None:
        """A due message for an attempt that is over (or never was): its slot is not in use."""
        log.info("stale due message for %s attempt %s skipped", due.call_id, due.attempt)
        dialing_elsewhere = (
            call is not None
            and call.attempt == due.attempt
            and call.status in (CallStatus.QUEUED, CallStatus.IN_PROGRESS)
        )
        if not dialing_elsewhere:
            await self._rt.limits.free(due.campaign_id, keys.slot_member(due.call_id, due.attempt))

    async def _start(self, due: CallDue, call: Call) -> bool:
        """Claims the attempt and starts the call; False when it is not this process's to dial."""
        if not await self._rt.calls.claim_attempt(call, due.attempt, self._rt.claim_ttl_ms):
            log.info("attempt %s of %s already claimed; not dialing again", due.attempt, call.id)
            return False
        member = keys.slot_member(call.id, due.attempt)
        if not await self._rt.limits.renew(call.campaign_id, member, self._rt.clock.now()):
            # The slot lapsed before this dialer got to the call, and the scheduler has ended
            # the attempt as lost: dialing now would contradict that outcome.
            log.warning("attempt %s of %s was declared lost; not dialing", due.attempt, call.id)
            return False
        campaign = await self._rt.catalog.get_campaign(call.campaign_id)
        if campaign is None or campaign.status is not CampaignStatus.ACTIVE:
            # Paused after release: hand it back to the scheduler, which holds it.
            await self._rt.calls.release_attempt(call, due.attempt)
            await self._rt.limits.free(call.campaign_id, member)
            await self._rt.calls.requeue(call.campaign_id, call.id, self._rt.clock.now())
            return False
        now = self._rt.clock.now()
        if await self._rt.dnc.blocks_call(campaign, call.to, now):
            await self._block(call, due.attempt, campaign.max_retries + 1, now)
            return False
        agent = await self._rt.catalog.get_agent(campaign.agent_id)
        prompt = render_prompt(agent.prompt if agent else "", call.payload)
        if isinstance(prompt, PromptTooLarge):
            await self._refuse_prompt(call, due.attempt, campaign.max_retries + 1, now)
            return False
        task = asyncio.create_task(
            self._place(call, due.attempt, campaign.max_retries + 1, prompt),
            name=f"call-{call.id}-{due.attempt}",
        )
        self._calls.add(task)
        task.add_done_callback(self._finished)
        return True

    async def _block(self, call: Call, attempt: int, max_attempts: int, now: datetime) -> None:
        """The number went on a do-not-call list after the call was queued: never dialed."""
        await self._rt.calls.end_undialed(call, attempt, CallStatus.BLOCKED, now)
        await self._rt.limits.free(call.campaign_id, keys.slot_member(call.id, attempt))
        event = call_event(
            call,
            CallEventType.BLOCKED,
            now,
            attempt=attempt,
            max_attempts=max_attempts,
            status=CallStatus.BLOCKED.value,
            reason="do_not_call",
        )
        await publish_events(self._rt.broker, [event])

    async def _refuse_prompt(
        self, call: Call, attempt: int, max_attempts: int, now: datetime
    ) -> None:
        """The prompt rendered with this call's payload is over the limit: never dialed. The
        attempt ends `failed` with `prompt_too_large`, an error the retry policy treats as
        final; the scheduler applies it (and frees the slot) as it does any outcome."""
        log.warning("prompt of %s attempt %s is over the limit; not dialing", call.id, attempt)
        event = call_event(
            call,
            CallEventType.ATTEMPT_ENDED,
            now,
            attempt=attempt,
            max_attempts=max_attempts,
            status=Outcome.FAILED.value,
            outcome=Outcome.FAILED.value,
            error=PROMPT_TOO_LARGE,
        )
        await publish_events(self._rt.broker, [event])

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._calls.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("call task failed", exc_info=task.exception())

    async def _place(self, call: Call, attempt: int, max_attempts: int, prompt: str) -> None:
        async def tell(event_type: CallEventType, status: str, **fields: Any) -> None:
            event = call_event(
                call,
                event_type,
                self._rt.clock.now(),
                attempt=attempt,
                max_attempts=max_attempts,
                status=status,
                **fields,
            )
            await publish_events(self._rt.broker, [event])

        await tell(CallEventType.STARTED, CallStatus.IN_PROGRESS.value)
        keeper = asyncio.create_task(self._keep_slot(call, attempt))
        try:
            result = await self._rt.telephony.place_call(
                PlaceCall(call.id, attempt, call.to, prompt, call.is_testing)
            )
        finally:
            keeper.cancel()
        if result.answered:
            await tell(CallEventType.ANSWERED, CallStatus.IN_PROGRESS.value)
        await tell(
            CallEventType.ATTEMPT_ENDED,
            result.outcome.value,
            outcome=result.outcome.value,
            error=result.error,
            duration_seconds=result.duration_seconds,
        )

    async def _keep_slot(self, call: Call, attempt: int) -> None:
        """Renews the call's concurrency slot while it lasts; if this process dies, it lapses."""
        member = keys.slot_member(call.id, attempt)
        every = self._rt.limits.lease_ms / 3000
        while True:
            try:
                await self._rt.limits.renew(call.campaign_id, member, self._rt.clock.now())
            except Exception:
                log.warning("could not renew the slot of %s", call.id, exc_info=True)
            await asyncio.sleep(every)

    async def drain(self, seconds: float) -> None:
        """Lets calls in progress finish (up to `seconds`) before the process stops."""
        if self._calls:
            await asyncio.wait(set(self._calls), timeout=seconds)
