"""What the dialer keeps in Redis about each attempt it hands to a carrier.

An attempt's carrier state lives in its call's hash (so every script runs on the campaign's
slot): `carrier:<n>` (`<carrier>|<carrier call id>`), `answered:<n>`, `ended:<n>` (the
ending as JSON) and `reported:<n>` (`done`, or until when a copy holds the right to publish
the ending). A carrier's call id points back to its attempt through `keys.carrier_call`, and
every attempt whose ending is not yet reported sits in an awaiting-outcome shard, scored by
when a dialer should next look at it. Any copy of the dialer can therefore apply a carrier's
callback, or ask the carrier, from this state alone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, NamedTuple, cast

import orjson
from redis.asyncio import Redis

from services.dialer.adapters.per_turn import PerTurn
from shared import keys
from shared.clock import to_ms
from shared.models import Call
from shared.redis_client import ScriptCall, Step, in_order
from shared.rules.outcomes import Outcome
from shared.store import lua
from shared.store.calls import call_from_fields

_TAKE_ATTEMPTS: Final = lua.source(__package__, "take_attempts.lua")
_RECORD_PLACEMENT: Final = lua.source(__package__, "record_placement.lua")
_RECORD_ANSWERED: Final = lua.source(__package__, "record_answered.lua")
_RECORD_ENDED: Final = lua.source(__package__, "record_ended.lua")
_CLAIM_OVERDUE: Final = lua.source(__package__, "claim_overdue.lua")

DONE: Final = "done"


class AttemptRef(NamedTuple):
    """One attempt of one call (a tuple: made for every message and report, cheaply)."""

    campaign_id: str
    call_id: str
    attempt: int

    @property
    def member(self) -> str:
        return keys.attempt_member(self.campaign_id, self.call_id, self.attempt)

    @property
    def slot(self) -> str:
        return keys.slot_member(self.call_id, self.attempt)

    @classmethod
    def parse(cls, member: str) -> AttemptRef:
        return cls(*keys.split_attempt_member(member))


RefusedWhy = Literal["gone", "stale", "claimed", "lost"]


@dataclass(frozen=True, slots=True)
class Taken:
    """An attempt this caller claimed: its call as stored, and its campaign's stored fields
    (empty if the campaign is gone)."""

    call: Call
    campaign: dict[str, str]


@dataclass(frozen=True, slots=True)
class Refused:
    """An attempt not to dial: `stale` (with the call's status and attempt), `gone`, `claimed`
    by another, or `lost` (its slot is gone)."""

    reason: RefusedWhy
    status: str | None = None
    attempt: int = 0


def _pairs(flat: list[str]) -> dict[str, str]:
    """A hash's fields from HGETALL's flat reply (as text: the client decodes replies)."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


@dataclass(frozen=True, slots=True)
class Ending:
    """How an attempt ended, as the dialer reports it."""

    outcome: Outcome
    duration_seconds: float = 0.0
    error: str | None = None

    def dumps(self) -> str:
        return orjson.dumps(
            {"outcome": self.outcome.value, "duration": self.duration_seconds, "error": self.error}
        ).decode()

    @classmethod
    def loads(cls, raw: str) -> Ending:
        data = orjson.loads(raw)
        return cls(Outcome(data["outcome"]), float(data["duration"]), data["error"])


@dataclass(frozen=True, slots=True)
class Report:
    """The right to publish an attempt's ending (and `answered` before it, if still owed)."""

    ending: Ending
    answered_too: bool


@dataclass(frozen=True, slots=True)
class AttemptState:
    carrier: str | None
    carrier_call_id: str | None
    ended: bool
    settled: bool  # reported, or decided by the scheduler: nothing left to do


def _report(reply: list[Any]) -> Report | None:
    """`record_ended.lua`'s reply: the right to publish the stored ending, if given."""
    publish, stored, answered_too = reply
    if not int(publish) or not stored:
        return None
    return Report(Ending.loads(str(stored)), bool(int(answered_too)))


class AttemptStore:
    def __init__(self, redis: Redis, claim_ttl_ms: int, publish_lease_ms: int = 10_000) -> None:
        self._redis = redis
        self._claim_ttl_ms = claim_ttl_ms
        self.publish_lease_ms = publish_lease_ms
        self._take = redis.register_script(_TAKE_ATTEMPTS)
        self._takes: PerTurn[tuple[AttemptRef, int], Taken | Refused] = PerTurn(self._take_turn)
        self._placement = redis.register_script(_RECORD_PLACEMENT)
        self._answered = redis.register_script(_RECORD_ANSWERED)
        self._ended = redis.register_script(_RECORD_ENDED)
        self._claim_overdue = redis.register_script(_CLAIM_OVERDUE)

    async def take(self, ref: AttemptRef, slot_until: datetime) -> Taken | Refused:
        """Claims the attempt if it is the call's current, waiting one and its slot is held
        (renewing it to `slot_until`); with the call and its campaign, in one round trip.

        The attempts of a campaign asked for in the same loop turn are taken by one script."""
        return await self._takes.ask((ref, to_ms(slot_until)))

    async def _take_turn(
        self, asked: list[tuple[AttemptRef, int]]
    ) -> list[Taken | Refused | BaseException]:
        by_campaign: dict[str, list[int]] = {}
        for index, (ref, _) in enumerate(asked):
            by_campaign.setdefault(ref.campaign_id, []).append(index)
        replies = await asyncio.gather(
            *(
                self._take_of_campaign(campaign_id, [asked[i] for i in indexes])
                for campaign_id, indexes in by_campaign.items()
            ),
            return_exceptions=True,
        )
        answers: list[Taken | Refused | BaseException] = [Refused("gone")] * len(asked)
        for indexes, reply in zip(by_campaign.values(), replies, strict=True):
            for position, index in enumerate(indexes):
                answers[index] = reply if isinstance(reply, BaseException) else reply[position]
        return answers

    async def _take_of_campaign(
        self, campaign_id: str, asked: list[tuple[AttemptRef, int]]
    ) -> list[Taken | Refused]:
        script_keys = [keys.dial_slots(campaign_id), keys.campaign(campaign_id)]
        args: list[Any] = [self._claim_ttl_ms]
        for ref, slot_until in asked:
            script_keys += (
                keys.call(campaign_id, ref.call_id),
                keys.call_body(campaign_id, ref.call_id),
                keys.dial_claim(campaign_id, ref.call_id, ref.attempt),
            )
            args += (ref.attempt, slot_until, ref.slot)
        reply = cast(list[Any], await self._take(keys=script_keys, args=args))
        campaign = _pairs(reply[0])
        answers: list[Taken | Refused] = []
        for (ref, _), one in zip(asked, reply[1:], strict=True):
            verdict = one[0]
            if verdict == "take":
                fields, body = one[1], one[2]
                call = call_from_fields(campaign_id, ref.call_id, _pairs(fields), body or None)
                answers.append(Taken(call, campaign))
            elif verdict == "stale":
                answers.append(Refused("stale", str(one[1]), int(one[2])))
            else:
                answers.append(Refused(cast(RefusedWhy, verdict)))
        return answers

    async def look_again_at(self, ref: AttemptRef, at: datetime) -> None:
        """Puts (or keeps) the attempt among those awaiting an outcome, to be looked at `at`."""
        shard = keys.awaiting_outcome(keys.awaiting_shard_of(ref.call_id))
        await self._redis.zadd(shard, {ref.member: to_ms(at)})

    async def look_again_if_waiting(self, ref: AttemptRef, at: datetime) -> None:
        """Moves the next look at the attempt to `at`, unless its outcome is already settled."""
        shard = keys.awaiting_outcome(keys.awaiting_shard_of(ref.call_id))
        await self._redis.zadd(shard, {ref.member: to_ms(at)}, xx=True)

    async def keep_slot(self, ref: AttemptRef, until: datetime) -> None:
        """Moves the lease of the attempt's slot to `until`, if the slot is still held."""
        await self._redis.zadd(keys.dial_slots(ref.campaign_id), {ref.slot: to_ms(until)}, xx=True)

    async def settled(self, ref: AttemptRef) -> None:
        shard = keys.awaiting_outcome(keys.awaiting_shard_of(ref.call_id))
        await self._redis.zrem(shard, ref.member)

    async def record_placement(
        self,
        ref: AttemptRef,
        carrier: str,
        carrier_call_id: str,
        slot_until: datetime,
        look_at: datetime,
        *,
        awaiting: bool = False,
    ) -> None:
        """Remembers the carrier's id for the attempt (`index` when callbacks name only it) and
        keeps its slot until `slot_until`; then moves its next look to `look_at`, unless its
        outcome is already settled (`awaiting`: puts it among those awaiting an outcome in any
        case). One round trip, the steps in this order."""
        await in_order(
            self._redis,
            self._placement_steps(ref, carrier, carrier_call_id, slot_until, look_at, awaiting),
        )

    async def record_placed_and_ended(
        self,
        ref: AttemptRef,
        carrier: str,
        carrier_call_id: str,
        placed: tuple[datetime, datetime],
        ending: Ending,
        answered: bool,
        now: datetime,
        slot_until: datetime,
    ) -> Report | None:
        """A call that was over as soon as the carrier took it: its placement, as
        `record_placement(..., *placed, awaiting=True)` (the slot's lease and the next look),
        then its ending, as `record_ended`; one round trip, the steps in this order."""
        replies = await in_order(
            self._redis,
            [
                *self._placement_steps(ref, carrier, carrier_call_id, *placed, True),
                self._ended_step(ref, ending, answered, now, slot_until),
            ],
        )
        return _report(replies[-1])

    def _placement_steps(
        self,
        ref: AttemptRef,
        carrier: str,
        carrier_call_id: str,
        slot_until: datetime,
        look_at: datetime,
        awaiting: bool,
    ) -> list[Step]:
        member = ref.member
        shard = keys.awaiting_outcome(keys.awaiting_shard_of(ref.call_id))
        look = to_ms(look_at)
        return [
            ScriptCall(
                self._placement,
                [keys.call(ref.campaign_id, ref.call_id), keys.dial_slots(ref.campaign_id)],
                [ref.attempt, f"{carrier}|{carrier_call_id}", to_ms(slot_until), ref.slot],
            ),
            ("ZADD", shard, look, member) if awaiting else ("ZADD", shard, "XX", look, member),
        ]

    async def index(self, ref: AttemptRef, carrier: str, carrier_call_id: str) -> None:
        await self._redis.set(
            keys.carrier_call(carrier, carrier_call_id), ref.member, px=self._claim_ttl_ms
        )

    async def find(self, carrier: str, carrier_call_id: str) -> AttemptRef | None:
        member = cast(
            str | None, await self._redis.get(keys.carrier_call(carrier, carrier_call_id))
        )
        return AttemptRef.parse(member) if member else None

    async def record_answered(self, ref: AttemptRef, slot_until: datetime) -> bool:
        first = await self._answered(
            keys=[keys.call(ref.campaign_id, ref.call_id), keys.dial_slots(ref.campaign_id)],
            args=[ref.attempt, to_ms(slot_until), ref.slot],
        )
        return bool(first)

    async def record_ended(
        self,
        ref: AttemptRef,
        ending: Ending | None,
        answered: bool,
        now: datetime,
        slot_until: datetime,
    ) -> Report | None:
        """Stores the ending once (None: only the one stored before); returns the right to
        publish it, or None when there is none to publish or another copy is publishing it."""
        step = self._ended_step(ref, ending, answered, now, slot_until)
        return _report(await step.script(keys=step.keys, args=step.args))

    def _ended_step(
        self,
        ref: AttemptRef,
        ending: Ending | None,
        answered: bool,
        now: datetime,
        slot_until: datetime,
    ) -> ScriptCall:
        return ScriptCall(
            self._ended,
            [keys.call(ref.campaign_id, ref.call_id), keys.dial_slots(ref.campaign_id)],
            [
                ref.attempt,
                ending.dumps() if ending else "",
                "1" if answered else "0",
                to_ms(now),
                self.publish_lease_ms,
                to_ms(slot_until),
                ref.slot,
            ],
        )

    async def reported(self, ref: AttemptRef) -> None:
        """The ending is published: nothing more is owed for this attempt."""
        # In this order, in one round trip and with no task: should this copy stop between
        # the two, the attempt is still looked at, and found settled.
        await in_order(
            self._redis,
            [
                ("HSET", keys.call(ref.campaign_id, ref.call_id), f"reported:{ref.attempt}", DONE),
                ("ZREM", keys.awaiting_outcome(keys.awaiting_shard_of(ref.call_id)), ref.member),
            ],
        )

    async def state(self, ref: AttemptRef) -> AttemptState:
        n = ref.attempt
        carrier, ended, reported, outcome = cast(
            list[str | None],
            await self._redis.hmget(
                keys.call(ref.campaign_id, ref.call_id),
                [f"carrier:{n}", f"ended:{n}", f"reported:{n}", f"outcome:{n}"],
            ),
        )
        name, _, carrier_call_id = (carrier or "").partition("|")
        return AttemptState(
            carrier=name or None,
            carrier_call_id=carrier_call_id or None,
            ended=ended is not None,
            settled=reported == DONE or outcome is not None,
        )

    async def count_lookup(self, ref: AttemptRef) -> int:
        return int(
            await self._redis.hincrby(
                keys.call(ref.campaign_id, ref.call_id), f"lookups:{ref.attempt}", 1
            )
        )

    async def overdue(self, now: datetime, next_look: datetime, limit: int) -> list[AttemptRef]:
        """Attempts whose outcome is overdue, from every shard; each taken by one caller."""
        replies = cast(
            list[list[str]],
            await asyncio.gather(
                *(
                    self._claim_overdue(
                        keys=[keys.awaiting_outcome(shard)],
                        args=[to_ms(now), to_ms(next_look), limit],
                    )
                    for shard in range(keys.AWAITING_SHARDS)
                )
            ),
        )
        return [AttemptRef.parse(member) for members in replies for member in members]
