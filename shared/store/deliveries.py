"""Webhook deliveries in Redis: each (webhook, event) delivery, its attempts, and the queue
its attempts wait in.

Every attempt, the first included, is made by a notifier's workers from the queue: whoever
stores a delivery (the notifier's consumer for an event; the API for a test event or a
redelivery) queues it, and the notifier sends it. A delivery's hash and its webhook's attempts
list share the campaign's hash tag; the queue is one sorted set (with its inflight set) under
its own tag, so every script touches one slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast

from redis.asyncio import Redis

from shared import keys
from shared.store import lua

_BEGIN_WEBHOOK_DELIVERIES: Final = lua.source(__package__, "begin_webhook_deliveries.lua")
_CLAIM_WEBHOOK_ATTEMPT: Final = lua.source(__package__, "claim_webhook_attempt.lua")
_RECORD_WEBHOOK_ATTEMPTS: Final = lua.source(__package__, "record_webhook_attempts.lua")
_CLAIM_WEBHOOK_RETRIES: Final = lua.source(__package__, "claim_webhook_retries.lua")
_REQUEST_REDELIVERY: Final = lua.source(__package__, "request_redelivery.lua")
_REQUEUE_WEBHOOK_DELIVERY: Final = lua.source(__package__, "requeue_webhook_delivery.lua")

# Attempts recorded (and queue entries taken out) this close together are written at once:
# fewer, larger steps in Redis for a moment's delay of what is already sent.
GATHER_S: Final = 0.002
KEEP_ATTEMPTS: Final = 1000
KEEP_MS: Final = 7 * 24 * 3600 * 1000
# Since when a webhook has failed every attempt is kept at least this long (it is disabled
# after five days of it).
KEEP_FAILING_MS: Final = 30 * 24 * 3600 * 1000


def _settle(done: asyncio.Future[None], finished: asyncio.Task[Any]) -> None:
    if done.done():
        return
    if finished.cancelled():
        done.cancel()
    elif (error := finished.exception()) is not None:
        done.set_exception(error)
    else:
        done.set_result(None)


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
class NewDelivery:
    """A delivery to create: what it sends and, if the caller makes its first attempt
    itself, until when that attempt is claimed for it."""

    ref: DeliveryRef
    event_id: str
    event_type: str
    body: bytes
    claim_until: datetime | None = None
    # The trace context its attempts continue (shared/tracing.py), if any.
    trace: str | None = None


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
class _ToRecord:
    ref: DeliveryRef
    args: tuple[int | str, ...]  # attempt, state, next_attempt_ms, counted
    entry: str
    future: asyncio.Future[Recorded]


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
        self._begin = redis.register_script(_BEGIN_WEBHOOK_DELIVERIES)
        self._claim = redis.register_script(_CLAIM_WEBHOOK_ATTEMPT)
        self._record = redis.register_script(_RECORD_WEBHOOK_ATTEMPTS)
        # Attempts to record, per campaign, gathered over one turn of the event loop.
        self._to_record: dict[str, list[_ToRecord]] = {}
        self._recording: set[asyncio.Task[Any]] = set()
        # Members to take out of the queue in this turn, and the future their ZREM settles.
        self._leaving: tuple[list[str], asyncio.Future[None]] | None = None
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
        new = NewDelivery(ref, event_id, event_type, body, claim_until, trace)
        return (await self.begin_many([new], now, kind=kind))[0]

    async def begin_many(
        self,
        deliveries: Sequence[NewDelivery],
        now: datetime,
        *,
        kind: Literal["event", "test"] = "event",
    ) -> list[str | None]:
        """`begin` for many deliveries at once, of one campaign: one step in Redis."""
        if not deliveries:
            return []
        campaign_ids = {new.ref.campaign_id for new in deliveries}
        if len(campaign_ids) != 1:
            raise ValueError(f"deliveries of one campaign at a time, not {sorted(campaign_ids)}")
        delivery_keys: list[str] = []
        args: list[str | int] = [_ms(now), self.keep_ms, now.astimezone(UTC).isoformat(), kind]
        for new in deliveries:
            ref = new.ref
            delivery_keys += [
                ref.key,
                keys.delivered(ref.campaign_id, ref.webhook_id, new.event_id),
            ]
            args += [
                new.event_id,
                new.event_type,
                new.body.decode(),
                _ms(new.claim_until) if new.claim_until is not None else "",
                new.trace or "",
            ]
        replies = cast(list[str], await self._begin(keys=delivery_keys, args=args))
        return [None if reply == "created" else reply for reply in replies]

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
        health, as a test event or one never sent).

        The attempts recorded within `GATHER_S` of each other are written together, one step
        in Redis per campaign (`now` is then the first one's)."""
        counted = "" if delivered is None else ("ok" if delivered else "failed")
        future: asyncio.Future[Recorded] = asyncio.get_running_loop().create_future()
        waiting = self._to_record
        if not waiting:
            asyncio.get_running_loop().call_later(GATHER_S, self._record_turn, now)
        waiting.setdefault(ref.campaign_id, []).append(
            _ToRecord(
                ref,
                (
                    attempt,
                    state,
                    _ms(next_attempt_at) if next_attempt_at else "",
                    counted,
                ),
                entry,
                future,
            )
        )
        return await future

    def _record_turn(self, now: datetime) -> None:
        batches, self._to_record = self._to_record, {}
        for batch in batches.values():
            task = asyncio.ensure_future(self._record_batch(batch, now))
            self._recording.add(task)
            task.add_done_callback(self._recording.discard)

    async def _record_batch(self, batch: list[_ToRecord], now: datetime) -> None:
        record_keys: list[str] = []
        args: list[str | int] = [
            self.keep_attempts,
            self.keep_ms,
            max(self.keep_ms, KEEP_FAILING_MS),
            _ms(now),
            now.astimezone(UTC).isoformat(),
        ]
        for item in batch:
            ref = item.ref
            record_keys += [
                ref.key,
                keys.webhook_attempts(ref.campaign_id, ref.webhook_id),
                keys.webhook_failing(ref.campaign_id, ref.webhook_id),
            ]
            args += item.args
        args += [item.entry for item in batch]
        try:
            replies = cast(list[Any], await self._record(keys=record_keys, args=args))
        except Exception as exc:
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        except BaseException:
            for item in batch:
                item.future.cancel()
            raise
        for index, item in enumerate(batch):
            moved, failing = replies[2 * index], replies[2 * index + 1]
            if not item.future.done():
                item.future.set_result(
                    Recorded(bool(int(moved)), _from_ms(failing) if failing else None)
                )

    async def drop_claim(self, ref: DeliveryRef) -> None:
        """Lets the delivery's next attempt be claimed again at once (its claimer gave it up
        unmade)."""
        await self._redis.hdel(ref.key, "claim_until")

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

    async def schedule_many(self, due: Mapping[DeliveryRef, datetime]) -> None:
        """Queues each delivery's next attempt at its time, unless it is queued already."""
        if due:
            await self._redis.zadd(
                keys.webhook_retry_queue(),
                {ref.member: _ms(at) for ref, at in due.items()},
                nx=True,
            )

    async def unschedule(self, ref: DeliveryRef) -> None:
        """Takes the delivery out of the queue. The members taken out within `GATHER_S` of each
        other go in one ZREM."""
        leaving = self._leaving
        if leaving is None:
            leaving = self._leaving = ([], asyncio.get_running_loop().create_future())
            asyncio.get_running_loop().call_later(GATHER_S, self._unschedule_turn)
        leaving[0].append(ref.member)
        await asyncio.shield(leaving[1])

    def _unschedule_turn(self) -> None:
        leaving, self._leaving = self._leaving, None
        if leaving is None:
            return
        members, done = leaving
        task = asyncio.ensure_future(self._redis.zrem(keys.webhook_retry_queue(), *members))
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)
        task.add_done_callback(lambda finished: _settle(done, finished))

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
