"""When a failed delivery is tried again, and the state each attempt leaves it in."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Final

from shared.ids import Uuid5

_DELIVERY_IDS = Uuid5(uuid.UUID("0b7e5c1a-9d2f-4f3e-8a61-5c4d3b2a1908"))

# The wait after the n-th failed attempt (n = 1, 2 …); past the end the last one repeats.
RETRY_WAITS: Final = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
)
# Each wait is moved by up to this share either way, so deliveries that failed together
# (a receiver's outage) do not all come back at the same moment.
JITTER: Final = 0.2
# The longest (seconds) a receiver's Retry-After may hold a retry back; a longer one is cut
# to this.
DEFAULT_RETRY_AFTER_CAP_S: Final = 3_600.0
# Delta-seconds beyond this (about 31 years) are read as this, before any cap.
_LONGEST_DELTA_SECONDS: Final = 1_000_000_000

# A uniform draw from [0, 1), as `random.random`; a parameter so tests can fix it.
Random = Callable[[], float]


class DeliveryState(StrEnum):
    PENDING = "pending"  # a retry is scheduled (or the first attempt is on its way)
    DELIVERED = "delivered"
    FAILED = "failed"  # retries are used up or the target is refused; kept for redelivery


def scheduled_wait(failed_attempts: int) -> timedelta:
    """The schedule's wait after the n-th failed attempt, before jitter and scale."""
    if failed_attempts < 1:
        raise ValueError("failed_attempts starts at 1")
    return RETRY_WAITS[min(failed_attempts, len(RETRY_WAITS)) - 1]


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A `Retry-After` value (RFC 9110 §10.2.3) as a wait from `now`; None when absent or not
    one of its forms.

    Delay-seconds are digits only (no sign, no fraction). An HTTP-date may be in any of the
    three forms a recipient must accept (IMF-fixdate, RFC 850, asctime); one already past is
    a wait of zero.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return timedelta(seconds=min(int(text), _LONGEST_DELTA_SECONDS))
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        # HTTP-dates are GMT, and asctime's form names no zone.
        moment = moment.replace(tzinfo=UTC)
    return max(moment - now, timedelta(0))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The retry schedule (`RETRY_WAITS`) with ±`JITTER`, times `scale`.

    `scale` shrinks or grows every wait (tests and demos run the schedule in milliseconds).
    A receiver's `Retry-After` is honoured as the shortest wait: the retry comes no sooner than
    it asks (up to `retry_after_cap_s` seconds) and no sooner than the schedule says, so a
    receiver cannot pull retries in, and cannot push one out further than the cap (a cap of
    zero ignores it). The Retry-After wait is scaled like the schedule's.
    """

    scale: float = 1.0
    retry_after_cap_s: float = DEFAULT_RETRY_AFTER_CAP_S

    def __post_init__(self) -> None:
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise ValueError("scale must be a finite number above 0")
        if not (self.retry_after_cap_s >= 0 and math.isfinite(self.retry_after_cap_s)):
            raise ValueError("retry_after_cap_s must be a finite number, 0 or above")

    def wait(
        self,
        failed_attempts: int,
        *,
        retry_after: timedelta | None = None,
        rand: Random = random.random,
    ) -> timedelta:
        """The wait after the n-th failed attempt (n starts at 1)."""
        jittered = scheduled_wait(failed_attempts) * (1 + JITTER * (2 * rand() - 1))
        if retry_after is not None:
            cap = timedelta(seconds=self.retry_after_cap_s)
            jittered = max(jittered, min(retry_after, cap))
        return jittered * self.scale


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
    retry_after: str | None = None,
    rand: Random = random.random,
) -> AfterAttempt:
    """The state after attempt `attempt` (1 is the first send; retries follow it).

    `retry_after` is the receiver's `Retry-After` header as it came, if any.
    """
    if delivered:
        return AfterAttempt(DeliveryState.DELIVERED)
    if not retryable or attempt > max_retries:
        return AfterAttempt(DeliveryState.FAILED)
    wait = policy.wait(attempt, retry_after=parse_retry_after(retry_after, now), rand=rand)
    return AfterAttempt(DeliveryState.PENDING, now + wait)


def after_manual_attempt(previous: DeliveryState, *, delivered: bool) -> DeliveryState:
    """A redelivery settles the delivery when it succeeds and leaves scheduled retries alone."""
    if delivered:
        return DeliveryState.DELIVERED
    return DeliveryState.PENDING if previous is DeliveryState.PENDING else DeliveryState.FAILED


def delivery_id_for(webhook_id: str, event_id: str) -> str:
    """One delivery per (webhook, event): a replayed event finds the delivery it already has."""
    return _DELIVERY_IDS.text(f"{webhook_id}:{event_id}")
