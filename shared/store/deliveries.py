"""Webhook deliveries in Redis: each (webhook, event) delivery, its attempts, and the queue
its attempts wait in.

Every attempt, the first included, is made by a notifier's workers from the queue: whoever
stores a delivery (the notifier's consumer for an event; the API for a test event or a
redelivery) queues it, and the notifier sends it. A delivery's hash and its webhook's attempts
list share the campaign's hash tag; the queue is one sorted set (with its inflight set) under
its own tag, so every script touches one slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast

from redis.asyncio import Redis

from shared import keys
from shared.store import lua

_BEGIN_WEBHOOK_DELIVERY: Final = lua.source(__package__, "begin_webhook_delivery.lua")
_CLAIM_WEBHOOK_ATTEMPT: Final = lua.source(__package__, "claim_webhook_attempt.lua")
_RECORD_WEBHOOK_ATTEMPT: Final = lua.source(__package__, "record_webhook_attempt.lua")
_CLAIM_WEBHOOK_RETRIES: Final = lua.source(__package__, "claim_webhook_retries.lua")
_REQUEST_REDELIVERY: Final = lua.source(__package__, "request_redelivery.lua")
_REQUEUE_WEBHOOK_DELIVERY: Final = lua.source(__package__, "requeue_webhook_delivery.lua")

KEEP_ATTEMPTS: Final = 1000
KEEP_MS: Final = 7 * 24 * 3600 * 1000
# Since when a webhook has failed every attempt is kept at least this long (it is disabled
# after five days of it).
KEEP_FAILING_MS: Final = 30 * 24 * 3600 * 1000


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _from_ms(ms: str | float) -> datetime:
    return datetime.fromtimestamp(float(ms) / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class DeliveryRef:
    campaign_id: str
    webhook_id: str
    delivery_id: str

    @property
    def key(self) -> str:
        return keys.webhook_delivery(self.campaign_id, self.webhook_id, self.delivery_id)

    @property
    def member(self) -> str:
        return keys.webhook_retry_member(self.campaign_id, self.webhook_id, self.delivery_id)

    @classmethod
    def from_member(cls, member: str) -> DeliveryRef:
        return cls(*keys.split_webhook_retry_member(member))


@dataclass(frozen=True, slots=True)
class AttemptClaim:
    """The answer to a claim: `ok` carries what the attempt sends and what made it happen
    (`event`, `retry`, `test` or `redeliver`)."""

    outcome: Literal["ok", "missing", "busy", "done", "early"]
    attempt: int = 0
    state: str = ""
    event_id: str = ""
    event_type: str = ""
    body: bytes = b""
    # `busy`: when the attempt under way gives up its claim; `early`: when the retry is due;
    # `ok`: the scheduled retry, if any, that a manual attempt leaves in place.
    until: datetime | None = None
    trigger: str = ""
    # The trace context stored with the delivery (shared/tracing.py), if any.
    trace: str | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording an attempt did: whether it moved the delivery on, and since when the
    webhook has failed every attempt (None after a success, or when the attempt did not count)."""

    moved: bool
    failing_since: datetime | None


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    ref: DeliveryRef
    event_id: str
    event_type: str
    state: str
    attempts: int
    body: bytes


