"""The scheduler's consumers: call requests in, attempt outcomes in."""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

import orjson
from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from pydantic import BaseModel, ValidationError

from services.scheduler.domain.auto_dnc import auto_dnc_entry
from services.scheduler.domain.retry import (
    Retry,
    decide_after_attempt,
    post_completion_hold_until,
    retry_policy,
)
from shared import keys, tracing
from shared.bus import (
    BulkSender,
    TryAgain,
    guarded_wave,
    in_waves,
    publish_events,
    send_to_dlq,
)
from shared.calls.accept import AcceptCall, NewCall, Refused, Unsettled
from shared.clock import Clock, to_iso
from shared.events import (
    CallEvent,
    CallEventType,
    CallRequested,
    call_event,
    encode_call_event,
)
from shared.faults import is_transient
from shared.ids import derived_id
from shared.models import Call, CallStatus, Campaign
from shared.observability import log_context
from shared.phone import InvalidNumber, to_e164
from shared.rules.acceptance import Refusal
from shared.rules.outcomes import Outcome
from shared.rules.policy import calling_policy, recipient_zones
from shared.rules.windows import Closed, next_allowed_time
from shared.store.calls import CallStore, Requeued
from shared.store.catalog import CatalogStore
from shared.store.dnc import DncStore
from shared.store.limits import DialLimits, NumberCooldowns
from shared.topics import CALLS_EVENTS, CALLS_REQUESTED, call_key
from shared.tracing import Tracing

log = logging.getLogger(__name__)

_Model = TypeVar("_Model", bound=BaseModel)
_TOPIC_CALL_NAMESPACE = uuid.UUID("0b8f5a52-9b7c-4f0e-8a8e-6c2d9f3e1a47")


def _nothing() -> None:
    pass


@dataclass(slots=True)
class SchedulerRuntime:
    catalog: CatalogStore
    calls: CallStore
    broker: KafkaBroker
    clock: Clock
    accept_call: AcceptCall
    limits: DialLimits
    dnc: DncStore
    cooldowns: NumberCooldowns
    sender: BulkSender
    tracing: Tracing = field(default_factory=Tracing)
    # Tells this process's due pump that calls were queued, so one due now goes out without
    # waiting for the pump's next look (the due pump sets it).
    queued: Callable[[], None] = _nothing


def max_attempts(campaign: Campaign | None) -> int:
    return (campaign.max_retries if campaign else 0) + 1


async def queue_call(rt: SchedulerRuntime, call: Call, campaign: Campaign | None = None) -> None:
    """Puts a stored call in the due queue (idempotently) and tells that it is queued."""
    await rt.calls.enqueue(call, rt.clock.now())
    rt.queued()
    if campaign is None:
        campaign = await rt.catalog.get_campaign(call.campaign_id)
    event = call_event(
        call,
        CallEventType.QUEUED,
        call.created_at,
        attempt=1,
        max_attempts=max_attempts(campaign),
        next_attempt_at=call.scheduled_at,
        reason=call.scheduling_reason,
    )
    await publish_events(rt.broker, [event])


def _queued_json(call: Call, campaign: Campaign | None) -> bytes:
    """The `queued` event of a stored call, as `queue_call` publishes it (the same bytes)."""
    return encode_call_event(
        call,
        CallEventType.QUEUED,
        call.created_at,
        attempt=1,
        max_attempts=max_attempts(campaign),
        next_attempt_at=call.scheduled_at,
        reason=call.scheduling_reason,
    )


async def _campaigns(catalog: CatalogStore, campaign_ids: set[str]) -> dict[str, Campaign | None]:
    """Each campaign read once, all at the same time."""
    ordered = list(campaign_ids)
    found = await asyncio.gather(*(catalog.get_campaign(c) for c in ordered))
    return dict(zip(ordered, found, strict=True))


def _call_id_at(request: CallRequested, partition: int, offset: int) -> str:
    """The request's call id; one without gets one derived from its position, so a
    redelivery of the same message finds the call it already stored."""
    return request.call_id or derived_id(
        _TOPIC_CALL_NAMESPACE, f"{CALLS_REQUESTED}:{partition}:{offset}"
    )


