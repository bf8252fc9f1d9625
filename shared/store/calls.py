"""Redis state of calls: each call's hash and body, the duplicate registry, the stats
counters and the sharded due queue, read and written through atomic steps."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, cast

import orjson
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from shared import keys
from shared.clock import from_us, to_iso, to_ms, to_us
from shared.models import Call, CallFacts, CallStatus
from shared.store import lua

_ACCEPT_CALL: Final = lua.source(__package__, "accept_call.lua")
_CONFIRM_RESERVATION: Final = lua.source(__package__, "confirm_reservation.lua")
_CLAIM_DUE: Final = lua.source(__package__, "claim_due.lua")
_REQUEUE_EXPIRED: Final = lua.source(__package__, "requeue_expired.lua")
_APPLY_OUTCOME: Final = lua.source(__package__, "apply_outcome.lua")
_MARK_STARTED: Final = lua.source(__package__, "mark_started.lua")
_CANCEL_QUEUED: Final = lua.source(__package__, "cancel_queued.lua")
_FORGET_ENDED_CALLS: Final = lua.source(__package__, "forget_ended_calls.lua")
_DROP_CALLS: Final = lua.source(__package__, "drop_calls.lua")
_REINDEX_CALLS: Final = lua.source(__package__, "reindex_calls.lua")
_READ_CALLS: Final = lua.source(__package__, "read_calls.lua")
_READ_DUE_CALLS: Final = lua.source(__package__, "read_due_calls.lua")
_READ_CALL_FACTS: Final = lua.source(__package__, "read_call_facts.lua")

DEFAULT_RETENTION_MS: Final = 30 * 24 * 3600 * 1000
# An ended call's hash and body expire this long after its retention, should the sweep (which
# also takes it out of the indexes) not have removed them by then.
EXPIRY_GRACE_MS: Final = 24 * 3600 * 1000
# The most dial claims a call can have (max_retries is at most 10, so 11 attempts) plus one:
# what a sweep deletes for a call whose hash has already expired.
MOST_ATTEMPTS: Final = 12
_STATUSES: Final = tuple(status.value for status in CallStatus)


@dataclass(frozen=True, slots=True)
class AcceptResult:
    outcome: Literal["accepted", "exists", "duplicate", "campaign_changed"]
    other: str | None = None  # the existing status, or the call id holding the number


@dataclass(frozen=True, slots=True)
class DueClaim:
    campaign_id: str
    call_id: str
    due_ms: float
    shard: int

    @property
    def member(self) -> str:
        return keys.due_member(self.campaign_id, self.call_id)


def _call_body(call: Call) -> str:
    """`[payload, context]` as compact JSON, or '' when both are empty (no body key is kept)."""
    if not call.payload and not call.context:
        return ""
    return orjson.dumps([call.payload, call.context]).decode()


def call_from_fields(
    campaign_id: str, call_id: str, fields: Mapping[str, str], body: str | None
) -> Call:
    """A call as stored: its hash's fields and its body (payload and context)."""
    payload, context = orjson.loads(body) if body else ({}, {})
    return Call(
        id=call_id,
        campaign_id=campaign_id,
        environment_id=fields["env"],
        to=fields["to"],
        status=CallStatus(fields["status"]),
        payload=payload,
        context=context,
        is_testing=fields.get("is_testing") == "1",
        allow_duplicates=fields.get("allow_duplicates") == "1",
        attempt=int(fields.get("attempt", "0")),
        scheduled_at=from_us(int(fields["scheduled"])),
        scheduling_reason=fields.get("reason", ""),
        created_at=from_us(int(fields["created"])),
        updated_at=from_us(int(fields["updated"])),
        trace=fields.get("trace"),
    )


@dataclass(slots=True)
class DueCall:
    """What the due pump reads of a claimed call to release it: neither its payload and
    context nor its times."""

    id: str
    campaign_id: str
    environment_id: str
    to: str
    status: CallStatus
    attempt: int
    is_testing: bool
    # The trace context stored with the call (shared/tracing.py), if any.
    trace: str | None = None


