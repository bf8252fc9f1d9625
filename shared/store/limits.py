"""Per-campaign dial limits in Redis: concurrent calls (leased slots) and calls per minute."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Final, cast

from redis.asyncio import Redis

from shared import keys
from shared.clock import from_ms, to_ms
from shared.store import lua

_ACQUIRE_DIAL_SLOTS: Final = lua.source(__package__, "acquire_dial_slots.lua")
_RENEW_DIAL_SLOT: Final = lua.source(__package__, "renew_dial_slot.lua")
_EXTEND_COOLDOWN: Final = lua.source(__package__, "extend_cooldown.lua")


@dataclass(frozen=True, slots=True)
class Grant:
    granted: int
    next_rate_slot: datetime | None  # when the per-minute limit next lets a call through


@dataclass(frozen=True, slots=True)
class LostSlot:
    """A slot whose lease ran out: its dialer stopped renewing it (it died mid-call)."""

    campaign_id: str
    call_id: str
    attempt: int


class DialLimits:
    def __init__(self, redis: Redis, lease_ms: int) -> None:
        self._redis = redis
        self.lease_ms = lease_ms
        self._acquire = redis.register_script(_ACQUIRE_DIAL_SLOTS)
        self._renew = redis.register_script(_RENEW_DIAL_SLOT)

    async def acquire(
        self,
        campaign_id: str,
        members: list[str],
        max_concurrent: int,
        per_minute: int,
        now: datetime,
    ) -> Grant:
        """Takes slots for as many of `members` (in order) as both limits allow."""
        await self._redis.sadd(keys.campaigns_with_slots(), campaign_id)
        granted, next_rate = await self._acquire(
            keys=[keys.dial_slots(campaign_id), keys.dial_rate(campaign_id)],
            args=[to_ms(now), max_concurrent, per_minute, self.lease_ms, *members],
        )
        return Grant(int(granted), from_ms(float(next_rate)) if int(next_rate) else None)

    async def renew(self, campaign_id: str, member: str, now: datetime) -> bool:
        changed = await self._renew(
            keys=[keys.dial_slots(campaign_id)], args=[to_ms(now), self.lease_ms, member]
        )
        return bool(changed)

    async def lease_deadline(self, campaign_id: str, member: str) -> datetime | None:
        score = await self._redis.zscore(keys.dial_slots(campaign_id), member)
        return from_ms(float(score)) if score is not None else None

    async def free(self, campaign_id: str, member: str) -> None:
        await self._redis.zrem(keys.dial_slots(campaign_id), member)

    async def lost(self, now: datetime, limit: int = 1000) -> list[LostSlot]:
        """Slots whose lease ran out, across campaigns; campaigns left with none are dropped."""
        campaign_ids = cast(list[str], await self._redis.smembers(keys.campaigns_with_slots()))
        found: list[LostSlot] = []
        for campaign_id in campaign_ids:
            slots = keys.dial_slots(campaign_id)
            expired = cast(
                list[str],
                await self._redis.zrange(
                    slots, "-inf", to_ms(now), byscore=True, offset=0, num=limit
                ),
            )
            for member in expired:
                call_id, attempt = keys.split_slot_member(member)
                found.append(LostSlot(campaign_id, call_id, attempt))
            if not expired and await self._redis.zcard(slots) == 0:
                await self._redis.srem(keys.campaigns_with_slots(), campaign_id)
        return found


def rest_until(stored: str | None, now: datetime) -> datetime | None:
    """A number's stored rest deadline (ms) as an instant, or None if it is free at `now`."""
    return from_ms(float(stored)) if stored and int(stored) > to_ms(now) else None


class NumberCooldowns:
    """Post-completion holds: a number that just completed a call rests for a while."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._extend = redis.register_script(_EXTEND_COOLDOWN)

    async def hold_until(
        self, environment_id: str, e164: str, until: datetime, now: datetime
    ) -> None:
        ttl_ms = max(1, to_ms(until) - to_ms(now))
        await self._extend(
            keys=[keys.number_cooldown(environment_id, e164)], args=[to_ms(until), ttl_ms]
        )

    async def held_until(
        self, pairs: list[tuple[str, str]], now: datetime
    ) -> list[datetime | None]:
        """For each (environment, number): until when it is held, or None if it is free now."""
        if not pairs:
            return []
        names = [keys.number_cooldown(environment_id, e164) for environment_id, e164 in pairs]
        if len(names) == 1:
            raws: list[str | None] = [cast(str | None, await self._redis.get(names[0]))]
        else:
            # Keys of one environment share a hash tag: one MGET each, all issued in one turn
            # (so one round trip per Redis node).
            positions: dict[str, list[int]] = {}
            for index, (environment_id, _) in enumerate(pairs):
                positions.setdefault(environment_id, []).append(index)
            replies = cast(
                list[list[str | None]],
                await asyncio.gather(
                    *(
                        self._redis.mget([names[i] for i in indexes])
                        for indexes in positions.values()
                    )
                ),
            )
            raws = [None] * len(names)
            for indexes, values in zip(positions.values(), replies, strict=True):
                for index, value in zip(indexes, values, strict=True):
                    raws[index] = value
        return [rest_until(raw, now) for raw in raws]