class DeliveryStore:
    """Deliveries, their attempts log, and the retry delay queue."""

    def __init__(
        self, redis: Redis, keep_attempts: int = KEEP_ATTEMPTS, keep_ms: int = KEEP_MS
    ) -> None:
        self._redis = redis
        self.keep_attempts = keep_attempts
        self.keep_ms = keep_ms
        self._begin = redis.register_script(_BEGIN_WEBHOOK_DELIVERY)
        self._claim = redis.register_script(_CLAIM_WEBHOOK_ATTEMPT)
        self._record = redis.register_script(_RECORD_WEBHOOK_ATTEMPT)
        self._claim_retries = redis.register_script(_CLAIM_WEBHOOK_RETRIES)
        self._request_redelivery = redis.register_script(_REQUEST_REDELIVERY)
        self._requeue = redis.register_script(_REQUEUE_WEBHOOK_DELIVERY)

    # --- deliveries -------------------------------------------------------------------------

    async def begin(
        self,
        ref: DeliveryRef,
        event_id: str,
        event_type: str,
        body: bytes,
        now: datetime,
        *,
        kind: Literal["event", "test"] = "event",
        claim_until: datetime | None = None,
        trace: str | None = None,
    ) -> str | None:
        """Creates the delivery with its first attempt due now (None); for a pair seen before
        (a replay, or an event delivered before deliveries were kept) returns its state. The
        caller then queues it (`schedule`). With `claim_until` the first attempt is claimed for
        the caller until then; `trace` is the trace context its attempts continue."""
        claimed = ["claim_until", str(_ms(claim_until))] if claim_until is not None else []
        if trace:
            claimed += ["trace", trace]
        reply = cast(
            list[str],
            await self._begin(
                keys=[ref.key, keys.delivered(ref.campaign_id, ref.webhook_id, event_id)],
                args=[
                    _ms(now),
                    self.keep_ms,
                    "kind",
                    kind,
                    "event_id",
                    event_id,
                    "event_type",
                    event_type,
                    "body",
                    body.decode(),
                    "created_at",
                    now.astimezone(UTC).isoformat(),
                    *claimed,
                ],
            ),
        )
        return None if reply[0] == "created" else reply[1]

    async def request_redelivery(
        self, ref: DeliveryRef, now: datetime
    ) -> Literal["ok", "missing", "busy"]:
        """Asks for one more attempt of a stored delivery, whatever its state; the caller then
        queues it. `busy` while an attempt is under way."""
        reply = cast(list[str], await self._request_redelivery(keys=[ref.key], args=[_ms(now)]))
        return cast(Literal["ok", "missing", "busy"], reply[0])

    async def claim_attempt(
        self, ref: DeliveryRef, now: datetime, claim_until: datetime
    ) -> AttemptClaim:
        """Claims the delivery's next attempt until `claim_until`: a redelivery asked for, or
        its scheduled attempt if it is pending and due."""
        reply = cast(
            list[str], await self._claim(keys=[ref.key], args=[_ms(now), _ms(claim_until)])
        )
        outcome = reply[0]
        if outcome == "ok":
            _, attempt, state, event_id, event_type, body, next_at, trigger, *rest = reply
            return AttemptClaim(
                "ok",
                int(attempt),
                state,
                event_id,
                event_type,
                body.encode(),
                _from_ms(next_at) if next_at else None,
                trigger,
                rest[0] if rest and rest[0] else None,
            )
        if outcome == "busy":
            return AttemptClaim("busy", until=_from_ms(reply[1]))
        if outcome == "early":
            return AttemptClaim("early", until=_from_ms(reply[1]))
        if outcome == "done":
            return AttemptClaim("done", state=reply[1])
        return AttemptClaim("missing")

    async def record(
        self,
        ref: DeliveryRef,
        attempt: int,
        state: str,
        next_attempt_at: datetime | None,
        now: datetime,
        entry: str,
        *,
        delivered: bool | None,
    ) -> Recorded:
        """Logs an attempt (JSON `entry`) and moves the delivery to `state`. `delivered` says
        whether the target took it (None: the attempt does not count towards the webhook's
        health, as a test event or one never sent)."""
        counted = "" if delivered is None else ("ok" if delivered else "failed")
        moved, failing = cast(
            list[Any],
            await self._record(
                keys=[
                    ref.key,
                    keys.webhook_attempts(ref.campaign_id, ref.webhook_id),
                    keys.webhook_failing(ref.campaign_id, ref.webhook_id),
                ],
                args=[
                    attempt,
                    state,
                    _ms(next_attempt_at) if next_attempt_at else "",
                    now.astimezone(UTC).isoformat(),
                    entry,
                    self.keep_attempts,
                    self.keep_ms,
                    counted,
                    _ms(now),
                    max(self.keep_ms, KEEP_FAILING_MS),
                ],
            ),
        )
        return Recorded(bool(int(moved)), _from_ms(failing) if failing else None)

    async def last_attempt(self, ref: DeliveryRef, after: int = 0) -> str | None:
        """The JSON log entry of the delivery's latest attempt, if it is later than `after`."""
        attempts, entry = cast(
            list[str | None], await self._redis.hmget(ref.key, ["attempts", "last_attempt"])
        )
        if entry is None or int(attempts or 0) <= after:
            return None
        return entry

    async def get(self, ref: DeliveryRef) -> StoredDelivery | None:
        fields = cast(dict[str, str], await self._redis.hgetall(ref.key))
        if not fields:
            return None
        return StoredDelivery(
            ref=ref,
            event_id=fields.get("event_id", ""),
            event_type=fields.get("event_type", ""),
            state=fields.get("state", ""),
            attempts=int(fields.get("attempts", "0")),
            body=fields.get("body", "").encode(),
        )

    async def attempts(
        self, campaign_id: str, webhook_id: str, start: int, count: int
    ) -> list[str]:
        """`count` JSON entries of the webhook's log from index `start` (0 is the newest)."""
        if count <= 0:
            return []
        key = keys.webhook_attempts(campaign_id, webhook_id)
        return cast(list[str], await self._redis.lrange(key, start, start + count - 1))

    async def attempt_count(self, campaign_id: str, webhook_id: str) -> int:
        return int(await self._redis.llen(keys.webhook_attempts(campaign_id, webhook_id)))

    async def forget_webhook(self, campaign_id: str, webhook_id: str) -> None:
        """Drops a deleted webhook's log and health; its deliveries expire and its queued
        attempts are dropped when they come due."""
        await self._redis.delete(
            keys.webhook_attempts(campaign_id, webhook_id),
            keys.webhook_failing(campaign_id, webhook_id),
        )

    async def healthy_again(self, campaign_id: str, webhook_id: str) -> None:
        """Forgets the webhook's run of failures (it was enabled again by hand)."""
        await self._redis.delete(keys.webhook_failing(campaign_id, webhook_id))

    # --- the queue ---------------------------------------------------------------------------

    async def schedule(self, ref: DeliveryRef, due: datetime, *, only_new: bool = False) -> None:
        """Queues the delivery's next attempt at `due`; with `only_new` an already queued one
        keeps its time."""
        await self._redis.zadd(keys.webhook_retry_queue(), {ref.member: _ms(due)}, nx=only_new)

    async def unschedule(self, ref: DeliveryRef) -> None:
        await self._redis.zrem(keys.webhook_retry_queue(), ref.member)

    async def claim_due(
        self, now: datetime, limit: int, lease_until: datetime
    ) -> list[DeliveryRef]:
        """Claims up to `limit` due retries until `lease_until`; claims whose lease ran out
        (their notifier died) are put back first, so they are claimed again."""
        members = cast(
            list[str],
            await self._claim_retries(
                keys=[keys.webhook_retry_queue(), keys.webhook_retry_inflight()],
                args=[_ms(now), limit, _ms(lease_until)],
            ),
        )
        return [DeliveryRef.from_member(member) for member in members]

    async def requeue_claimed(self, ref: DeliveryRef, due: datetime) -> None:
        """Hands a claimed delivery back to the queue for `due`, dropping the claim."""
        await self._requeue(
            keys=[keys.webhook_retry_queue(), keys.webhook_retry_inflight()],
            args=[ref.member, _ms(due)],
        )

    async def extend_claimed(self, ref: DeliveryRef, lease_until: datetime) -> None:
        """Keeps a claimed delivery's lease until `lease_until` (an attempt that may take
        longer than the lease it was claimed with)."""
        await self._redis.zadd(
            keys.webhook_retry_inflight(), {ref.member: _ms(lease_until)}, xx=True
        )

    async def release_claimed(self, ref: DeliveryRef) -> None:
        await self._redis.zrem(keys.webhook_retry_inflight(), ref.member)

    async def next_due(self) -> datetime | None:
        """When the earliest queued retry is due (for tests and operators)."""
        first = cast(
            list[tuple[str, float]],
            await self._redis.zrange(keys.webhook_retry_queue(), 0, 0, withscores=True),
        )
        return _from_ms(first[0][1]) if first else None