def _call_id(request: CallRequested, record: ConsumerRecord[bytes, bytes]) -> str:
    return _call_id_at(request, record.partition, record.offset)


@dataclass(slots=True)
class _Request:
    """A parsed request of a batch, with its record and its call id."""

    record: ConsumerRecord[bytes, bytes]
    request: CallRequested
    call_id: str


class RequestHandler:
    """Turns a call request into a stored, queued call, or a `rejected` event.

    A fetched batch is handled in waves (`on_batch`), as `OutcomeHandler` does: the first
    record of each key, then the second, and so on. In a wave, the accepted requests (from
    ingest: the call is stored) are queued together: their calls and campaigns read in one
    round trip, their calls enqueued in three (`CallStore.enqueue_many`), their `queued`
    events sent as one produce. The other requests go through the "accept a call" use case one
    by one, side by side (`concurrency` at a time). A wave that fails other than transiently
    is handled again record by record (`on_call_requested`), so only the record at fault goes
    to the DLQ; every step is idempotent, so doing a step again is safe."""

    def __init__(self, runtime: SchedulerRuntime, concurrency: int = 64) -> None:
        self._rt = runtime
        self._slots = asyncio.Semaphore(concurrency)

    async def on_batch(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Handles a fetched batch; raises only when a transient failure outlasts its retries
        (the batch is then delivered again)."""
        parsed = [
            (record.key, _Request(record, request, _call_id(request, record)))
            for record, request in await _read_batch(
                self._rt.broker, records, CallRequested, CALLS_REQUESTED
            )
        ]
        for items in in_waves(parsed):
            await guarded_wave(
                self._rt.broker,
                CALLS_REQUESTED,
                "scheduler",
                functools.partial(self._wave, items),
                [item.record for item in items],
                self._one,
            )

    async def _one(self, record: ConsumerRecord[bytes, bytes]) -> None:
        await self.on_call_requested(
            record.value or b"", record.key, record.partition, record.offset, record.headers
        )

    async def _wave(self, items: list[_Request]) -> None:
        """At most one request of each key: the accepted ones queued together, the others
        through the use case side by side. Every step runs to its end before a failure is
        raised, so a wave handled again never overlaps a step still running."""
        accepted = [item for item in items if item.request.accepted]
        steps: list[Coroutine[Any, Any, None]] = (
            [self._queue_accepted(accepted)] if accepted else []
        )
        steps.extend(
            self._accept_one(item.request, item.call_id)
            for item in items
            if not item.request.accepted
        )
        results = await asyncio.gather(*steps, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            # A fault of a record (or a defect) goes first: the wave is then handled record by
            # record; failures that are all transient have the wave tried again.
            raise next((f for f in failures if not is_transient(f)), failures[0])

    async def _queue_accepted(self, items: list[_Request]) -> None:
        """Requests whose calls ingest stored: the calls queued and told as queued, at once.
        The `queued` events go out once every call is in the due queue."""
        pairs = [(item.request.campaign_id, item.call_id) for item in items]
        stored, campaigns = await asyncio.gather(
            self._rt.calls.get_many(pairs),
            _campaigns(self._rt.catalog, {campaign_id for campaign_id, _ in pairs}),
        )
        calls: list[Call] = []
        for (_, call_id), call in zip(pairs, stored, strict=True):
            if call is None:
                # Ingest stores the call before publishing and removes it only when the
                # publish failed and the client was told so: this request was never accepted.
                log.info("accepted request %s has no stored call; ignored", call_id)
            else:
                calls.append(call)
        if not calls:
            return
        await self._rt.calls.enqueue_many(calls, self._rt.clock.now())
        self._rt.queued()
        await self._rt.sender.send_all(
            CALLS_EVENTS,
            [
                (call_key(call.id), _queued_json(call, campaigns[call.campaign_id]))
                for call in calls
            ],
        )

    async def _accept_one(self, request: CallRequested, call_id: str) -> None:
        async with self._slots:
            with log_context(call_id=call_id, campaign_id=request.campaign_id):
                await self._accept(request, call_id)

    async def on_call_requested(
        self,
        body: bytes,
        key: bytes | None,
        partition: int,
        offset: int,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> None:
        """One record on its own: a wave that failed, record by record, or every record while
        tracing is on (each request handled in the span of its message's trace)."""
        try:
            request = CallRequested.model_validate_json(body)
        except ValidationError as exc:
            await send_to_dlq(self._rt.broker, body, key, CALLS_REQUESTED, "scheduler", _short(exc))
            return
        call_id = _call_id_at(request, partition, offset)
        with (
            self._rt.tracing.consuming(
                "accept call",
                headers,
                {
                    tracing.CALL_ID: call_id,
                    tracing.CAMPAIGN_ID: request.campaign_id,
                    tracing.TOPIC: CALLS_REQUESTED,
                },
            ),
            log_context(call_id=call_id, campaign_id=request.campaign_id),
        ):
            await self._on_request(request, call_id)

    async def _on_request(self, request: CallRequested, call_id: str) -> None:
        if request.accepted:
            stored = await self._rt.calls.get(request.campaign_id, call_id)
            if stored is None:
                # Ingest stores the call before publishing and removes it only when the
                # publish failed and the client was told so: this request was never accepted.
                log.info("accepted request %s has no stored call; ignored", call_id)
            else:
                await queue_call(self._rt, stored)
            return
        await self._accept(request, call_id)

    async def _accept(self, request: CallRequested, call_id: str) -> None:
        """The message through the "accept a call" use case: queued, or told as rejected."""
        now = self._rt.clock.now()
        campaign = await self._rt.catalog.get_campaign(request.campaign_id)
        if campaign is None:
            await self._reject(request, call_id, request.to, None, Refusal.CAMPAIGN_NOT_FOUND, now)
            return
        try:
            e164 = to_e164(request.to)
        except InvalidNumber:
            await self._reject(request, call_id, request.to, campaign, Refusal.INVALID_NUMBER, now)
            return
        new_call = NewCall(
            call_id,
            e164,
            request.payload,
            request.context,
            request.is_testing,
            request.allow_duplicates,
            request.requested_at,
            # A call of the topic stored with this trace: the request's, or one begun here.
            tracing.current_stored() if self._rt.tracing.on else None,
        )
        result = await self._rt.accept_call(campaign, new_call, current=True)
        if isinstance(result, Refused):
            await self._reject(request, call_id, e164, result.campaign, result.reason, now)
            return
        if isinstance(result, Unsettled):
            raise TryAgain(f"campaign {campaign.id} kept changing while call {call_id} was checked")
        call = result.call
        if not result.first:
            # An earlier delivery of this message stored the call: queue what it stored.
            stored = await self._rt.calls.get(call.campaign_id, call.id)
            if stored is None:
                return
            call = stored
        await queue_call(self._rt, call, result.campaign)

    async def _reject(
        self,
        request: CallRequested,
        call_id: str,
        to: str,
        campaign: Campaign | None,
        reason: Refusal,
        now: datetime,
    ) -> None:
        call = Call(
            id=call_id,
            campaign_id=request.campaign_id,
            environment_id=campaign.environment_id if campaign else "",
            to=to,
            payload=request.payload,
            context=request.context,
            is_testing=request.is_testing,
            allow_duplicates=request.allow_duplicates,
            scheduled_at=now,
            scheduling_reason="",
            created_at=request.requested_at or now,
            updated_at=now,
        )
        event = call_event(
            call,
            CallEventType.REJECTED,
            now,
            attempt=0,
            max_attempts=max_attempts(campaign),
            status="rejected",
            reason=reason.value,
            # Never stored, so the event carries the context its webhook body echoes.
            context=request.context,
        )
        await publish_events(self._rt.broker, [event])


_OUTCOME_EVENTS = {
    Outcome.COMPLETED: CallEventType.COMPLETED,
    Outcome.NO_ANSWER: CallEventType.NO_ANSWER,
    Outcome.BUSY: CallEventType.BUSY,
    Outcome.VOICEMAIL: CallEventType.VOICEMAIL,
    Outcome.FAILED: CallEventType.FAILED,
    Outcome.CANCELLED: CallEventType.CANCELLED,
}


@dataclass(slots=True)
class _Ended:
    """An attempt's outcome with what was decided about it, before it is stored."""

    event: CallEvent
    outcome: Outcome
    call: Call
    campaign: Campaign
    decision: str  # the decision's JSON, as apply_outcome.lua stores it
    status: CallStatus
    next_at: datetime | None
    now: datetime


_ACTED_ON = (CallEventType.STARTED, CallEventType.ATTEMPT_ENDED)


class OutcomeHandler:
    """Turns an attempt's outcome into a retry or a terminal status, exactly once.

    A fetched batch is handled in waves (`on_batch`): the first record of each call, then the
    second, and so on, so one call's records keep their order. A wave takes one round trip to
    Redis per step for all its records and one produce for all its events; a wave that fails
    other than transiently is handled again record by record (`on_call_event`), so only the
    record at fault goes to the DLQ. Every step is idempotent, so doing a step again is safe."""

    def __init__(self, runtime: SchedulerRuntime) -> None:
        self._rt = runtime

    async def on_batch(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Handles a fetched batch; raises only when a transient failure outlasts its retries
        (the batch is then delivered again)."""
        parsed = [
            (record.key, (record, event))
            for record, event in await _read_batch(
                self._rt.broker, records, CallEvent, CALLS_EVENTS
            )
            if event.type in _ACTED_ON
        ]
        for items in in_waves(parsed):
            await guarded_wave(
                self._rt.broker,
                CALLS_EVENTS,
                "scheduler",
                functools.partial(self._wave, [event for _, event in items]),
                [record for record, _ in items],
                self._one,
            )

    async def _one(self, record: ConsumerRecord[bytes, bytes]) -> None:
        await self.on_call_event(record.value or b"", record.key, record.headers)

    async def _wave(self, events: list[CallEvent]) -> None:
        """At most one event of each call: read together, stored together, published at once."""
        ended_events: list[tuple[CallEvent, Outcome]] = []
        for event in events:
            if event.type is CallEventType.ATTEMPT_ENDED:
                outcome = _outcome_of(event)
                if outcome is None:
                    raise _UnknownOutcome(event.outcome)  # the record goes to the DLQ alone
                ended_events.append((event, outcome))
        calls, campaigns = await asyncio.gather(
            self._rt.calls.get_many((e.campaign_id, e.call_id) for e in events),
            _campaigns(self._rt.catalog, {e.campaign_id for e, _ in ended_events}),
        )
        found = {(e.campaign_id, e.call_id): call for e, call in zip(events, calls, strict=True)}
        starts = []
        ended: list[_Ended] = []
        now = self._rt.clock.now()
        for event in events:
            call = found[(event.campaign_id, event.call_id)]
            if event.type is CallEventType.STARTED and call is not None:
                starts.append(self._rt.calls.mark_started(call, event.attempt, event.occurred_at))
        for event, outcome in ended_events:
            call = found[(event.campaign_id, event.call_id)]
            campaign = campaigns[event.campaign_id]
            if call is None or campaign is None:
                log.warning("outcome for unknown call %s ignored", event.call_id)
                continue
            ended.append(self._decide(event, outcome, call, campaign, now))
        # The starts, the freed slots and the decisions go in one round trip.
        stored = await asyncio.gather(
            *starts,
            *(self._free(e) for e in ended),
            *(self._apply(e) for e in ended),
        )
        decisions = cast(list[tuple[bool, str]], stored[len(starts) + len(ended) :])
        settled = [
            self._settled(e, first, decision)
            for e, (first, decision) in zip(ended, decisions, strict=True)
        ]
        await asyncio.gather(*(effect for _, effects in settled for effect in effects))
        await self._publish([event for events_of, _ in settled for event in events_of])

    async def on_call_event(
        self, body: bytes, key: bytes | None, headers: Sequence[tuple[str, bytes]] | None = None
    ) -> None:
        """One record on its own: a wave that failed, record by record, or every record while
        tracing is on (each outcome applied in the span of its message's trace)."""
        try:
            event = CallEvent.model_validate_json(body)
        except ValidationError as exc:
            await send_to_dlq(self._rt.broker, body, key, CALLS_EVENTS, "scheduler", _short(exc))
            return
        if event.type not in (CallEventType.STARTED, CallEventType.ATTEMPT_ENDED):
            return  # the rest are the scheduler's own, or for webhooks only
        with (
            self._rt.tracing.consuming(
                "apply outcome" if event.type is CallEventType.ATTEMPT_ENDED else "mark started",
                headers,
                {
                    tracing.CALL_ID: event.call_id,
                    tracing.CAMPAIGN_ID: event.campaign_id,
                    tracing.ATTEMPT: event.attempt,
                    tracing.TOPIC: CALLS_EVENTS,
                },
            ),
            log_context(
                call_id=event.call_id, campaign_id=event.campaign_id, attempt=event.attempt or None
            ),
        ):
            await self._on_event(event, body, key)

    async def _on_event(self, event: CallEvent, body: bytes, key: bytes | None) -> None:
        if event.type is CallEventType.STARTED:
            call = await self._rt.calls.get(event.campaign_id, event.call_id)
            if call is not None:
                await self._rt.calls.mark_started(call, event.attempt, event.occurred_at)
        elif event.type is CallEventType.ATTEMPT_ENDED:
            await self._on_attempt_ended(event, body, key)

    async def _on_attempt_ended(self, event: CallEvent, body: bytes, key: bytes | None) -> None:
        outcome = _outcome_of(event)
        if outcome is None:
            await send_to_dlq(
                self._rt.broker,
                body,
                key,
                CALLS_EVENTS,
                "scheduler",
                f"unknown outcome {event.outcome!r}",
            )
            return
        call, campaign = await asyncio.gather(
            self._rt.calls.get(event.campaign_id, event.call_id),
            self._rt.catalog.get_campaign(event.campaign_id),
        )
        if call is None or campaign is None:
            log.warning("outcome for unknown call %s ignored", event.call_id)
            return
        ended = self._decide(event, outcome, call, campaign, self._rt.clock.now())
        _, (first, stored) = await asyncio.gather(self._free(ended), self._apply(ended))
        events, effects = self._settled(ended, first, stored)
        for effect in effects:
            await effect
        await self._publish(events)

    def _decide(
        self, event: CallEvent, outcome: Outcome, call: Call, campaign: Campaign, now: datetime
    ) -> _Ended:
        """A retry or a final status, by the campaign's retry policy and calling windows."""
        decision = decide_after_attempt(
            retry_policy(campaign), event.attempt, outcome, event.error, now
        )
        next_at: datetime | None = None
        if isinstance(decision, Retry):
            window = next_allowed_time(
                calling_policy(campaign),
                recipient_zones(campaign, call.to),
                now,
                not_before=decision.not_before,
                from_request=False,
            )
            if not isinstance(window, Closed):
                next_at = window.at
        status = outcome.value if next_at is None else CallStatus.QUEUED.value
        record = {
            "status": status,
            "outcome": outcome.value,
            "error": event.error,
            "duration_seconds": event.duration_seconds,
            "ended_at": to_iso(event.occurred_at),
            "next_attempt_at": to_iso(next_at) if next_at else None,
            "decided_at": to_iso(now),
        }
        return _Ended(
            event,
            outcome,
            call,
            campaign,
            orjson.dumps(record).decode(),
            CallStatus(status),
            next_at,
            now,
        )

    async def _free(self, ended: _Ended) -> None:
        """The attempt is over: its concurrency slot goes back to the campaign."""
        call = ended.call
        await self._rt.limits.free(call.campaign_id, keys.slot_member(call.id, ended.event.attempt))

    async def _apply(self, ended: _Ended) -> tuple[bool, str]:
        """Records the decision once; returns (first time, the decision stored)."""
        event, next_at = ended.event, ended.next_at
        return await self._rt.calls.apply_outcome(
            ended.call,
            event.attempt,
            ended.decision,
            ended.status,
            ended.now,
            terminal=next_at is None,
            requeued=Requeued(event.attempt + 1, next_at, "cooldown") if next_at else None,
            duration_seconds=event.duration_seconds,
        )

    def _settled(
        self, ended: _Ended, first: bool, stored: str
    ) -> tuple[list[CallEvent], list[Coroutine[Any, Any, object]]]:
        """The events of a stored decision, and the steps to take before they are published:
        the after-effects and, for a retry, the requeue (each idempotent)."""
        call, campaign, event, outcome = ended.call, ended.campaign, ended.event, ended.outcome
        effects = self._after_effects(campaign, call, outcome, event)
        # A replay publishes what was decided the first time, with the same event ids.
        applied = orjson.loads(stored)
        decided_at = datetime.fromisoformat(applied["decided_at"])
        retry_at = (
            datetime.fromisoformat(applied["next_attempt_at"])
            if applied.get("next_attempt_at")
            else None
        )
        if retry_at is not None:
            effects.append(self._rt.calls.requeue(call.campaign_id, call.id, retry_at))
        events = [
            call_event(
                call,
                _OUTCOME_EVENTS[outcome],
                decided_at,
                attempt=event.attempt,
                max_attempts=max_attempts(campaign),
                status=applied["status"] if retry_at is None else outcome.value,
                outcome=outcome.value,
                error=event.error,
                duration_seconds=event.duration_seconds,
                will_retry=retry_at is not None,
                next_attempt_at=retry_at,
            )
        ]
        if retry_at is not None:
            events.append(
                call_event(
                    call,
                    CallEventType.RETRY_SCHEDULED,
                    decided_at,
                    attempt=event.attempt + 1,
                    max_attempts=max_attempts(campaign),
                    status=CallStatus.QUEUED.value,
                    will_retry=True,
                    next_attempt_at=retry_at,
                )
            )
        if not first:
            log.info("outcome of %s attempt %s replayed", call.id, event.attempt)
        return events, effects

    async def _publish(self, events: list[CallEvent]) -> None:
        """Publishes events, one call's in the order given, as one batch per partition; returns
        once the broker has all of them."""
        if not events:
            return
        # With the current trace context, while tracing is on (a record handled on its own).
        headers = tracing.current_headers() if tracing.enabled else None
        await self._rt.sender.send_all(
            CALLS_EVENTS,
            [(call_key(event.call_id), event.model_dump_json().encode()) for event in events]
            if headers is None
            else [
                (call_key(event.call_id), event.model_dump_json().encode(), headers)
                for event in events
            ],
        )

    def _after_effects(
        self, campaign: Campaign, call: Call, outcome: Outcome, event: CallEvent
    ) -> list[Coroutine[Any, Any, object]]:
        """Post-completion hold and auto-DNC, as steps to take (none when neither applies);
        both are idempotent, so replays repeat them."""
        effects: list[Coroutine[Any, Any, object]] = []
        if outcome is Outcome.COMPLETED and campaign.enable_post_completion_cooldown:
            until = post_completion_hold_until(
                event.occurred_at, campaign.post_completion_cooldown_hours
            )
            effects.append(
                self._rt.cooldowns.hold_until(
                    call.environment_id, call.to, until, self._rt.clock.now()
                )
            )
        entry = auto_dnc_entry(
            campaign, campaign.id, call.to, outcome.value, event.error, event.occurred_at
        )
        if entry is not None:
            effects.append(self._rt.dnc.add_many(call.environment_id, entry.scope, [entry]))
        return effects


class _UnknownOutcome(Exception):
    """An `attempt_ended` whose outcome this service does not know: a fault of the record."""


def _outcome_of(event: CallEvent) -> Outcome | None:
    try:
        return Outcome(event.outcome or "")
    except ValueError:
        return None


async def _read_batch(
    broker: KafkaBroker,
    records: Sequence[ConsumerRecord[bytes, bytes]],
    model: type[_Model],
    topic: str,
) -> list[tuple[ConsumerRecord[bytes, bytes], _Model]]:
    """Each record of a fetched batch read as `model`; one that does not validate goes to the
    DLQ with the reason, and the rest are handled."""
    read: list[tuple[ConsumerRecord[bytes, bytes], _Model]] = []
    for record in records:
        body = record.value or b""
        try:
            read.append((record, model.model_validate_json(body)))
        except ValidationError as exc:
            await send_to_dlq(broker, body, record.key, topic, "scheduler", _short(exc))
    return read


def _short(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
        for err in exc.errors(include_url=False)
    )
