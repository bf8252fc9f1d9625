"""Per-environment API allowances in Redis, shared by every copy of the service.

One key per environment (`shared.keys.api_rate`, under the environment's hash tag) and one
script call per request (`take_api_allowance.lua`): on the call path it joins the turn's
other commands in the client's shared write, so it costs one round trip and no connection."""

from __future__ import annotations

from typing import Final

from redis.asyncio import Redis

from shared import keys
from shared.store import lua

_TAKE_API_ALLOWANCE: Final = lua.source(__package__, "take_api_allowance.lua")
_COSTS: Final = tuple(str(cost) for cost in range(64))  # as text: cheaper to send


class ApiAllowances:
    """`per_second` requests a second per environment, up to one second's worth at once."""

    def __init__(self, redis: Redis, per_second: int) -> None:
        if per_second < 1:
            raise ValueError("an allowance needs a rate of at least one request a second")
        self._take = redis.register_script(_TAKE_API_ALLOWANCE)
        self._rate = str(per_second)
        self._burst = str(per_second)

    async def take(self, environment_id: str, cost: int = 1) -> int:
        """Takes `cost` from the environment's allowance: 0 if it was taken, else the
        milliseconds until it could be (nothing is taken then)."""
        counted = _COSTS[cost] if 0 <= cost < len(_COSTS) else str(cost)
        wait = await self._take(
            keys=[keys.api_rate(environment_id)], args=[self._rate, self._burst, counted]
        )
        return int(wait)
