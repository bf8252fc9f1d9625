"""The dialer's handlers: takes each due attempt once and hands it to a carrier, then turns
what the carrier reports (a callback to any copy, the sandbox, or a status look-up) into the
attempt's events, from the state kept in Redis."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from faststream.kafka import KafkaBroker
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from services.dialer.adapters.attempts_redis import (
    AttemptRef,
    AttemptStore,
    Ending,
    Refused,
    Report,
)
from services.dialer.adapters.per_turn import PerTurn
from services.dialer.domain.telephony import (
    OUTCOME_UNKNOWN,
    Carrier,
    CarrierEvent,
    PlaceCall,
    PlacementFailed,
    StatusUnavailable,
)
from services.dialer.metrics import FAILED, PLACED, DialerMetrics
from shared import keys, tracing
from shared.bus import EventPublisher, send_to_dlq
from shared.calls.hand_back import hand_back
from shared.clock import Clock
from shared.events import CallDue, CallEventType, call_event, encode_call_event
from shared.models import Agent, Call, CallStatus, Campaign, CampaignStatus
from shared.observability import log_context
from shared.rules.dnc import applicable_scope
from shared.rules.outcomes import Outcome
from shared.rules.prompts import PROMPT_TOO_LARGE, PromptTooLarge, render_prompt
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.store.dnc import DncStore
from shared.store.limits import DialLimits
from shared.topics import CALLS_DUE, call_key
from shared.tracing import Tracing

log = logging.getLogger(__name__)

SANDBOX: Final = "sandbox"
# How long a failed status look-up waits before the next one.
_LOOKUP_RETRY: Final = timedelta(seconds=15)
_WATCH_BATCH: Final = 500
_IN_PROGRESS: Final = CallStatus.IN_PROGRESS.value


@dataclass(slots=True)
class DialerRuntime:
    catalog: CatalogStore
    calls: CallStore
    attempts: AttemptStore
    broker: KafkaBroker
    events: EventPublisher
    # Every carrier by name; `sandbox` is always there, and takes every test call.
    carriers: Mapping[str, Carrier]
    # The carrier real calls go to.
    provider: str
    clock: Clock
    limits: DialLimits
    dnc: DncStore
    callback_timeout: timedelta
    placement_budget: timedelta
    status_lookups: int
    tracing: Tracing = field(default_factory=Tracing)


class DialHandler:
    def __init__(
        self, runtime: DialerRuntime, max_in_flight: int, metrics: DialerMetrics | None = None
    ) -> None:
        self._rt = runtime
        self._metrics = metrics
        self._room = asyncio.Semaphore(max_in_flight)
        self._placing: set[asyncio.Task[None]] = set()
        # Attempts this process holds and has not yet handed to a carrier: it keeps their
        # slots alive, however long they wait here.
        self._held: dict[AttemptRef, None] = {}
        # Calls this process's sandbox runs, with their campaign's attempt count: their events
        # are built from these fields (which never change) instead of reading them back.
        self._running: dict[AttemptRef, tuple[Call, int]] = {}
        self._stopping = False
        self._stopped = asyncio.Event()
        self._lease = timedelta(milliseconds=runtime.limits.lease_ms)
        # The do-not-call checks and agents the attempts taken in one loop turn need, read
        # together: one script per list, one read per agent.
        self._dnc_checks: PerTurn[tuple[str, str, str, datetime], bool] = PerTurn(
            self._check_dnc_turn
        )
        self._agents: PerTurn[str, Agent | None] = PerTurn(self._read_agents_turn)

    @property
    def in_flight(self) -> int:
        return len(self._placing)

    @property
    def lease(self) -> timedelta:
        return self._lease

    # -- taking due attempts ----------------------------------------------------------------

    async def on_call_due(
        self, body: bytes, key: bytes | None, headers: Sequence[tuple[str, bytes]] | None = None
    ) -> None:
        try:
            due = CallDue.model_validate_json(body)
        except ValidationError as exc:
            await send_to_dlq(self._rt.broker, body, key, CALLS_DUE, "dialer", str(exc)[:2000])
            return
        ref = AttemptRef(due.campaign_id, due.call_id, due.attempt)
        # Every line logged for this attempt (its placement's task too) names it, and the
        # placement continues its trace.
        with (
            self._rt.tracing.consuming(
                "dial attempt",
                headers,
                {
                    tracing.CALL_ID: ref.call_id,
                    tracing.CAMPAIGN_ID: ref.campaign_id,
                    tracing.ATTEMPT: ref.attempt,
                    tracing.TOPIC: CALLS_DUE,
                },
            ),
            log_context(call_id=ref.call_id, campaign_id=ref.campaign_id, attempt=ref.attempt),
        ):
            await self._take_due(ref)

    async def _take_due(self, ref: AttemptRef) -> None:
        self._held[ref] = None
        started = False
        try:
            # Backpressure: the consumer waits here while this process places its maximum.
            if not await self._wait_for_room():
                await self._give_back(ref)
                return
            try:
                started = await self._start(ref)
            finally:
                if not started:
                    self._room.release()
        finally:
            if not started:
                self._held.pop(ref, None)

    async def _wait_for_room(self) -> bool:
        """Takes a place among the placements; False if this copy started stopping first
        (the place is not taken)."""
        if self._stopping:
            return False
        if not self._room.locked():
            await self._room.acquire()
            return True
        acquiring = asyncio.ensure_future(self._room.acquire())
        stopping = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not acquiring.done():
                # A place the semaphore gave a cancelled waiter goes to the next one.
                acquiring.cancel()
                await asyncio.wait({acquiring})
        if acquiring.cancelled():
            return False
        if self._stopping:
            self._room.release()
            return False
        return True

    async def _skip_stale(self, ref: AttemptRef, status: str | None, attempt: int) -> None:
        """A due message for an attempt that is over (or never was): its slot is not in use."""
        log.info("stale due message for %s attempt %s skipped", ref.call_id, ref.attempt)
        dialing_elsewhere = attempt == ref.attempt and status in (
            CallStatus.QUEUED.value,
            CallStatus.IN_PROGRESS.value,
        )
        if not dialing_elsewhere:
            await self._rt.limits.free(ref.campaign_id, ref.slot)

    async def _start(self, ref: AttemptRef) -> bool:
        """Claims the attempt and starts placing it; False when it is not this process's."""
        if self._stopping:
            await self._give_back(ref)
            return False
        now = self._rt.clock.now()
        taken = await self._rt.attempts.take(ref, now + self.lease)
        if isinstance(taken, Refused):
            if taken.reason == "claimed":
                log.info("attempt %s of %s already claimed; not dialing", ref.attempt, ref.call_id)
            elif taken.reason == "lost":
                # The slot lapsed before this dialer got to the call: the scheduler took it
                # back (ended or requeued the attempt), so dialing now would contradict it.
                log.warning("attempt %s of %s lost its slot; not dialing", ref.attempt, ref.call_id)
            else:
                await self._skip_stale(ref, taken.status, taken.attempt)
            return False
        call = taken.call
        campaign = self._rt.catalog.parsed(taken.campaign) if taken.campaign else None
        if campaign is None or campaign.status is not CampaignStatus.ACTIVE:
            # Paused after release: hand it back to the scheduler, which holds it.
            await hand_back(self._rt.calls, self._rt.limits, call, ref.attempt, now, claimed=True)
            return False
        scope = applicable_scope(campaign, campaign.id)
        if scope is not None and await self._dnc_checks.ask(
            (campaign.environment_id, scope, call.to, now)
        ):
            await self._block(call, ref.attempt, campaign.max_retries + 1, now)
            return False
        agent = await self._agents.ask(campaign.agent_id)
        prompt = render_prompt(agent.prompt if agent else "", call.payload)
        if isinstance(prompt, PromptTooLarge):
            await self._refuse_prompt(call, ref.attempt, campaign.max_retries + 1, now)
            return False
        if self._stopping:
            # This copy began stopping while it took the attempt: its drain waits only for the
            # placements started before, so this one goes back to the scheduler, claim and all,
            # and another copy places it.
            await hand_back(self._rt.calls, self._rt.limits, call, ref.attempt, now, claimed=True)
            return False
        # No wait between the look at `_stopping` and the task joining `_placing`: `stop`
        # waits for every placement started.
        task = asyncio.create_task(
            self._place(ref, call, campaign, prompt), name=f"call-{call.id}-{ref.attempt}"
        )
        self._placing.add(task)
        task.add_done_callback(lambda done: self._placed(ref, done))
        return True

    async def _check_dnc_turn(self, asked: list[tuple[str, str, str, datetime]]) -> list[bool]:
        """Whether each number is on its list (environment, scope) at its time: the numbers
        of one list are checked together, at the earliest time asked."""
        lists: dict[tuple[str, str], tuple[list[str], datetime]] = {}
        for environment_id, scope, number, now in asked:
            numbers, earliest = lists.get((environment_id, scope), ([], now))
            numbers.append(number)
            lists[(environment_id, scope)] = (numbers, min(earliest, now))
        found = await asyncio.gather(
            *(
                self._rt.dnc.blocked_many(environment_id, scope, numbers, now)
                for (environment_id, scope), (numbers, now) in lists.items()
            )
        )
        blocked = {
            (environment_id, scope, number)
            for (environment_id, scope), entries in zip(lists, found, strict=True)
            for number in entries
        }
        return [
            (environment_id, scope, number) in blocked for environment_id, scope, number, _ in asked
        ]

    async def _read_agents_turn(self, asked: list[str]) -> list[Agent | None]:
        distinct = list(dict.fromkeys(asked))
        agents = await asyncio.gather(*(self._rt.catalog.get_agent(a) for a in distinct))
        by_id = dict(zip(distinct, agents, strict=True))
        return [by_id[agent_id] for agent_id in asked]

    async def _give_back(self, ref: AttemptRef) -> None:
        """This copy is stopping: a waiting call goes back to the scheduler unclaimed, and
        another copy places it."""
        call = await self._rt.calls.get(ref.campaign_id, ref.call_id)
        if call is None or call.status is not CallStatus.QUEUED or call.attempt != ref.attempt:
            await self._skip_stale(
                ref, call.status.value if call else None, call.attempt if call else 0
            )
            return
        await hand_back(
            self._rt.calls,
            self._rt.limits,
            call,
            ref.attempt,
            self._rt.clock.now(),
            claimed=False,
        )

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
        await self._rt.events.publish([event])

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
        await self._rt.events.publish([event])

    def _placed(self, ref: AttemptRef, task: asyncio.Task[None]) -> None:
        self._placing.discard(task)
        self._held.pop(ref, None)
        self._room.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("placing a call failed", exc_info=task.exception())

    def _carrier_for(self, call: Call) -> Carrier:
        return self._rt.carriers[SANDBOX if call.is_testing else self._rt.provider]

    async def _place(self, ref: AttemptRef, call: Call, campaign: Campaign, prompt: str) -> None:
        """Hands the attempt to its carrier; what happens next arrives as carrier events."""
        carrier = self._carrier_for(call)
        if not self._rt.tracing.on:
            await self._place_with(carrier, ref, call, campaign, prompt)
            return
        # The carrier's later reports (the sandbox's, from a task started here) carry this span.
        with self._rt.tracing.span(
            "place call",
            kind=SpanKind.CLIENT,
            attributes={
                tracing.CALL_ID: ref.call_id,
                tracing.CAMPAIGN_ID: ref.campaign_id,
                tracing.ATTEMPT: ref.attempt,
                "campaign_calls.carrier": carrier.name,
            },
        ):
            await self._place_with(carrier, ref, call, campaign, prompt)

    async def _place_with(
        self, carrier: Carrier, ref: AttemptRef, call: Call, campaign: Campaign, prompt: str
    ) -> None:
        now = self._rt.clock.now()
        started = encode_call_event(
            call,
            CallEventType.STARTED,
            now,
            attempt=ref.attempt,
            max_attempts=campaign.max_retries + 1,
            status=_IN_PROGRESS,
        )
        await self._rt.events.publish_encoded([(call_key(call.id), started)])
        # The sandbox runs in this process: it takes the call at once (its `place_call` never
        # waits), and nothing of the call happens before this task next waits. So the attempt
        # joins those awaiting an outcome as its placement is recorded, in the same round trip;
        # should this process die before that, the call died with it, unknown to anyone, as
        # with an attempt that was never placed.
        in_process = carrier.name == SANDBOX
        if not in_process:
            # Looked at again if nothing is heard by then, whatever becomes of this process:
            # an ending stored but not yet published when it dies is published by another copy.
            await self._rt.attempts.look_again_at(
                ref, now + self._rt.placement_budget + self._rt.callback_timeout
            )
        request = PlaceCall(
            call_id=call.id,
            campaign_id=call.campaign_id,
            attempt=ref.attempt,
            to=call.to,
            from_number=campaign.from_number,
            prompt=prompt,
            is_testing=call.is_testing,
        )
        if in_process:
            self._running[ref] = (call, campaign.max_retries + 1)
        placing_since = time.perf_counter()
        try:
            placed = await carrier.place_call(request)
        except PlacementFailed as failure:
            if self._metrics is not None:
                self._metrics.placement(carrier.name, FAILED, time.perf_counter() - placing_since)
            log.warning(
                "%s did not take attempt %s of %s: %s", carrier.name, ref.attempt, call.id, failure
            )
            await self._end(ref, Ending(Outcome.FAILED, error=failure.error), answered=False)
            return
        if self._metrics is not None:
            self._metrics.placement(carrier.name, PLACED, time.perf_counter() - placing_since)
        # From here the slot lasts as long as the carrier may keep the outcome waiting.
        self._held.pop(ref, None)
        now = self._rt.clock.now()
        ended = placed.ended
        if ended is not None and ended.outcome is not None:
            ending = Ending(ended.outcome, ended.duration_seconds, ended.error)
            await self._end_as_placed(ref, carrier.name, placed.carrier_call_id, ending, ended, now)
            return
        if not in_process:
            await self._rt.attempts.index(ref, carrier.name, placed.carrier_call_id)
        # The wait for the carrier's word starts now (unless the call already ended).
        await self._rt.attempts.record_placement(
            ref,
            carrier.name,
            placed.carrier_call_id,
            slot_until=now + self._rt.callback_timeout + self.lease,
            look_at=now + self._rt.callback_timeout,
            awaiting=in_process,
        )

    # -- what carriers report ----------------------------------------------------------------

    async def on_sandbox_event(self, request: PlaceCall, event: CarrierEvent) -> None:
        # The sandbox reports from a task its placement started, which logs under the
        # attempt's fields already.
        ref = AttemptRef(request.campaign_id, request.call_id, request.attempt)
        await self._on_attempt_event(ref, event)

    async def on_carrier_event(self, carrier: str, event: CarrierEvent) -> bool:
        """A carrier's report of one of its calls; False when no attempt is known by its id."""
        ref = await self._rt.attempts.find(carrier, event.carrier_call_id)
        if ref is None:
            return False
        await self.on_attempt_event(ref, event)
        return True

    async def on_attempt_event(self, ref: AttemptRef, event: CarrierEvent) -> None:
        with log_context(call_id=ref.call_id, campaign_id=ref.campaign_id, attempt=ref.attempt):
            await self._on_attempt_event(ref, event)

    async def _on_attempt_event(self, ref: AttemptRef, event: CarrierEvent) -> None:
        if event.outcome is not None:
            await self._end(
                ref,
                Ending(event.outcome, event.duration_seconds, event.error),
                answered=event.answered,
            )
            return
        now = self._rt.clock.now()
        if event.answered:
            slot_until = now + self._rt.callback_timeout + self.lease
            if await self._rt.attempts.record_answered(ref, slot_until):
                await self._publish(ref, [(CallEventType.ANSWERED, None)])
        # The call is alive: the outcome may take another full wait from now.
        await self._rt.attempts.look_again_if_waiting(ref, now + self._rt.callback_timeout)

    async def _end(self, ref: AttemptRef, ending: Ending | None, *, answered: bool) -> None:
        """Records the attempt's ending once and publishes it (with `answered` if still owed);
        `ending` None publishes the one already stored, if it is still unpublished."""
        try:
            await self._record_and_report(ref, ending, answered=answered)
        finally:
            self._running.pop(ref, None)

    async def _end_as_placed(
        self,
        ref: AttemptRef,
        carrier: str,
        carrier_call_id: str,
        ending: Ending,
        event: CarrierEvent,
        now: datetime,
    ) -> None:
        """A call over as soon as the carrier took it: its placement and its ending are
        recorded in one round trip (as `record_placement`, then as `_end`), then reported."""
        timeout = self._rt.callback_timeout
        try:
            report = await self._rt.attempts.record_placed_and_ended(
                ref,
                carrier,
                carrier_call_id,
                (now + timeout + self.lease, now + timeout),
                ending,
                event.answered,
                now,
                now + self._rt.placement_budget + timeout + self.lease,
            )
            await self._report(ref, report)
        finally:
            self._running.pop(ref, None)

    async def _record_and_report(
        self, ref: AttemptRef, ending: Ending | None, *, answered: bool
    ) -> None:
        now = self._rt.clock.now()
        # Should this copy die before publishing, the attempt is looked at when it is next due
        # (the placement's wait at the most): its slot must last until then.
        slot_until = now + self._rt.placement_budget + self._rt.callback_timeout + self.lease
        report = await self._rt.attempts.record_ended(ref, ending, answered, now, slot_until)
        await self._report(ref, report)

    async def _report(self, ref: AttemptRef, report: Report | None) -> None:
        """Publishes a recorded ending this copy has the right to publish (`answered` first if
        it is still owed), then marks it published."""
        if report is None:
            return
        events: list[tuple[CallEventType, Ending | None]] = []
        if report.answered_too:
            events.append((CallEventType.ANSWERED, None))
        events.append((CallEventType.ATTEMPT_ENDED, report.ending))
        if await self._publish(ref, events):
            await self._rt.attempts.reported(ref)

    async def _publish(
        self, ref: AttemptRef, events: list[tuple[CallEventType, Ending | None]]
    ) -> bool:
        """Publishes events of the attempt (an ending's with its outcome), built from its call
        as stored; False if it is gone."""
        known = self._running.get(ref)
        if known is not None:
            call, max_attempts = known
        else:
            stored, campaign = await asyncio.gather(
                self._rt.calls.get(ref.campaign_id, ref.call_id),
                self._rt.catalog.get_campaign(ref.campaign_id),
            )
            if stored is None:
                log.warning("call %s is gone; attempt %s not reported", ref.call_id, ref.attempt)
                await self._rt.attempts.settled(ref)
                return False
            call, max_attempts = stored, (campaign.max_retries if campaign else 0) + 1
        now = self._rt.clock.now()
        key = call_key(call.id)
        built: list[tuple[bytes, bytes]] = []
        for event_type, ending in events:
            if ending is None:
                encoded = encode_call_event(
                    call,
                    event_type,
                    now,
                    attempt=ref.attempt,
                    max_attempts=max_attempts,
                    status=_IN_PROGRESS,
                )
            else:
                outcome = ending.outcome.value
                encoded = encode_call_event(
                    call,
                    event_type,
                    now,
                    attempt=ref.attempt,
                    max_attempts=max_attempts,
                    status=outcome,
                    outcome=outcome,
                    error=ending.error,
                    duration_seconds=ending.duration_seconds,
                )
            built.append((key, encoded))
        if not tracing.enabled or not call.trace:
            await self._rt.events.publish_encoded(built)
            return True
        # A carrier's callback or a status look-up has no span of its own: the call's trace.
        with tracing.continued(call.trace):
            await self._rt.events.publish_encoded(built)
        return True

    # -- attempts whose outcome is overdue ----------------------------------------------------

    async def look_at_overdue(self) -> int:
        """Asks the carriers about attempts not heard of in time; returns how many it took."""
        now = self._rt.clock.now()
        refs = await self._rt.attempts.overdue(now, now + _LOOKUP_RETRY, _WATCH_BATCH)
        for chunk in range(0, len(refs), 64):
            await asyncio.gather(*(self._look_at(ref) for ref in refs[chunk : chunk + 64]))
        return len(refs)

    async def _look_at(self, ref: AttemptRef) -> None:
        try:
            with log_context(call_id=ref.call_id, campaign_id=ref.campaign_id, attempt=ref.attempt):
                await self._look_at_one(ref)
        except Exception:
            # It stays in its shard and is looked at again after the retry pause.
            log.warning(
                "looking at attempt %s of %s failed", ref.attempt, ref.call_id, exc_info=True
            )

    async def _look_at_one(self, ref: AttemptRef) -> None:
        attempts = self._rt.attempts
        state = await attempts.state(ref)
        if state.settled:
            await attempts.settled(ref)
            return
        if state.ended:
            await self._end(ref, None, answered=False)
            return
        if state.carrier is None or state.carrier_call_id is None:
            # Never placed, or its placing copy died before the carrier answered: the slot
            # lapses and the scheduler ends the attempt.
            log.warning(
                "attempt %s of %s has no carrier call; left to the slot sweep",
                ref.attempt,
                ref.call_id,
            )
            await attempts.settled(ref)
            return
        carrier = self._rt.carriers.get(state.carrier)
        if carrier is None:
            log.error(
                "attempt %s of %s was placed with %s, not configured here",
                ref.attempt,
                ref.call_id,
                state.carrier,
            )
            return
        try:
            event = await carrier.call_status(state.carrier_call_id)
        except StatusUnavailable as exc:
            tries = await attempts.count_lookup(ref)
            log.warning(
                "%s cannot tell how %s went (%s of %s): %s",
                carrier.name,
                state.carrier_call_id,
                tries,
                self._rt.status_lookups,
                exc,
            )
            if tries >= self._rt.status_lookups:
                await self._end(ref, Ending(Outcome.FAILED, error=OUTCOME_UNKNOWN), answered=False)
            return
        if event is None:
            now = self._rt.clock.now()
            await attempts.keep_slot(ref, now + self._rt.callback_timeout + self.lease)
            await attempts.look_again_if_waiting(ref, now + self._rt.callback_timeout)
            return
        await self.on_attempt_event(ref, event)

    async def watch(self, interval: float) -> None:
        """Looks for overdue outcomes every `interval` seconds, until cancelled."""
        while True:
            try:
                while await self.look_at_overdue() >= _WATCH_BATCH:
                    pass
            except Exception:
                log.warning("looking for overdue outcomes failed", exc_info=True)
            await asyncio.sleep(interval)

    async def keep_held_slots(self) -> None:
        """Renews the slots of the attempts this process holds, every third of the lease."""
        every = self._rt.limits.lease_ms / 3000
        while True:
            await asyncio.sleep(every)
            held = list(self._held)
            now = self._rt.clock.now()
            results = await asyncio.gather(
                *(self._rt.limits.renew(ref.campaign_id, ref.slot, now) for ref in held),
                return_exceptions=True,
            )
            for ref, result in zip(held, results, strict=True):
                if isinstance(result, BaseException):
                    log.warning("could not renew the slot of %s", ref.call_id, exc_info=result)

    # -- stopping ---------------------------------------------------------------------------

    async def stop(self, seconds: float) -> None:
        """Takes no more calls (those handed in from now go back to the scheduler), then lets
        placements in progress finish, up to `seconds`."""
        self._stopping = True
        self._stopped.set()  # calls waiting for a place go back to the scheduler
        if self._placing:
            await asyncio.wait(set(self._placing), timeout=seconds)
