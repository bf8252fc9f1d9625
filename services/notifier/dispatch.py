"""Stores each (webhook, event) delivery and queues it, then makes and records its attempts as
workers claim them from the queue: the first, retries, and the test events and redeliveries
the API queues."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from opentelemetry.trace import SpanKind
from yarl import URL

from services.notifier.adapters.webhook_http import DeliveryResult
from services.notifier.metrics import DeliveryMetrics
from shared import tracing
from shared.clock import Clock
from shared.models import Webhook
from shared.observability import FIELDS
from shared.rules.delivery_attempts import AttemptRecord, Trigger
from shared.rules.delivery_retries import (
    AfterAttempt,
    DeliveryState,
    RetryPolicy,
    after_attempt,
    after_manual_attempt,
    delivery_id_for,
)
from shared.rules.webhook_health import disabled_reason
from shared.rules.webhook_payloads import TEST_TIMEOUT_S, auth_headers
from shared.rules.webhook_signing import signature_headers
from shared.store.catalog import CatalogStore
from shared.store.deliveries import (
    AttemptClaim,
    DeliveryRef,
    DeliveryStore,
    NewDelivery,
    Recorded,
)
from shared.tracing import Tracing

log = logging.getLogger(__name__)

WEBHOOK_DISABLED = "The webhook was disabled; its retries stopped."
DISABLED_NOW = "The webhook was disabled."


def stopped(hook: Webhook) -> str:
    """The log's error for an attempt not made because the webhook is disabled."""
    if hook.disabled_reason:
        return f"The webhook was disabled ({hook.disabled_reason}); its retries stopped."
    return WEBHOOK_DISABLED


# Extra time, beyond the webhook's own timeout, that a claimed attempt is held for.
DEFAULT_CLAIM_MARGIN_MS = 15_000


@dataclass(frozen=True, slots=True)
class Queued:
    """An event to deliver to a webhook; `take`: the caller makes the first attempt."""

    hook: Webhook
    event_id: str
    event_type: str
    body: bytes
    take: bool = False
    # The event's trace context, stored with the delivery: its attempts go on with it.
    trace: str | None = None


@dataclass(frozen=True, slots=True)
class FirstAttempt:
    """A delivery's first attempt, claimed for the process that stored it."""

    ref: DeliveryRef
    claim: AttemptClaim
    trigger: Trigger


