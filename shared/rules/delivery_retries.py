"""When a failed delivery is tried again, and the state each attempt leaves it in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

_DELIVERY_NAMESPACE = uuid.UUID("0b7e5c1a-9d2f-4f3e-8a61-5c4d3b2a1908")


class DeliveryState(StrEnum):
    PENDING = "pending"  # a retry is scheduled (or the first attempt is on its way)
    DELIVERED = "delivered"
    FAILED = "failed"  # retries are used up or the target is refused; kept for redelivery


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Waits grow from `base_ms` by doubling and never exceed `cap_ms`."""

    base_ms: int = 1_000
    cap_ms: int = 600_000

    def delay_ms(self, failed_attempts: int) -> int:
        """The wait after the n-th failed attempt: base, 2·base, 4·base …, capped."""
        if failed_attempts < 1:
            raise ValueError("failed_attempts starts at 1")
        # Bounded so a large attempt number cannot build a huge integer before the cap applies.
        doublings = min(failed_attempts - 1, 40)
        return min(self.cap_ms, self.base_ms * (1 << doublings))


@dataclass(frozen=True, slots=True)
class AfterAttempt:
    state: DeliveryState
    next_attempt_at: datetime | None = None


def after_attempt(
    attempt: int,
    max_retries: int,
    *,
    delivered: bool,
    retryable: bool,
    now: datetime,
    policy: RetryPolicy,
) -> AfterAttempt:
    """The state after attempt `attempt` (1 is the first send; retries follow it)."""
    if delivered:
        return AfterAttempt(DeliveryState.DELIVERED)
    if not retryable or attempt > max_retries:
        return AfterAttempt(DeliveryState.FAILED)
    return AfterAttempt(
        DeliveryState.PENDING, now + timedelta(milliseconds=policy.delay_ms(attempt))
    )


def after_manual_attempt(previous: DeliveryState, *, delivered: bool) -> DeliveryState:
    """A redelivery settles the delivery when it succeeds and leaves scheduled retries alone."""
    if delivered:
        return DeliveryState.DELIVERED
    return DeliveryState.PENDING if previous is DeliveryState.PENDING else DeliveryState.FAILED


def delivery_id_for(webhook_id: str, event_id: str) -> str:
    """One delivery per (webhook, event): a replayed event finds the delivery it already has."""
    return str(uuid.uuid5(_DELIVERY_NAMESPACE, f"{webhook_id}:{event_id}"))
