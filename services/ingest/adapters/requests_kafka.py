"""Hands accepted call requests to the scheduler through Kafka."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from shared.bus import publish_events
from shared.events import CallEvent, CallRequested
from shared.topics import CALLS_REQUESTED, requested_key


class CallRequestPublisher:
    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def publish(self, request: CallRequested) -> None:
        """Returns once every in-sync replica has it; `request.to` is already E.164."""
        await self._broker.publish(
            request.model_dump_json().encode(),
            topic=CALLS_REQUESTED,
            key=requested_key(request.campaign_id, request.to),
            headers={"content-type": "application/json"},
        )

    async def publish_events(self, events: list[CallEvent]) -> None:
        await publish_events(self._broker, events)
