"""Do-not-call lists in Redis: one hash per (environment, scope), E.164 number -> entry JSON.

Layout (every key of one environment under the hash tag `{<environment_id>}`):

- ``keys.dnc_list(env, scope)``: hash, field = E.164 number, value = the entry as JSON, with
  ``expires_us`` (microseconds since the epoch, or null) for the scripts' expiry check.
- ``keys.dnc_scopes(env)``: set of the scopes whose list holds entries, so a number can be
  looked up on every list of the environment.

Expiry is checked on every read against the caller's `now`, to the microsecond, by the
scripts' shared read (`dnc_read.lua`, the only code of that rule): an entry whose `expires_at`
is not after `now` does not block and is removed by the same script that read it (never
read-then-write). Expired entries that are never read again stay until removed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final, cast

import orjson
from redis.asyncio import Redis

from shared import keys
from shared.clock import to_iso, to_us
from shared.models import Campaign
from shared.rules.dnc import (
    DncEntry,
    EntrySource,
    applicable_scope,
    campaign_id_of,
)
from shared.store import lua
from shared.store.limits import rest_until

# Numbers per script call in batch operations: bounds Lua's unpack and each call's run time.
CHUNK: Final = 1000

_ADD: Final = lua.source(__package__, "dnc_add.lua")
_READ_LIST: Final = lua.source(__package__, "dnc_read_list.lua")
_CHECK_NEW_CALL: Final = lua.source(__package__, "dnc_check_new_call.lua")
_READ_EVERY_LIST: Final = lua.source(__package__, "dnc_read_every_list.lua")
_REMOVE: Final = lua.source(__package__, "dnc_remove.lua")


def entry_json(entry: DncEntry) -> str:
    return orjson.dumps(
        {
            "number": entry.number,
            "scope": entry.scope,
            "source": entry.source.value,
            "reason": entry.reason,
            "created_at": to_iso(entry.created_at),
            "expires_at": to_iso(entry.expires_at) if entry.expires_at else None,
            "expires_us": to_us(entry.expires_at) if entry.expires_at else None,
        }
    ).decode()


def entry_from_json(raw: str | bytes) -> DncEntry:
    data: dict[str, Any] = orjson.loads(raw)
    expires_at = data.get("expires_at")
    return DncEntry(
        number=data["number"],
        scope=data["scope"],
        source=EntrySource(data["source"]),
        reason=data.get("reason"),
        created_at=datetime.fromisoformat(data["created_at"]),
        expires_at=datetime.fromisoformat(expires_at) if expires_at else None,
    )


def _scope_order(scope: str) -> tuple[int, str]:
    campaign_id = campaign_id_of(scope)
    return (0, "") if campaign_id is None else (1, campaign_id)


class DncStore:
    """The do-not-call lists of every environment. Numbers are E.164; callers normalise."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._add = redis.register_script(_ADD)
        self._read_list = redis.register_script(_READ_LIST)
        self._read_every_list = redis.register_script(_READ_EVERY_LIST)
        self._remove = redis.register_script(_REMOVE)
        self._check_new_call = redis.register_script(_CHECK_NEW_CALL)

    async def add_many(self, environment_id: str, scope: str, entries: Iterable[DncEntry]) -> int:
        """Puts entries on one list, replacing any entry of the same number there.

        Sent in chunks of `CHUNK`, issued together; every entry's `scope` must equal `scope`.
        Returns how many numbers were new on the list (replaced ones are not counted).
        """
        list_key = keys.dnc_list(environment_id, scope)
        scopes_key = keys.dnc_scopes(environment_id)
        chunks: list[list[str]] = []
        chunk: list[str] = []
        for entry in entries:
            if entry.scope != scope:
                raise ValueError(f"entry for {entry.number} is on {entry.scope!r}, not {scope!r}")
            chunk.extend((entry.number, entry_json(entry)))
            if len(chunk) >= 2 * CHUNK:
                chunks.append(chunk)
                chunk = []
        if chunk:
            chunks.append(chunk)
        if not chunks:
            return 0
        added = await asyncio.gather(
            *(self._add(keys=[scopes_key, list_key], args=[scope, *fields]) for fields in chunks)
        )
        return sum(int(count) for count in added)

    async def is_blocked(
        self, environment_id: str, scope: str, number: str, now: datetime
    ) -> DncEntry | None:
        """The live entry that blocks `number` on the `scope` list at `now`, or None.

        One round trip. An entry expired at `now` counts as absent and is deleted.
        """
        rows = await self._read_list(
            keys=[keys.dnc_scopes(environment_id), keys.dnc_list(environment_id, scope)],
            args=[scope, to_us(now), number],
        )
        raw = rows[0] if rows else None
        return entry_from_json(raw) if raw else None

    async def blocks_call(self, campaign: Campaign, number: str, now: datetime) -> DncEntry | None:
        """The entry that forbids calling `number` in `campaign` now, if its checks are on."""
        scope = applicable_scope(campaign, campaign.id)
        if scope is None:
            return None
        return await self.is_blocked(campaign.environment_id, scope, number, now)

    async def check_new_call(
        self, campaign: Campaign, number: str, now: datetime
    ) -> tuple[DncEntry | None, datetime | None]:
        """What a new call to `number` in `campaign` is checked against, in one round trip:
        the entry that forbids it (if the campaign's checks are on) and until when the number
        rests after a completed call of the environment (None if it is free at `now`)."""
        scope = applicable_scope(campaign, campaign.id)
        environment_id = campaign.environment_id
        raw_entry, raw_until = await self._check_new_call(
            keys=[
                keys.dnc_scopes(environment_id),
                keys.dnc_list(environment_id, scope or "environment"),
                keys.number_cooldown(environment_id, number),
            ],
            args=[scope or "", str(to_us(now)), number],
        )
        entry = entry_from_json(raw_entry) if raw_entry else None
        return entry, rest_until(raw_until, now)

    async def blocked_many(
        self, environment_id: str, scope: str, numbers: Sequence[str], now: datetime
    ) -> dict[str, DncEntry]:
        """The numbers of `numbers` blocked on the `scope` list at `now`, with their entries.

        Sent in chunks of `CHUNK`, issued together; numbers not in the answer are not blocked.
        """
        if not numbers:
            return {}
        scopes_key = keys.dnc_scopes(environment_id)
        list_key = keys.dnc_list(environment_id, scope)
        now_us = to_us(now)
        chunks = [numbers[i : i + CHUNK] for i in range(0, len(numbers), CHUNK)]
        replies: list[list[str | None]] = await asyncio.gather(
            *(
                self._read_list(keys=[scopes_key, list_key], args=[scope, now_us, *chunk])
                for chunk in chunks
            )
        )
        blocked: dict[str, DncEntry] = {}
        for chunk, rows in zip(chunks, replies, strict=True):
            for number, raw in zip(chunk, rows, strict=True):
                if raw:
                    blocked[number] = entry_from_json(raw)
        return blocked

    async def _scopes(self, environment_id: str) -> list[str]:
        members = cast(set[str], await self._redis.smembers(keys.dnc_scopes(environment_id)))
        return sorted(members, key=_scope_order)

    async def get(
        self, environment_id: str, number: str, now: datetime | None = None
    ) -> list[DncEntry]:
        """The number's entries on every list of the environment, environment-wide list first.

        With `now`, entries expired at `now` are left out (and deleted).
        """
        scopes = await self._scopes(environment_id)
        if not scopes:
            return []
        rows = await self._read_every_list(
            keys=[
                keys.dnc_scopes(environment_id),
                *(keys.dnc_list(environment_id, s) for s in scopes),
            ],
            args=["" if now is None else to_us(now), number, *scopes],
        )
        return [entry_from_json(raw) for raw in rows if raw]

    async def remove(
        self,
        environment_id: str,
        number: str,
        scope: str | None = None,
        now: datetime | None = None,
    ) -> int:
        """Takes the number off the `scope` list, or off every list when `scope` is None.

        Returns how many entries were removed; with `now`, entries already expired at `now`
        are deleted too but not counted.
        """
        scopes = [scope] if scope is not None else await self._scopes(environment_id)
        if not scopes:
            return 0
        removed = await self._remove(
            keys=[
                keys.dnc_scopes(environment_id),
                *(keys.dnc_list(environment_id, s) for s in scopes),
            ],
            args=["" if now is None else to_us(now), number, *scopes],
        )
        return int(removed)
