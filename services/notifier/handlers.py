"""The notifier's consumer: matches call events to webhooks and delivers them signed."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from services.notifier.adapters.webhook_http import DeliveryResult
from services.notifier.domain.payloads import auth_headers, call_event_body, wants
from services.notifier.domain.signing import signature_headers
from shared.bus import send_to_dlq
from shared.clock import Clock
from shared.events import CallEvent
from shared.models import Call, Webhook
from shared.state_redis import CallStore, CatalogStore, DeliveryStore
from shared.topics import CALLS_EVENTS

log = logging.getLogger(__name__)


class WebhookSender(Protocol):
    async def send(
        self, method: str, url: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> DeliveryResult: ...


@dataclass(slots=True)
class NotifierRuntime:
    catalog: CatalogStore
    calls: CallStore
    deliveries: DeliveryStore
    broker: KafkaBroker
    sender: WebhookSender
    clock: Clock


class NotifyHandler:
    def __init__(self, runtime: NotifierRuntime) -> None:
        self._rt = runtime

    async def on_call_event(self, body: bytes, key: bytes | None) -> None:
        try:
            event = CallEvent.model_validate_json(body)
        except ValidationError as exc:
            await send_to_dlq(self._rt.broker, body, key, CALLS_EVENTS, "notifier", str(exc))
            return
        if not event.type.is_public:
            return
        webhooks = [
            hook
            for hook in await self._rt.catalog.list_webhooks(event.campaign_id)
            if wants(hook, event.type.value)
        ]
        if not webhooks:
            return
        call = await self._rt.calls.get(event.campaign_id, event.call_id)
        payload = call_event_body(event, call)
        await asyncio.gather(*(self._deliver(hook, event, call, payload) for hook in webhooks))

    async def _deliver(
        self, hook: Webhook, event: CallEvent, call: Call | None, payload: bytes
    ) -> None:
        deliveries = self._rt.deliveries
        if await deliveries.was_delivered(hook.campaign_id, hook.id, event.event_id):
            return
        timestamp = int(self._rt.clock.now().timestamp())
        headers = {
            **auth_headers(hook),
            **signature_headers(hook.webhook_secret, event.event_id, timestamp, payload),
        }
        result = await self._rt.sender.send(
            hook.http_method, str(hook.webhook_url), payload, headers, hook.timeout
        )
        if result.ok:
            await deliveries.mark_delivered(hook.campaign_id, hook.id, event.event_id)
        else:
            log.warning(
                "delivery of %s to webhook %s failed: %s %s",
                event.event_id,
                hook.id,
                result.status_code,
                result.error,
            )