# The hash fields a DueCall is read from, in the order read_due_calls.lua returns them.
_DUE_FIELDS: Final = ("env", "to", "status", "attempt", "is_testing", "trace")


# The hash fields CallFacts are read from, in the order read_call_facts.lua returns them.
_FACT_FIELDS: Final = ("env", "is_testing", "scheduled", "created")


@dataclass(frozen=True, slots=True)
class Requeued:
    """The next attempt of a call that an outcome puts back in the queue."""

    attempt: int
    scheduled_at: datetime
    scheduling_reason: str

    def fields(self) -> dict[str, str]:
        return {
            "attempt": str(self.attempt),
            "scheduled": str(to_us(self.scheduled_at)),
            "reason": self.scheduling_reason,
        }


# Campaigns a process remembers having entered in the hand-off index before starting over.
_INDEXED_LIMIT = 100_000


def _accept_keys(call: Call) -> list[str]:
    """accept_call.lua's keys: what accepting a call writes (its hash, its body, the campaign's
    registry, listing, stats and hand-off set) and the campaign it is checked against."""
    return [
        keys.call(call.campaign_id, call.id),
        keys.call_body(call.campaign_id, call.id),
        keys.active_numbers(call.campaign_id),
        keys.campaign_calls(call.campaign_id),
        keys.campaign_stats(call.campaign_id),
        keys.campaign(call.campaign_id),
        keys.handoffs(call.campaign_id),
        keys.calls_by_status_prefix(call.campaign_id),
        keys.calls_by_number(call.campaign_id),
    ]


async def _together(steps: list[Awaitable[Any]]) -> list[Any]:
    """The replies of steps issued at once (one round trip per Redis node)."""
    if len(steps) == 1:
        return [await steps[0]]
    return list(await asyncio.gather(*steps))


def _flatten(fields: Mapping[str, str]) -> list[str]:
    flat: list[str] = []
    for name, value in fields.items():
        flat.extend((name, value))
    return flat


