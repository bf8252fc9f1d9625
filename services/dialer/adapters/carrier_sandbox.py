"""A simulated carrier, in process: rings, talks and ends by the sandbox rule, in real time.

It reports as a real carrier does, only later and through `deliver` instead of an HTTP
callback (with no ring and no talk time, a call is over as it is placed: its ending comes
with the placement instead); its call ids carry what it needs to answer a status look-up from
any process (the number's last digit, when the call was placed, the ring and talk times), so a
dialer copy that did not place a call can still learn how it went.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

from services.dialer.domain.sandbox import SandboxOutcome, sandbox_outcome
from services.dialer.domain.telephony import CarrierEvent, PlaceCall, Placed

Deliver = Callable[[PlaceCall, CarrierEvent], Awaitable[None]]


class SandboxCarrier:
    def __init__(self, ring_ms: int, talk_ms: int) -> None:
        self._ring_ms = ring_ms
        self._talk_ms = talk_ms
        self._deliver: Deliver | None = None
        self._calls: set[asyncio.Task[None]] = set()
        # Unique across processes and restarts, without a random id per call.
        self._process = uuid.uuid4().hex[:12]
        self._placed = 0

    @property
    def name(self) -> str:
        return "sandbox"

    def report_to(self, deliver: Deliver) -> None:
        """Where the sandbox sends what happens to the calls it places."""
        self._deliver = deliver

    async def place_call(self, request: PlaceCall) -> Placed:
        placed_ms = int(time.time() * 1000)
        self._placed += 1
        call_id = (
            f"SB{request.to[-1]}-{placed_ms}-{self._ring_ms}-{self._talk_ms}"
            f"-{self._process}{self._placed}"
        )
        if not self._ring_ms and not self._talk_ms:
            # Over as soon as it is placed: its ending comes with the placement.
            return Placed(call_id, _ending(call_id, sandbox_outcome(request.to), 0))
        task = asyncio.create_task(self._run(request, call_id), name=f"sandbox-{call_id}")
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)
        return Placed(call_id)

    async def _run(self, request: PlaceCall, call_id: str) -> None:
        assert self._deliver is not None, "report_to() names where events go"
        result = sandbox_outcome(request.to)
        if self._ring_ms:
            await asyncio.sleep(self._ring_ms / 1000)
        if result.answered and self._talk_ms:
            await self._deliver(request, CarrierEvent(call_id, answered=True))
            await asyncio.sleep(self._talk_ms / 1000)
        await self._deliver(request, _ending(call_id, result, self._talk_ms))

    async def call_status(self, carrier_call_id: str) -> CarrierEvent | None:
        digit, placed_ms, ring_ms, talk_ms, _ = carrier_call_id[2:].split("-")
        result = sandbox_outcome(digit)
        elapsed = int(time.time() * 1000) - int(placed_ms)
        if elapsed < int(ring_ms):
            return None
        if result.answered and elapsed < int(ring_ms) + int(talk_ms):
            return CarrierEvent(carrier_call_id, answered=True)
        return _ending(carrier_call_id, result, int(talk_ms))

    async def drain(self, seconds: float) -> None:
        """Lets the calls this process simulates end (up to `seconds`)."""
        if self._calls:
            await asyncio.wait(set(self._calls), timeout=seconds)


def _ending(call_id: str, result: SandboxOutcome, talk_ms: int) -> CarrierEvent:
    return CarrierEvent(
        call_id,
        answered=result.answered,
        outcome=result.outcome,
        duration_seconds=talk_ms / 1000 if result.answered else 0.0,
        error=result.error,
    )