class WebhookSender(Protocol):
    async def send(
        self, method: str, url: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> DeliveryResult: ...


class Dispatcher:
    def __init__(
        self,
        store: DeliveryStore,
        catalog: CatalogStore,
        sender: WebhookSender,
        clock: Clock,
        policy: RetryPolicy | None = None,
        claim_margin_ms: int = DEFAULT_CLAIM_MARGIN_MS,
        metrics: DeliveryMetrics | None = None,
        traced: Tracing | None = None,
    ) -> None:
        self._metrics = metrics
        self._tracing = traced or Tracing()
        self._store = store
        self._catalog = catalog
        self._sender = sender
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._margin = timedelta(milliseconds=claim_margin_ms)

    def _claim_until(self, hook: Webhook, now: datetime) -> datetime:
        return now + timedelta(seconds=hook.timeout) + self._margin

    async def queue_events(self, items: Sequence[Queued]) -> list[FirstAttempt | bool]:
        """Stores the delivery of each event to its webhook and queues its first attempt, due
        now; False for a pair seen before that has nothing left to send (a replay). The first
        attempt of a new delivery `taken` is claimed for the caller, who makes it
        (`make_first`): it is queued only for when that claim runs out, should the caller die.
        One step in Redis per campaign, and one more for the queue."""
        now = self._clock.now()
        new: list[NewDelivery] = []
        for item in items:
            hook = item.hook
            ref = DeliveryRef(hook.campaign_id, hook.id, delivery_id_for(hook.id, item.event_id))
            claim_until = self._claim_until(hook, now) if item.take else None
            new.append(
                NewDelivery(ref, item.event_id, item.event_type, item.body, claim_until, item.trace)
            )
        by_campaign: dict[str, list[int]] = {}
        for index, delivery in enumerate(new):
            by_campaign.setdefault(delivery.ref.campaign_id, []).append(index)
        existing: list[str | None] = [None] * len(new)
        begun = await asyncio.gather(
            *(
                self._store.begin_many([new[index] for index in indices], now)
                for indices in by_campaign.values()
            )
        )
        for indices, states in zip(by_campaign.values(), begun, strict=True):
            for index, state in zip(indices, states, strict=True):
                existing[index] = state
        results: list[FirstAttempt | bool] = []
        due: dict[DeliveryRef, datetime] = {}
        for delivery, state in zip(new, existing, strict=True):
            if state is None:
                # Queued after it is stored (a worker finds it complete); a claimed first
                # attempt only for when its claim runs out.
                due[delivery.ref] = delivery.claim_until or now
                if delivery.claim_until is None:
                    results.append(True)
                else:
                    claim = AttemptClaim(
                        "ok",
                        1,
                        DeliveryState.PENDING.value,
                        delivery.event_id,
                        delivery.event_type,
                        delivery.body,
                        trace=delivery.trace,
                    )
                    results.append(FirstAttempt(delivery.ref, claim, trigger=Trigger.EVENT))
            elif state == DeliveryState.PENDING:
                # A replay of a pending one is queued again only if it is not queued already:
                # its attempt claim decides who sends it.
                due[delivery.ref] = now
                results.append(True)
            else:
                results.append(False)
        await self._store.schedule_many(due)
        return results

    async def attempt(
        self, ref: DeliveryRef, hook: Webhook, leased_until: datetime
    ) -> AttemptRecord | None:
        """Makes the delivery's next attempt (claimed from the queue until `leased_until`) and
        records it, then queues the one after it or leaves the queue; None when there was
        nothing to send."""
        now = self._clock.now()
        claim_until = self._claim_until(hook, now)
        claim = await self._store.claim_attempt(ref, now, claim_until)
        if claim.outcome in ("busy", "early") and claim.until is not None:
            await self._store.requeue_claimed(ref, claim.until)
            return None
        if claim.outcome != "ok":
            await self._store.release_claimed(ref)
            return None
        if claim_until > leased_until:
            # A long timeout: the queue's claim must outlast the attempt's.
            await self._store.extend_claimed(ref, claim_until)
        record = await self._make(ref, hook, claim, Trigger(claim.trigger), now)
        if record.state is DeliveryState.PENDING and record.next_attempt_at is not None:
            await self._store.requeue_claimed(ref, record.next_attempt_at)
        else:
            await self._store.release_claimed(ref)
        return record

    async def make_first(self, first: FirstAttempt, hook: Webhook) -> AttemptRecord:
        """Makes a first attempt `queue_events` claimed for this caller, and records it; its
        queue entry moves to the retry's time, or goes."""
        record = await self._make(first.ref, hook, first.claim, first.trigger, self._clock.now())
        if record.state is DeliveryState.PENDING and record.next_attempt_at is not None:
            await self._store.schedule(first.ref, record.next_attempt_at)
        else:
            await self._store.unschedule(first.ref)
        return record

    async def hand_back(self, first: FirstAttempt, due: datetime) -> None:
        """Gives up a first attempt `queue_events` claimed for this caller, unmade: it is queued
        for `due`, for any copy's workers (its claim is dropped after, so no one makes it
        before its queue entry is there)."""
        await self._store.schedule(first.ref, due)
        await self._store.drop_claim(first.ref)

    async def _make(
        self, ref: DeliveryRef, hook: Webhook, claim: AttemptClaim, trigger: Trigger, now: datetime
    ) -> AttemptRecord:
        """Sends a claimed attempt (unless the webhook is off) and records it."""
        # A test event and a redelivery are asked for by hand: sent whether or not the webhook
        # is enabled. A test gets a short timeout, so the API can answer with its result.
        sent = hook.enabled or trigger in (Trigger.TEST, Trigger.REDELIVER)
        if sent:
            timeout = min(hook.timeout, TEST_TIMEOUT_S) if trigger is Trigger.TEST else hook.timeout
            if self._tracing.on:
                sent_at, result = await self._send_traced(hook, ref, claim, trigger, timeout)
            else:
                sent_at, result = await self._send(hook, claim.event_id, claim.body, timeout)
        else:
            sent_at, result = now, DeliveryResult(None, 0.0, stopped(hook), retryable=False)
        # Whether the attempt tells how the endpoint is doing (a test event does not).
        counted = result.ok if sent and trigger is not Trigger.TEST else None
        gone = disabled_reason(result.status_code, None, sent_at) if counted is not None else None
        if gone is not None:
            # The endpoint says it is gone for good: nothing more is sent to it.
            result = replace(result, error=f"{gone} {DISABLED_NOW}", retryable=False)
        if trigger is Trigger.REDELIVER:
            state = after_manual_attempt(DeliveryState(claim.state), delivered=result.ok)
            # A pending delivery keeps its scheduled retry unless this attempt settled it.
            after = AfterAttempt(state, claim.until if state is DeliveryState.PENDING else None)
        else:
            max_retries = 0 if trigger is Trigger.TEST else hook.max_retries
            after = self._after(claim.attempt, max_retries, result)
        if self._metrics is not None:
            self._metrics.attempted(sent, result.ok, result.latency_ms / 1000, after.state)
        record, recorded = await self._record(
            ref,
            claim.event_id,
            claim.event_type,
            claim.attempt,
            trigger,
            sent_at,
            result,
            after,
            counted,
        )
        if counted is not None:
            reason = gone or disabled_reason(result.status_code, recorded.failing_since, sent_at)
            if reason is not None:
                await self._disable(hook, reason)
        return record

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

    async def _send_traced(
        self,
        hook: Webhook,
        ref: DeliveryRef,
        claim: AttemptClaim,
        trigger: Trigger,
        timeout_s: float,
    ) -> tuple[datetime, DeliveryResult]:
        """An attempt in a client span, in the trace stored with its delivery (the event's)."""
        url = URL(str(hook.webhook_url))
        with self._tracing.span(
            "webhook delivery",
            kind=SpanKind.CLIENT,
            parent=tracing.from_stored(claim.trace),
            attributes={
                "http.request.method": hook.http_method,
                # Neither the query nor credentials: the target's scheme, host, port and path.
                "url.full": str(url.with_query(None).with_fragment(None).with_user(None)),
                "server.address": url.host or "",
                tracing.CAMPAIGN_ID: ref.campaign_id,
                "campaign_calls.webhook_id": ref.webhook_id,
                "campaign_calls.delivery_id": ref.delivery_id,
                "campaign_calls.event_type": claim.event_type,
                "campaign_calls.delivery_attempt": claim.attempt,
                "campaign_calls.trigger": trigger.value,
            },
        ) as span:
            sent_at, result = await self._send(hook, claim.event_id, claim.body, timeout_s)
            if result.status_code is not None:
                span.set_attribute("http.response.status_code", result.status_code)
            if not result.ok:
                tracing.failed(span, result.error or f"HTTP {result.status_code}")
        return sent_at, result

    async def _send(
        self, hook: Webhook, event_id: str, body: bytes, timeout_s: float
    ) -> tuple[datetime, DeliveryResult]:
        sent_at = self._clock.now()
        headers = auth_headers(hook)
        # The event id is the webhook-id on every attempt; the timestamp is this attempt's.
        headers.update(
            signature_headers(hook.webhook_secret, event_id, int(sent_at.timestamp()), body)
        )
        result = await self._sender.send(
            hook.http_method, str(hook.webhook_url), body, headers, timeout_s
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
        counted: bool | None,
    ) -> tuple[AttemptRecord, Recorded]:
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
        recorded = await self._store.record(
            ref,
            attempt,
            after.state.value,
            after.next_attempt_at,
            self._clock.now(),
            record.to_json(),
            delivered=counted,
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
                extra={
                    FIELDS: {
                        "event_id": event_id,
                        "delivery_attempt": attempt,
                        "status_code": result.status_code,
                        "state": after.state.value,
                    }
                },
            )
        return record, recorded

    async def _disable(self, hook: Webhook, reason: str) -> None:
        if await self._catalog.disable_webhook(hook.campaign_id, hook.id, reason) is not None:
            log.warning("webhook %s of campaign %s disabled: %s", hook.id, hook.campaign_id, reason)