class CallStore:
    """Calls (a small hash plus a body key each), the duplicate registry and the sharded due
    queue."""

    def __init__(
        self, redis: Redis, due_shards: int, retention_ms: int = DEFAULT_RETENTION_MS
    ) -> None:
        self._redis = redis
        self.due_shards = due_shards
        self.retention_ms = retention_ms
        self._keep_ms = str(retention_ms + EXPIRY_GRACE_MS)
        self._accept = redis.register_script(_ACCEPT_CALL)
        self._confirm = redis.register_script(_CONFIRM_RESERVATION)
        self._claim = redis.register_script(_CLAIM_DUE)
        self._requeue = redis.register_script(_REQUEUE_EXPIRED)
        self._apply_outcome = redis.register_script(_APPLY_OUTCOME)
        self._mark_started = redis.register_script(_MARK_STARTED)
        self._cancel = redis.register_script(_CANCEL_QUEUED)
        self._forget_ended = redis.register_script(_FORGET_ENDED_CALLS)
        self._drop_calls = redis.register_script(_DROP_CALLS)
        self._reindex = redis.register_script(_REINDEX_CALLS)
        self._read = redis.register_script(_READ_CALLS)
        self._read_due = redis.register_script(_READ_DUE_CALLS)
        self._read_facts = redis.register_script(_READ_CALL_FACTS)
        # Campaigns this process has entered in the hand-off index (entered once, then known).
        self._indexed: set[str] = set()

    async def accept(
        self,
        call: Call,
        reservation_ttl_ms: int,
        now: datetime | None = None,
        campaign_version: str | None = None,
    ) -> AcceptResult:
        """Stores a new call and, unless duplicates are allowed, reserves its number until
        `now` (default: the call's `created_at`) plus `reservation_ttl_ms`, or until the
        scheduler confirms it. A reservation whose deadline has passed no longer counts.

        With `campaign_version` (the campaign's stored `updated_at` when the call was checked
        against it), nothing is stored if the campaign changed since: `campaign_changed`."""
        now_ms = to_ms(now or call.created_at)
        # Numbers go as text: hiredis writes an int argument at about twice the cost.
        created_us = str(to_us(call.created_at))
        if call.campaign_id not in self._indexed:
            # Before the call is stored: the sweepers must find its campaign, whatever happens.
            # The retention sweep looks at it a retention period after its first call.
            await asyncio.gather(
                self._redis.sadd(keys.campaigns_with_handoffs(), call.campaign_id),
                self._redis.zadd(
                    keys.retention_campaigns(keys.retention_shard_of(call.campaign_id)),
                    {call.campaign_id: now_ms},
                    nx=True,
                ),
            )
            if len(self._indexed) >= _INDEXED_LIMIT:
                self._indexed.clear()
            self._indexed.add(call.campaign_id)
        args = [
            call.id,
            call.to,
            "0" if call.allow_duplicates else "1",
            str(now_ms),
            str(now_ms + reservation_ttl_ms),
            "1" if call.is_testing else "0",
            _call_body(call),
            campaign_version or "",
            # The call hash's values, in the order accept_call.lua's header names them.
            call.environment_id,
            call.status.value,
            str(call.attempt),
            created_us if call.scheduled_at == call.created_at else str(to_us(call.scheduled_at)),
            call.scheduling_reason,
            created_us,
            created_us if call.updated_at == call.created_at else str(to_us(call.updated_at)),
        ]
        if call.trace:
            args.append(call.trace)
        result = await self._accept(keys=_accept_keys(call), args=args)
        outcome = result[0]
        return AcceptResult(outcome=outcome, other=result[1] if len(result) > 1 else None)

    async def stranded(self, stored_before: datetime, limit: int) -> list[tuple[str, str]]:
        """(campaign id, call id) of calls stored before `stored_before` and still not queued:
        their request never reached the scheduler. At most `limit` per campaign per look.

        A campaign that no longer exists and has none left leaves the index."""
        campaign_ids = sorted(
            cast(set[str], await self._redis.smembers(keys.campaigns_with_handoffs()))
        )
        if not campaign_ids:
            return []
        before_ms = to_ms(stored_before)
        redis = self._redis
        replies: list[Any] = await asyncio.gather(
            *(
                command
                for campaign_id in campaign_ids
                for command in (
                    redis.zrange(
                        keys.handoffs(campaign_id),
                        "-inf",
                        before_ms,
                        byscore=True,
                        offset=0,
                        num=limit,
                    ),
                    redis.zcard(keys.handoffs(campaign_id)),
                    redis.exists(keys.campaign(campaign_id)),
                )
            )
        )
        found: list[tuple[str, str]] = []
        gone: list[str] = []
        for index, campaign_id in enumerate(campaign_ids):
            call_ids, waiting, exists = replies[3 * index : 3 * index + 3]
            found.extend((campaign_id, call_id) for call_id in call_ids)
            if not waiting and not exists:
                gone.append(campaign_id)
        if gone:
            await self._redis.srem(keys.campaigns_with_handoffs(), *gone)
        return found

    async def drop_handoff(self, campaign_id: str, call_id: str) -> None:
        """Forgets that a call waits to be queued (it ended or went away before it was)."""
        await self._redis.zrem(keys.handoffs(campaign_id), call_id)

    async def get(self, campaign_id: str, call_id: str) -> Call | None:
        (call,) = await self.get_many([(campaign_id, call_id)])
        return call

    async def enqueue(self, call: Call, now: datetime) -> None:
        """Makes the reservation permanent and puts the call in its due shard, idempotently."""
        await self.enqueue_many([call], now)

    async def enqueue_many(self, calls: Iterable[Call], now: datetime) -> None:
        """`enqueue` for many calls in three round trips, whatever their number: which are
        already enqueued or gone (one `read_due_calls.lua` per campaign), the others into their
        due shards (one `ZADD NX` per shard: a shard has its own hash tag, so it cannot share a
        script with a campaign's keys), then their reservations made permanent and the calls
        marked (one `confirm_reservation.lua` per campaign). Queue first, then mark: a crash
        in between repeats the (NX) add, never skips it; a call marked enqueued is never added
        again (the pump may have claimed it already), nor is a call that is gone."""
        by_campaign: dict[str, dict[str, Call]] = {}
        for call in calls:
            by_campaign.setdefault(call.campaign_id, {})[call.id] = call
        if not by_campaign:
            return
        groups = [list(group.values()) for group in by_campaign.values()]
        flags = await _together(
            [
                self._read_due(
                    keys=[keys.call(group[0].campaign_id, call.id) for call in group],
                    args=["enqueued", "status"],
                )
                for group in groups
            ]
        )
        # A call already enqueued stays as it is; one that is gone (no status) is not queued.
        todo = [
            [
                call
                for call, (enqueued, status) in zip(group, reply, strict=True)
                if enqueued != "1" and status is not None
            ]
            for group, reply in zip(groups, cast(list[list[list[str | None]]], flags), strict=True)
        ]
        by_shard: dict[int, dict[str, int]] = {}
        for group in todo:
            for call in group:
                shard = keys.due_shard_of(call.id, self.due_shards)
                member = keys.due_member(call.campaign_id, call.id)
                by_shard.setdefault(shard, {})[member] = to_ms(call.scheduled_at)
        if not by_shard:
            return
        await _together(
            [
                self._redis.zadd(keys.due_queue(shard), members, nx=True)
                for shard, members in by_shard.items()
            ]
        )
        now_ms = str(to_ms(now))
        await _together(
            [
                self._confirm(
                    keys=[
                        keys.active_numbers(group[0].campaign_id),
                        keys.handoffs(group[0].campaign_id),
                        *(keys.call(call.campaign_id, call.id) for call in group),
                    ],
                    args=[now_ms, *(part for call in group for part in (call.id, call.to))],
                )
                for group in todo
                if group
            ]
        )

    async def requeue(self, campaign_id: str, call_id: str, due: datetime) -> None:
        shard = keys.due_shard_of(call_id, self.due_shards)
        await self._redis.zadd(
            keys.due_queue(shard), {keys.due_member(campaign_id, call_id): to_ms(due)}
        )

    async def claim_due(
        self, shard: int, now: datetime, limit: int, lease_ms: int
    ) -> list[DueClaim]:
        flat = await self._claim(
            keys=[keys.due_queue(shard), keys.due_inflight(shard)],
            args=[to_ms(now), limit, lease_ms],
        )
        claims = []
        for member, score in zip(flat[::2], flat[1::2], strict=True):
            campaign_id, call_id = keys.split_due_member(member)
            claims.append(DueClaim(campaign_id, call_id, float(score), shard))
        return claims

    async def handed_off(self, claims: Iterable[DueClaim]) -> None:
        """Drops the leases of claims whose messages the broker acknowledged."""
        by_shard: dict[int, list[str]] = {}
        for claim in claims:
            by_shard.setdefault(claim.shard, []).append(claim.member)
        if not by_shard:
            return
        # One ZREM per shard, issued together (one round trip per Redis node).
        await asyncio.gather(
            *(
                self._redis.zrem(keys.due_inflight(shard), *members)
                for shard, members in by_shard.items()
            )
        )

    async def requeue_expired(self, shard: int, now: datetime, limit: int = 1000) -> int:
        count = await self._requeue(
            keys=[keys.due_queue(shard), keys.due_inflight(shard)], args=[to_ms(now), limit]
        )
        return int(count)

    async def get_many(self, pairs: Iterable[tuple[str, str]]) -> list[Call | None]:
        """The calls, each read from its hash and its body key: one script per campaign
        (its calls share the campaign's hash tag), all in one round trip."""
        wanted = list(pairs)
        found: list[Call | None] = [None] * len(wanted)
        for index, (flat, body) in await self._read_with_bodies(self._read, wanted):
            if flat:
                campaign_id, call_id = wanted[index]
                fields = dict(zip(flat[::2], flat[1::2], strict=True))
                found[index] = call_from_fields(campaign_id, call_id, fields, body)
        return found

    async def facts_many(self, pairs: Iterable[tuple[str, str]]) -> list[CallFacts | None]:
        """What a webhook's body needs of each call (None for a call that is gone): a few of
        its fields and its context, never the whole call; one script per campaign, all in one
        round trip. A call stored without its times is an error (ValueError)."""
        wanted = list(pairs)
        found: list[CallFacts | None] = [None] * len(wanted)
        read = await self._read_with_bodies(self._read_facts, wanted, _FACT_FIELDS)
        for index, ((env, is_testing, scheduled, created), body) in read:
            if env is None:
                continue
            if scheduled is None or created is None:
                # Stored, but not whole: not to be taken for a call never stored.
                raise ValueError(f"call {wanted[index][1]} is stored without its times")
            context = orjson.loads(body)[1] if body else {}
            found[index] = CallFacts(
                is_testing == "1", from_us(int(scheduled)), from_us(int(created)), context
            )
        return found

    async def _read_with_bodies(
        self, script: AsyncScript, wanted: list[tuple[str, str]], args: Sequence[str] = ()
    ) -> list[tuple[int, tuple[Any, Any]]]:
        """Runs `script` (keys: each call's hash and body key in turn) once per campaign, all in
        one round trip; returns (index into `wanted`, (the hash's reply, the body)) of each."""
        by_campaign: dict[str, list[int]] = {}
        for index, (campaign_id, _) in enumerate(wanted):
            by_campaign.setdefault(campaign_id, []).append(index)
        reads = [
            script(
                keys=[
                    key
                    for index in indices
                    for key in (
                        keys.call(campaign_id, wanted[index][1]),
                        keys.call_body(campaign_id, wanted[index][1]),
                    )
                ],
                args=args,
            )
            for campaign_id, indices in by_campaign.items()
        ]
        replies: list[list[Any]] = (
            [await reads[0]] if len(reads) == 1 else await asyncio.gather(*reads)
        )
        return [
            (index, (reply[2 * position], reply[2 * position + 1]))
            for indices, reply in zip(by_campaign.values(), replies, strict=True)
            for position, index in enumerate(indices)
        ]

    async def due_calls(self, pairs: Iterable[tuple[str, str]]) -> list[DueCall | None]:
        """What the due pump needs of each call (None for a call that is gone): one script per
        campaign, all in one round trip."""
        wanted = list(pairs)
        by_campaign: dict[str, list[int]] = {}
        for index, (campaign_id, _) in enumerate(wanted):
            by_campaign.setdefault(campaign_id, []).append(index)
        reads = [
            self._read_due(
                keys=[keys.call(campaign_id, wanted[index][1]) for index in indices],
                args=_DUE_FIELDS,
            )
            for campaign_id, indices in by_campaign.items()
        ]
        replies: list[list[list[str | None]]] = (
            [await reads[0]] if len(reads) == 1 else await asyncio.gather(*reads)
        )
        found: list[DueCall | None] = [None] * len(wanted)
        for indices, reply in zip(by_campaign.values(), replies, strict=True):
            for index, (env, to, status, attempt, is_testing, trace) in zip(
                indices, reply, strict=True
            ):
                if status is None or env is None or to is None:
                    continue
                campaign_id, call_id = wanted[index]
                found[index] = DueCall(
                    call_id,
                    campaign_id,
                    env,
                    to,
                    CallStatus(status),
                    int(attempt or "0"),
                    is_testing == "1",
                    trace or None,
                )
        return found

    async def mark_started(self, call: Call, attempt: int, now: datetime) -> bool:
        changed = await self._mark_started(
            keys=[
                keys.call(call.campaign_id, call.id),
                keys.campaign_stats(call.campaign_id),
                keys.calls_by_status_prefix(call.campaign_id),
            ],
            args=[attempt, CallStatus.IN_PROGRESS.value, to_us(now), to_iso(now), call.id],
        )
        return bool(changed)

    async def apply_outcome(
        self,
        call: Call,
        attempt: int,
        decision: str,
        status: CallStatus,
        now: datetime,
        terminal: bool,
        requeued: Requeued | None = None,
        duration_seconds: float | None = None,
    ) -> tuple[bool, str]:
        """Records an attempt's decision once; returns (first time, the stored decision)."""
        first, stored = await self._apply_outcome(
            keys=[
                keys.call(call.campaign_id, call.id),
                keys.active_numbers(call.campaign_id),
                keys.campaign_stats(call.campaign_id),
                keys.calls_by_status_prefix(call.campaign_id),
                keys.ended_calls(call.campaign_id),
                keys.call_body(call.campaign_id, call.id),
            ],
            args=[
                call.id,
                call.to,
                attempt,
                decision,
                status.value,
                to_us(now),
                "1" if terminal else "0",
                int((duration_seconds or 0) * 1000),
                self._keep_ms,
                *_flatten(requeued.fields() if requeued else {}),
            ],
        )
        return bool(first), str(stored)

    async def end_undialed(
        self, call: Call, attempt: int, status: CallStatus, now: datetime
    ) -> bool:
        """Ends an attempt that was never dialed (blocked, expired), once; frees the number."""
        decision = orjson.dumps({"status": status.value, "decided_at": to_iso(now)}).decode()
        first, _ = await self.apply_outcome(call, attempt, decision, status, now, terminal=True)
        return first

    async def cancel_queued(
        self, call: Call, now: datetime, *, announce: bool = False
    ) -> tuple[bool, str]:
        """Cancels a call that is still waiting; returns (cancelled, status before). With
        `announce`, the call is also put in its campaign's set of cancellations still to be
        announced, in the same step (`announced` takes it out once its event is out)."""
        cancelled, before = await self._cancel(
            keys=[
                keys.call(call.campaign_id, call.id),
                keys.active_numbers(call.campaign_id),
                keys.campaign_stats(call.campaign_id),
                keys.handoffs(call.campaign_id),
                keys.calls_by_status_prefix(call.campaign_id),
                keys.ended_calls(call.campaign_id),
                keys.call_body(call.campaign_id, call.id),
                keys.calls_to_announce(call.campaign_id),
            ],
            args=[
                call.id,
                call.to,
                CallStatus.CANCELLED.value,
                to_us(now),
                self._keep_ms,
                "1" if announce else "0",
            ],
        )
        return bool(cancelled), str(before)

    async def stats(self, campaign_id: str) -> dict[str, int]:
        raw = cast(dict[str, str], await self._redis.hgetall(keys.campaign_stats(campaign_id)))
        return {name: int(value) for name, value in raw.items()}

    async def call_ids(self, campaign_id: str) -> list[str]:
        """Every call of the campaign, oldest first (by creation time). For tests and tools:
        the API reads pages (`page_of_calls`)."""
        return cast(list[str], await self._redis.zrange(keys.campaign_calls(campaign_id), 0, -1))

    async def page_of_calls(
        self, campaign_id: str, status: str | None, start: int, count: int
    ) -> tuple[list[str], int]:
        """Call ids `start` to `start + count` (exclusive) of the campaign, newest first (by
        creation time, then id), of one status or all; and how many there are in all."""
        index = (
            keys.calls_by_status(campaign_id, status)
            if status
            else keys.campaign_calls(campaign_id)
        )
        ids, total = await asyncio.gather(
            self._redis.zrevrange(index, start, start + count - 1), self._redis.zcard(index)
        )
        return cast(list[str], ids), int(total)

    async def calls_to_number(self, campaign_id: str, e164: str) -> list[tuple[str, str, int]]:
        """(call id, status, created µs) of every call of the campaign to the number, newest
        first. Read from the number index (`<e164>|` up to `<e164>}`, the next character after
        `|`): as many reads as the number has calls."""
        members = cast(
            list[str],
            await self._redis.zrangebylex(
                keys.calls_by_number(campaign_id), f"[{e164}|", f"({e164}}}"
            ),
        )
        ids = [keys.split_number_member(member)[1] for member in members]
        rows = cast(
            list[list[str | None]],
            await asyncio.gather(
                *(self._redis.hmget(keys.call(campaign_id, c), ["status", "created"]) for c in ids)
            ),
        )
        found = [
            (call_id, row[0], int(row[1]))
            for call_id, row in zip(ids, rows, strict=True)
            if row[0] is not None and row[1] is not None
        ]
        found.sort(key=lambda item: (item[2], item[0]), reverse=True)
        return found

    async def count_in_status(self, campaign_id: str, status: CallStatus) -> int:
        """How many calls of the campaign (test calls included) are in `status`."""
        return int(await self._redis.zcard(keys.calls_by_status(campaign_id, status.value)))

    async def first_in_status(self, campaign_id: str, status: CallStatus, limit: int) -> list[str]:
        """Up to `limit` call ids in `status`, oldest first."""
        return cast(
            list[str],
            await self._redis.zrange(keys.calls_by_status(campaign_id, status.value), 0, limit - 1),
        )

    async def forget_from_status(self, campaign_id: str, status: CallStatus, call_id: str) -> None:
        """Drops an index entry whose call is gone, so a walk over the index moves on."""
        await self._redis.zrem(keys.calls_by_status(campaign_id, status.value), call_id)

    async def to_announce(self, campaign_id: str) -> list[str]:
        """Calls cancelled with `announce` whose events are not yet published."""
        return sorted(
            cast(set[str], await self._redis.smembers(keys.calls_to_announce(campaign_id)))
        )

    async def announced(self, campaign_id: str, call_ids: list[str]) -> None:
        if call_ids:
            await self._redis.srem(keys.calls_to_announce(campaign_id), *call_ids)

    # --- retention and deletion ------------------------------------------------------------

    async def retention_due(self, shard: int, now: datetime, limit: int) -> list[str]:
        """Campaigns of a retention shard that may hold calls ended a retention period ago."""
        return cast(
            list[str],
            await self._redis.zrangebyscore(
                keys.retention_campaigns(shard),
                "-inf",
                to_ms(now) - self.retention_ms,
                start=0,
                num=limit,
            ),
        )

    async def forget_ended(
        self, campaign_id: str, now: datetime, limit: int
    ) -> tuple[list[str], int | None]:
        """Removes up to `limit` calls of the campaign ended a retention period ago, with their
        keys and index entries (due-queue entries too); returns their ids and the earliest end
        (ms) still in the campaign's ended set."""
        removed, first = await self._forget_ended(
            keys=[
                keys.ended_calls(campaign_id),
                keys.campaign_calls(campaign_id),
                keys.calls_by_status_prefix(campaign_id),
                keys.calls_by_number(campaign_id),
                keys.call(campaign_id, ""),
                keys.call_body(campaign_id, ""),
                keys.dial_claim_prefix(campaign_id),
            ],
            args=[to_ms(now) - self.retention_ms, limit, MOST_ATTEMPTS, *_STATUSES],
        )
        ids = cast(list[str], removed)
        await self._forget_due(campaign_id, ids)
        return ids, int(float(first)) if first else None

    async def retention_next(self, campaign_id: str, at_ms: int) -> None:
        """When the sweep is to look at the campaign next: a retention period after `at_ms`.
        A campaign no longer in the index (deleted) is not put back."""
        await self._redis.zadd(
            keys.retention_campaigns(keys.retention_shard_of(campaign_id)),
            {campaign_id: at_ms},
            xx=True,
        )

    async def drop_calls(self, campaign_id: str, limit: int) -> list[str]:
        """Deletes up to `limit` calls of the campaign (first in its calls index) with their
        keys and due-queue entries; returns their ids (none left: empty)."""
        removed = cast(
            list[str],
            await self._drop_calls(
                keys=[
                    keys.campaign_calls(campaign_id),
                    keys.call(campaign_id, ""),
                    keys.call_body(campaign_id, ""),
                    keys.dial_claim_prefix(campaign_id),
                ],
                args=[limit, MOST_ATTEMPTS],
            ),
        )
        await self._forget_due(campaign_id, removed)
        return removed

    async def reindex_legacy(self, campaign_id: str, now: datetime, chunk: int) -> int:
        """Files the calls of the campaign's list written before the listing indexes (the
        old `cc:{<id>}:calls` list) in those indexes, and its ended calls in the ended set,
        `chunk` at a time; then deletes the list. Returns how many calls it read."""
        old = keys.legacy_campaign_calls(campaign_id)
        done = start = 0
        while True:
            read = int(
                await self._reindex(
                    keys=[
                        old,
                        keys.campaign_calls(campaign_id),
                        keys.calls_by_status_prefix(campaign_id),
                        keys.calls_by_number(campaign_id),
                        keys.ended_calls(campaign_id),
                        keys.call(campaign_id, ""),
                        keys.call_body(campaign_id, ""),
                    ],
                    args=[start, chunk, self._keep_ms, to_ms(now)],
                )
            )
            done += read
            start += read
            if read < chunk:
                break
        await self._redis.delete(old)
        if done:
            # Looked at by the retention sweep at its next pass, then filed by its ended calls.
            await self._redis.zadd(
                keys.retention_campaigns(keys.retention_shard_of(campaign_id)),
                {campaign_id: 0},
                lt=True,
            )
        return done

    async def forget_campaign(self, campaign_id: str) -> None:
        """Takes a campaign out of the service-wide indexes: hand-off, slot and retention."""
        await asyncio.gather(
            self._redis.srem(keys.campaigns_with_handoffs(), campaign_id),
            self._redis.srem(keys.campaigns_with_slots(), campaign_id),
            self._redis.zrem(
                keys.retention_campaigns(keys.retention_shard_of(campaign_id)), campaign_id
            ),
        )
        self._indexed.discard(campaign_id)

    async def _forget_due(self, campaign_id: str, call_ids: list[str]) -> None:
        by_shard: dict[int, list[str]] = {}
        for call_id in call_ids:
            by_shard.setdefault(keys.due_shard_of(call_id, self.due_shards), []).append(
                keys.due_member(campaign_id, call_id)
            )
        await asyncio.gather(
            *(
                command
                for shard, members in by_shard.items()
                for command in (
                    self._redis.zrem(keys.due_queue(shard), *members),
                    self._redis.zrem(keys.due_inflight(shard), *members),
                )
            )
        )

    async def statuses(self, campaign_id: str, call_ids: list[str]) -> list[tuple[str, str]]:
        """(status, number) of each call, in one round trip."""
        rows = cast(
            list[list[str | None]],
            await asyncio.gather(
                *(self._redis.hmget(keys.call(campaign_id, c), ["status", "to"]) for c in call_ids)
            ),
        )
        return [(row[0] or "", row[1] or "") for row in rows]

    async def history(self, campaign_id: str, call_id: str) -> dict[str, str]:
        """Raw per-attempt fields (`started:N`, `outcome:N`) of one call."""
        fields = cast(dict[str, str], await self._redis.hgetall(keys.call(campaign_id, call_id)))
        return {k: v for k, v in fields.items() if k.startswith(("started:", "outcome:"))}

    async def claim_attempt(self, call: Call, attempt: int, ttl_ms: int) -> bool:
        """The dialer's claim: only the first holder of (call, attempt) may dial."""
        won = await self._redis.set(
            keys.dial_claim(call.campaign_id, call.id, attempt), "1", nx=True, px=ttl_ms
        )
        return bool(won)

    async def reschedule_many(self, later: Iterable[tuple[DueClaim, datetime]]) -> None:
        """Puts claimed calls back in their shards, each for its time, dropping their leases:
        one transaction per shard (its queue and lease set share the shard's hash tag)."""
        by_shard: dict[int, list[tuple[DueClaim, datetime]]] = {}
        for claim, due in later:
            by_shard.setdefault(claim.shard, []).append((claim, due))
        if not by_shard:
            return

        async def shard_back(shard: int, items: list[tuple[DueClaim, datetime]]) -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(keys.due_queue(shard), {c.member: to_ms(due) for c, due in items})
                pipe.zrem(keys.due_inflight(shard), *(c.member for c, _ in items))
                await pipe.execute()

        await asyncio.gather(*(shard_back(shard, items) for shard, items in by_shard.items()))

    async def release_attempt(self, call: Call, attempt: int) -> None:
        """Gives a claimed attempt back, for a call handed back undialed."""
        await self._redis.delete(keys.dial_claim(call.campaign_id, call.id, attempt))
