"""The notifier's consumer: matches events to webhooks and stores a queued delivery for each;
the workers send them. The consumer never waits on an endpoint."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from services.notifier.dispatch import Dispatcher, FirstAttempt, Queued
from services.notifier.domain.payloads import call_event_body, campaign_event_body, wants
from services.notifier.workers import DeliveryWorkers
from shared import tracing
from shared.bus import send_to_dlq
from shared.events import CallEvent, CallEventType, CampaignEvent
from shared.models import Webhook
from shared.observability import log_context
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.topics import CALLS_EVENTS, CAMPAIGN_EVENTS
from shared.tracing import Tracing

log = logging.getLogger(__name__)

_PUBLIC_TYPES = frozenset(t.value for t in CallEventType if t.is_public)


def _subscribers(hooks: list[Webhook], event_type: str) -> list[Webhook]:
    return [hook for hook in hooks if wants(hook, event_type)]


def _peek(body: bytes) -> dict[str, Any] | None:
    """The event as JSON, if it is an object with a string `type` and `campaign_id`."""
    try:
        head = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if (
        not isinstance(head, dict)
        or not isinstance(head.get("type"), str)
        or not isinstance(head.get("campaign_id"), str)
    ):
        return None
    return head


@dataclass(frozen=True, slots=True)
class Delivery:
    """An event to deliver to a webhook."""

    hook: Webhook
    event_id: str
    event_type: str
    body: bytes
    # The trace context the event's message carried (None when not traced).
    trace: str | None = None
    # The call the event tells of (None for a campaign's event), and its attempt.
    call_id: str | None = None
    attempt: int | None = None

    @property
    def lane(self) -> str:
        """Whose events keep their order at the webhook: the call's, or the campaign's."""
        return self.call_id or self.hook.campaign_id


# An event to deliver, with the trace context its message carried (None when not traced).
Traced = tuple[CallEvent, str | None]


@dataclass(slots=True)
class NotifierRuntime:
    catalog: CatalogStore
    calls: CallStore
    broker: KafkaBroker
    dispatcher: Dispatcher
    workers: DeliveryWorkers
    # How long the consumer waits for room among the workers' attempts before it stores the
    # rest of a batch for the queue.
    store_wait_s: float = 1.0
    tracing: Tracing = field(default_factory=Tracing)


class NotifyHandler:
    def __init__(self, runtime: NotifierRuntime) -> None:
        self._rt = runtime

    def _trace_of(self, headers: Sequence[tuple[str, bytes]] | None) -> str | None:
        """The trace context a message carried, stored with its deliveries."""
        return tracing.stored_from_headers(headers) if self._rt.tracing.on else None

    async def on_call_event(
        self, body: bytes, key: bytes | None, headers: Sequence[tuple[str, bytes]] | None = None
    ) -> None:
        try:
            event = CallEvent.model_validate_json(body)
        except ValidationError as exc:
            await send_to_dlq(self._rt.broker, body, key, CALLS_EVENTS, "notifier", str(exc))
            return
        if not event.type.is_public:
            return
        with log_context(
            call_id=event.call_id, campaign_id=event.campaign_id, attempt=event.attempt or None
        ):
            # The batch's own steps, for a batch of one.
            await self._deliver_all([(event, self._trace_of(headers))])

    async def on_call_events(
        self, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """A fetched batch of call events at once: each campaign's webhooks and the calls are
        read in one go, and every delivery of the batch is stored side by side. Returns the
        records to take again one at a time (each with its own retries and DLQ) when that
        fails: none when it did not."""
        # What each record is and which campaign it is of, read cheaply: most call events
        # (internal ones, and types no webhook of the campaign wants) are never validated
        # whole. The scheduler reads every one of them whole, and parks a bad one.
        peeked: list[tuple[ConsumerRecord[bytes, bytes], dict[str, Any]]] = []
        for record in records:
            head = _peek(record.value or b"")
            if head is None:
                # Not an event at all: parked, with the validation's reason.
                await self._park(record)
                continue
            peeked.append((record, head))
        public = [(record, head) for record, head in peeked if head["type"] in _PUBLIC_TYPES]
        if not public:
            return []
        try:
            hooks = await self._hooks_of({head["campaign_id"] for _, head in public})
            events: list[Traced] = []
            for record, head in public:
                if not any(wants(hook, head["type"]) for hook in hooks[head["campaign_id"]]):
                    continue
                try:
                    event = CallEvent.model_validate(head)
                except ValidationError:
                    await self._park(record)
                    continue
                events.append((event, self._trace_of(record.headers)))
            if events:
                await self._deliver_all(events, hooks)
        except Exception:
            log.warning("a batch of call events failed; taking it one by one", exc_info=True)
            return [record for record, _ in peeked]
        return []

    async def _park(self, record: ConsumerRecord[bytes, bytes]) -> None:
        body = record.value or b""
        try:
            CallEvent.model_validate_json(body)
            reason = "not a call event"
        except ValidationError as exc:
            reason = str(exc)
        await send_to_dlq(self._rt.broker, body, record.key, CALLS_EVENTS, "notifier", reason)

    async def _hooks_of(self, campaign_ids: set[str]) -> dict[str, list[Webhook]]:
        ordered = list(campaign_ids)
        found = await asyncio.gather(*map(self._rt.catalog.list_webhooks, ordered))
        return dict(zip(ordered, found, strict=True))

    async def _deliver_all(
        self, events: list[Traced], hooks: dict[str, list[Webhook]] | None = None
    ) -> None:
        if hooks is None:
            hooks = await self._hooks_of({event.campaign_id for event, _ in events})
        wanted = [
            (event, trace, subscribed)
            for event, trace in events
            if (subscribed := _subscribers(hooks[event.campaign_id], event.type))
        ]
        if not wanted:
            return
        calls = await self._rt.calls.facts_many(
            (event.campaign_id, event.call_id) for event, _, _ in wanted
        )
        # Each call's events in the batch's order, each with its deliveries.
        by_call: dict[str, list[list[Delivery]]] = {}
        for (event, trace, subscribed), call in zip(wanted, calls, strict=True):
            body = call_event_body(event, call)
            by_call.setdefault(event.call_id, []).append(
                [
                    Delivery(
                        hook,
                        event.event_id,
                        event.type,
                        body,
                        trace,
                        event.call_id,
                        event.attempt or None,
                    )
                    for hook in subscribed
                ]
            )
        # Stored as this process's workers have room to make the first attempts themselves
        # (Kafka holds the rest meanwhile): a delivery stored beyond that would wait in the
        # queue and be claimed from it, twice the work. Places held up for longer than the
        # wait (slow endpoints) stop holding the batch: the rest is stored for the queue.
        lanes = list(by_call.values())
        sizes = [sum(map(len, lane)) for lane in lanes]
        workers = self._rt.workers
        start = 0
        while start < len(lanes):
            free = await workers.room(sum(sizes[start:]), self._rt.store_wait_s)
            end = len(lanes) if free is None else start + 1
            if free is not None:
                taken = sizes[start]
                while end < len(lanes) and taken + sizes[end] <= free:
                    taken += sizes[end]
                    end += 1
            # A call's n-th events after its (n-1)-th are handed to the workers, so each lines
            # up behind the one before it.
            chunk = lanes[start:end]
            for nth in range(max(map(len, chunk))):
                await self._store(
                    [delivery for lane in chunk if nth < len(lane) for delivery in lane[nth]]
                )
            start = end

    async def on_campaign_event(
        self, body: bytes, key: bytes | None, headers: Sequence[tuple[str, bytes]] | None = None
    ) -> None:
        try:
            event = CampaignEvent.model_validate_json(body)
        except ValidationError as exc:
            await send_to_dlq(self._rt.broker, body, key, CAMPAIGN_EVENTS, "notifier", str(exc))
            return
        webhooks = await self._subscribed(event.campaign_id, event.type.value)
        if not webhooks:
            return
        campaign = await self._rt.catalog.get_campaign(event.campaign_id)
        body = campaign_event_body(event, campaign)
        # A campaign's status moves reach a webhook in the order they were made.
        await self._store(
            [
                Delivery(
                    hook,
                    event.event_id,
                    event.type.value,
                    body,
                    self._trace_of(headers),
                )
                for hook in webhooks
            ]
        )

    async def _subscribed(self, campaign_id: str, event_type: str) -> list[Webhook]:
        return [
            hook
            for hook in await self._rt.catalog.list_webhooks(campaign_id)
            if wants(hook, event_type)
        ]

    async def _store(self, deliveries: Sequence[Delivery]) -> None:
        """Stores and queues the deliveries (the message is committed once every one is
        stored). A first attempt this process has room for is claimed as it is stored and made
        by its workers at once, after those of its lane (one call's, or one campaign's events
        to one webhook) handed over before it; the others wait in the queue for any copy's
        workers, and so does the rest of a lane once one of it is queued."""
        workers = self._rt.workers
        taken: dict[tuple[str, str], bool] = {}
        takes: list[bool] = []
        for delivery in deliveries:
            lane = (delivery.hook.id, delivery.lane)
            before = taken.get(lane)
            take = before is not False and workers.take(
                delivery.hook.id, delivery.lane, behind=before is True
            )
            taken[lane] = take
            takes.append(take)
        try:
            stored = await self._rt.dispatcher.queue_events(
                [
                    Queued(d.hook, d.event_id, d.event_type, d.body, take, d.trace)
                    for d, take in zip(deliveries, takes, strict=True)
                ]
            )
        except BaseException:
            for delivery, take in zip(deliveries, takes, strict=True):
                if take:
                    workers.give_back(delivery.hook.id)
            raise
        queued = False
        for delivery, take, result in zip(deliveries, takes, stored, strict=True):
            if isinstance(result, FirstAttempt):
                # Its task's log lines name the call.
                workers.make_first(
                    result, delivery.hook, delivery.lane, delivery.call_id, delivery.attempt
                )
                continue
            if take:
                workers.give_back(delivery.hook.id)
            queued = queued or result is True
        if queued:
            self._rt.workers.wake()
