"""Hands accepted call requests to the scheduler through Kafka.

A call is accepted once it is stored: the store marks it as waiting to be handed on, and the
scheduler clears the mark when it queues the call. So a request handler does not wait for the
broker. It leaves the message here and answers; one task feeds the producer in order of
acceptance. A message that never reaches the broker (this process dies first, or the broker
refuses it) is not lost: the scheduler queues the call itself once its hand-off is overdue.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque

from faststream.kafka import KafkaBroker

from shared import tracing
from shared.bus import BulkSender, Record, publish_events, trace_headers
from shared.events import CallEvent, CampaignEvent, accepted_request
from shared.models import Call
from shared.topics import CALLS_REQUESTED, CAMPAIGN_EVENTS, campaign_key, requested_key

log = logging.getLogger(__name__)
# Requests handed to the producer at once, at most: one batch per partition for each lot.
_BATCH = 2_000


class CallRequestPublisher:
    """Requests go through a plain producer, fed by one task (the hot path: no per-message
    middleware and no wait per request); the rarer call events through the service's broker."""

    def __init__(
        self, broker: KafkaBroker, sender: BulkSender, backlog: int = 100_000, linger: float = 0.0
    ) -> None:
        self._broker = broker
        self._sender = sender
        self._backlog = backlog
        self._linger = linger  # seconds a lot may gather before it is handed over
        self._waiting: deque[Record] = deque()
        self._wake = asyncio.Event()
        self._feeder: asyncio.Task[None] | None = None
        self.dropped = 0

    def hand_on(self, call: Call) -> None:
        """Queues the request of a stored call for the broker and returns at once.

        Past `backlog` waiting messages (the broker is away) a message is dropped: its call is
        stored, and the scheduler queues it once its hand-off is overdue."""
        if len(self._waiting) >= self._backlog:
            self.dropped += 1
            if self.dropped % 10_000 == 1:
                log.warning("broker backlog full; %d requests left to the scheduler", self.dropped)
            return
        if call.trace is None:
            self._waiting.append((requested_key(call.campaign_id, call.to), accepted_request(call)))
        else:
            # The request's trace goes on with the message (the feeding task has no span).
            self._waiting.append(
                (
                    requested_key(call.campaign_id, call.to),
                    accepted_request(call),
                    tracing.headers_from_stored(call.trace) or [],
                )
            )
        self._wake.set()

    def start(self) -> None:
        self._feeder = asyncio.create_task(self._feed(), name="call-request-feeder")

    async def stop(self) -> None:
        """Sends what is still waiting, then stops feeding."""
        if self._feeder is None:
            return
        feeder, self._feeder = self._feeder, None
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        await self._send_waiting()

    async def publish_events(self, events: list[CallEvent]) -> None:
        await publish_events(self._broker, events)

    async def publish_campaign_event(self, event: CampaignEvent) -> None:
        """Returns once the broker has it; keyed by campaign, so one campaign's moves keep
        their order."""
        await self._broker.publish(
            event.model_dump_json().encode(),
            topic=CAMPAIGN_EVENTS,
            key=campaign_key(event.campaign_id),
            headers=trace_headers(),
        )

    async def _feed(self) -> None:
        while True:
            await self._wake.wait()
            if self._linger and len(self._waiting) < _BATCH:
                # Fuller lots: the producer's cost is mostly per batch and per request, and
                # the caller has its answer already.
                await asyncio.sleep(self._linger)
            self._wake.clear()
            await self._send_waiting()

    async def _send_waiting(self) -> None:
        while self._waiting:
            records = list(itertools.islice(self._waiting, _BATCH))
            try:
                await self._sender.hand_over(CALLS_REQUESTED, records)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Left to the scheduler, like every message that never reaches the broker.
                log.exception("%d call requests could not be handed to the producer", len(records))
            for _ in records:
                self._waiting.popleft()
