"""The notifier's consumer: matches events to webhooks and stores a queued delivery for each;
the workers send them. The consumer never waits on an endpoint."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from services.notifier.dispatch import Dispatcher, FirstAttempt
from services.notifier.domain.payloads import call_event_body, campaign_event_body, wants
from services.notifier.workers import DeliveryWorkers
from shared import tracing
from shared.bus import send_to_dlq
from shared.events import CallEvent, CampaignEvent
from shared.models import Webhook
from shared.observability import log_context
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.topics import CALLS_EVENTS, CAMPAIGN_EVENTS
from shared.tracing import Tracing

# An event to deliver, with the trace context its message carried (None when not traced).
Traced = tuple[CallEvent, str | None]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class NotifierRuntime:
    catalog: CatalogStore
    calls: CallStore
    broker: KafkaBroker
    dispatcher: Dispatcher
    workers: DeliveryWorkers
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
        events: list[Traced] = []
        valid: list[ConsumerRecord[bytes, bytes]] = []
        for record in records:
            body = record.value or b""
            try:
                event = CallEvent.model_validate_json(body)
            except ValidationError as exc:
                await send_to_dlq(
                    self._rt.broker, body, record.key, CALLS_EVENTS, "notifier", str(exc)
                )
                continue
            valid.append(record)
            if event.type.is_public:
                events.append((event, self._trace_of(record.headers)))
        if not events:
            return []
        try:
            await self._deliver_all(events)
        except Exception:
            log.warning("a batch of call events failed; taking it one by one", exc_info=True)
            return valid
        return []

    async def _deliver_all(self, events: list[Traced]) -> None:
        campaign_ids = list({event.campaign_id for event, _ in events})
        hooks = dict(
            zip(
                campaign_ids,
                await asyncio.gather(*map(self._rt.catalog.list_webhooks, campaign_ids)),
                strict=True,
            )
        )
        wanted = [
            (event, trace, subscribed)
            for event, trace in events
            if (
                subscribed := [
                    hook for hook in hooks[event.campaign_id] if wants(hook, event.type.value)
                ]
            )
        ]
        if not wanted:
            return
        calls = await self._rt.calls.get_many(
            (event.campaign_id, event.call_id) for event, _, _ in wanted
        )
        # One call's events are stored one after another, in the batch's order (so its first
        # attempts go out in that order); different calls side by side.
        by_call: dict[str, list[tuple[CallEvent, str | None, list[Webhook], bytes]]] = {}
        for (event, trace, subscribed), call in zip(wanted, calls, strict=True):
            by_call.setdefault(event.call_id, []).append(
                (event, trace, subscribed, call_event_body(event, call))
            )

        async def store_in_order(
            lane: list[tuple[CallEvent, str | None, list[Webhook], bytes]],
        ) -> bool:
            queued = False
            for event, trace, subscribed, body in lane:
                with log_context(
                    call_id=event.call_id,
                    campaign_id=event.campaign_id,
                    attempt=event.attempt or None,
                ):
                    stored = await asyncio.gather(
                        *(
                            self._store(
                                hook, event.event_id, event.type.value, body, event.call_id, trace
                            )
                            for hook in subscribed
                        )
                    )
                queued = queued or any(result is True for result in stored)
            return queued

        if any(await asyncio.gather(*map(store_in_order, by_call.values()))):
            self._rt.workers.wake()

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
        await self._deliver(
            webhooks,
            event.event_id,
            event.type.value,
            body,
            event.campaign_id,
            self._trace_of(headers),
        )

    async def _subscribed(self, campaign_id: str, event_type: str) -> list[Webhook]:
        return [
            hook
            for hook in await self._rt.catalog.list_webhooks(campaign_id)
            if wants(hook, event_type)
        ]

    async def _deliver(
        self,
        webhooks: list[Webhook],
        event_id: str,
        event_type: str,
        payload: bytes,
        lane: str,
        trace: str | None,
    ) -> None:
        # Stored and queued only: the message is committed once every delivery is stored. A
        # first attempt this process has room for is claimed as it is stored and made by its
        # workers at once; the others wait in the queue for any copy's workers.
        results = await asyncio.gather(
            *(self._store(hook, event_id, event_type, payload, lane, trace) for hook in webhooks)
        )
        if any(queued is True for queued in results):
            self._rt.workers.wake()

    async def _store(
        self,
        hook: Webhook,
        event_id: str,
        event_type: str,
        payload: bytes,
        lane: str,
        trace: str | None = None,
    ) -> FirstAttempt | bool:
        workers = self._rt.workers
        take = workers.take(hook.id, lane)
        try:
            stored = await self._rt.dispatcher.queue_event(
                hook, event_id, event_type, payload, take=take, trace=trace
            )
        except BaseException:
            if take:
                workers.give_back(hook.id)
            raise
        if isinstance(stored, FirstAttempt):
            workers.make_first(stored, hook, lane)
        elif take:
            workers.give_back(hook.id)
        return stored
