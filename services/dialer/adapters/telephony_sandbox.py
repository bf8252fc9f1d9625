"""A simulated carrier: rings, talks and ends by the sandbox rule, in real time."""

from __future__ import annotations

import asyncio

from services.dialer.domain.sandbox import sandbox_outcome
from services.dialer.domain.telephony import CallResult, PlaceCall


class SandboxTelephony:
    def __init__(self, ring_ms: int, talk_ms: int) -> None:
        self._ring = ring_ms / 1000
        self._talk = talk_ms / 1000

    async def place_call(self, request: PlaceCall) -> CallResult:
        result = sandbox_outcome(request.to)
        await asyncio.sleep(self._ring)
        if not result.answered:
            return CallResult(
                result.outcome, answered=False, duration_seconds=0.0, error=result.error
            )
        await asyncio.sleep(self._talk)
        return CallResult(result.outcome, answered=True, duration_seconds=self._talk)
