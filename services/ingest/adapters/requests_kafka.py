"""Hands accepted call requests to the scheduler through Kafka."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from shared.bus import BulkSender, publish_events
from shared.events import CallEvent, CallRequested
from shared.topics import CALLS_REQUESTED, requested_key


class CallRequestPublisher:
    """Requests go through a plain producer (the hot path: no per-message middleware); the
    rarer call events through the service's broker."""

    def __init__(self, broker: KafkaBroker, sender: BulkSender) -> None:
        self._broker = broker
        self._sender = sender

    async def publish(self, request: CallRequested) -> None:
        """Returns once every in-sync replica has it; `request.to` is already E.164."""
        await self._sender.send_one(
            CALLS_REQUESTED,
            requested_key(request.campaign_id, request.to),
            request.model_dump_json().encode(),
        )

    async def publish_events(self, events: list[CallEvent]) -> None:
        await publish_events(self._broker, events)
