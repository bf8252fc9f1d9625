"""Sends a delivery's attempts and records each one: the first when the event arrives, retries
from the delay queue, and on request a test event or a redelivery."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Protocol

from shared.clock import Clock
from shared.models import Webhook
from shared.rules.delivery_attempts import AttemptRecord, Trigger
from shared.rules.delivery_retries import (
    AfterAttempt,
    DeliveryState,
    RetryPolicy,
    after_attempt,
    after_manual_attempt,
    delivery_id_for,
)
from shared.rules.webhook_payloads import TEST_EVENT, auth_headers, webhook_test_body
from shared.rules.webhook_signing import signature_headers
from shared.store.catalog import CatalogStore
from shared.store.deliveries import DeliveryRef, DeliveryStore
from shared.webhooks.webhook_http import DeliveryResult

log = logging.getLogger(__name__)

WEBHOOK_DISABLED = "The webhook was disabled; its retries stopped."
# Extra time, beyond the webhook's own timeout, that a claimed attempt is held for.
DEFAULT_CLAIM_MARGIN_MS = 15_000


class WebhookSender(Protocol):
    async def send(
        self, method: str, url: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> DeliveryResult: ...


class DeliveryNotFound(Exception):
    """No such delivery for this webhook (never made, or older than the retention)."""


class DeliveryBusy(Exception):
    """Another attempt of the delivery is under way."""


class Dispatcher:
    def __init__(
        self,
        store: DeliveryStore,
        catalog: CatalogStore,
        sender: WebhookSender,
        clock: Clock,
        policy: RetryPolicy | None = None,
        claim_margin_ms: int = DEFAULT_CLAIM_MARGIN_MS,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._sender = sender
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._margin = timedelta(milliseconds=claim_margin_ms)

    def _claim_until(self, hook: Webhook, now: datetime) -> datetime:
        return now + timedelta(seconds=hook.timeout) + self._margin

    async def deliver_event(
        self, hook: Webhook, event_id: str, event_type: str, body: bytes
    ) -> AttemptRecord | None:
        """The first attempt, made inline; None when the event was seen before (a replay)."""
        ref = DeliveryRef(hook.campaign_id, hook.id, delivery_id_for(hook.id, event_id))
        now = self._clock.now()
        claim_until = self._claim_until(hook, now)
        # Queued before the delivery exists: should this copy die before the attempt is
        # recorded, the retry loop finds the delivery once the first attempt's claim runs out.
        await self._store.schedule(ref, claim_until, only_new=True)
        existing = await self._store.begin(ref, event_id, event_type, body, now, claim_until)
        if existing is not None:
            if existing != DeliveryState.PENDING:
                # Settled long ago: the entry just queued has nothing to look after.
                await self._store.unschedule(ref)
            return None
        sent_at, result = await self._send(hook, event_id, body)
        after = self._after(1, hook.max_retries, result)
        record = await self._record(
            ref, event_id, event_type, 1, Trigger.EVENT, sent_at, result, after
        )
        if record.state is DeliveryState.PENDING and record.next_attempt_at is not None:
            await self._store.schedule(ref, record.next_attempt_at)
        else:
            await self._store.unschedule(ref)
        return record

    async def retry(self, ref: DeliveryRef) -> AttemptRecord | None:
        """One claimed retry from the delay queue; hands the claim back or drops it after."""
        hook = await self._catalog.get_webhook(ref.campaign_id, ref.webhook_id)
        if hook is None:
            await self._store.release_claimed(ref)
            return None
        now = self._clock.now()
        claim = await self._store.claim_attempt(
            ref, now, self._claim_until(hook, now), manual=False
        )
        if claim.outcome in ("busy", "early") and claim.until is not None:
            await self._store.requeue_claimed(ref, claim.until)
            return None
        if claim.outcome != "ok":
            await self._store.release_claimed(ref)
            return None
        if hook.enabled:
            sent_at, result = await self._send(hook, claim.event_id, claim.body)
        else:
            sent_at, result = now, DeliveryResult(None, 0.0, WEBHOOK_DISABLED, retryable=False)
        after = self._after(claim.attempt, hook.max_retries, result)
        record = await self._record(
            ref,
            claim.event_id,
            claim.event_type,
            claim.attempt,
            Trigger.RETRY,
            sent_at,
            result,
            after,
        )
        if record.state is DeliveryState.PENDING and record.next_attempt_at is not None:
            await self._store.requeue_claimed(ref, record.next_attempt_at)
        else:
            await self._store.release_claimed(ref)
        return record

    async def send_test(self, hook: Webhook) -> AttemptRecord:
        """Sends a `webhook.test` event once, now, whether or not the webhook is enabled."""
        event_id = str(uuid.uuid4())
        ref = DeliveryRef(hook.campaign_id, hook.id, delivery_id_for(hook.id, event_id))
        now = self._clock.now()
        body = webhook_test_body(hook, event_id, now)
        await self._store.begin(ref, event_id, TEST_EVENT, body, now, self._claim_until(hook, now))
        sent_at, result = await self._send(hook, event_id, body)
        after = self._after(1, 0, result)
        return await self._record(
            ref, event_id, TEST_EVENT, 1, Trigger.TEST, sent_at, result, after
        )

    async def redeliver(self, hook: Webhook, delivery_id: str) -> AttemptRecord:
        """Sends a stored delivery again: same body and webhook-id, new timestamp and signature.

        Raises DeliveryNotFound or DeliveryBusy.
        """
        ref = DeliveryRef(hook.campaign_id, hook.id, delivery_id)
        now = self._clock.now()
        claim = await self._store.claim_attempt(ref, now, self._claim_until(hook, now), manual=True)
        if claim.outcome == "busy":
            raise DeliveryBusy(delivery_id)
        if claim.outcome != "ok":
            raise DeliveryNotFound(delivery_id)
        sent_at, result = await self._send(hook, claim.event_id, claim.body)
        state = after_manual_attempt(DeliveryState(claim.state), delivered=result.ok)
        # A pending delivery keeps its scheduled retry unless this attempt settled it.
        next_at = claim.until if state is DeliveryState.PENDING else None
        return await self._record(
            ref,
            claim.event_id,
            claim.event_type,
            claim.attempt,
            Trigger.REDELIVER,
            sent_at,
            result,
            AfterAttempt(state, next_at),
        )

    def _after(self, attempt: int, max_retries: int, result: DeliveryResult) -> AfterAttempt:
        return after_attempt(
            attempt,
            max_retries,
            delivered=result.ok,
            retryable=result.retryable,
            now=self._clock.now(),
            policy=self._policy,
            retry_after=result.retry_after,
        )

    async def _send(
        self, hook: Webhook, event_id: str, body: bytes
    ) -> tuple[datetime, DeliveryResult]:
        sent_at = self._clock.now()
        headers = {
            **auth_headers(hook),
            # The event id is the webhook-id on every attempt; the timestamp is this attempt's.
            **signature_headers(hook.webhook_secret, event_id, int(sent_at.timestamp()), body),
        }
        result = await self._sender.send(
            hook.http_method, str(hook.webhook_url), body, headers, hook.timeout
        )
        return sent_at, result

    async def _record(
        self,
        ref: DeliveryRef,
        event_id: str,
        event_type: str,
        attempt: int,
        trigger: Trigger,
        sent_at: datetime,
        result: DeliveryResult,
        after: AfterAttempt,
    ) -> AttemptRecord:
        record = AttemptRecord(
            delivery_id=ref.delivery_id,
            event_id=event_id,
            event_type=event_type,
            attempt=attempt,
            trigger=trigger,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=result.error,
            attempted_at=sent_at,
            state=after.state,
            next_attempt_at=after.next_attempt_at,
            response_body=result.response_body,
            response_truncated=result.response_truncated,
        )
        await self._store.record(
            ref,
            attempt,
            after.state.value,
            after.next_attempt_at,
            self._clock.now(),
            record.to_json(),
        )
        if not result.ok:
            log.warning(
                "attempt %d of delivery %s (event %s) to webhook %s failed: %s %s; now %s",
                attempt,
                ref.delivery_id,
                event_id,
                ref.webhook_id,
                result.status_code,
                result.error,
                after.state.value,
            )
        return record
