"""The retry loop: claims due retries from the delay queue and sends them in the background,
so the event consumer never waits on a failing endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from shared.clock import Clock
from shared.store.deliveries import DeliveryRef, DeliveryStore
from shared.webhooks.dispatch import Dispatcher

log = logging.getLogger(__name__)


class RetryLoop:
    def __init__(
        self,
        store: DeliveryStore,
        dispatcher: Dispatcher,
        clock: Clock,
        *,
        interval_ms: int,
        max_in_flight: int,
        lease_ms: int,
    ) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._clock = clock
        self._interval = interval_ms / 1000
        self._max_in_flight = max_in_flight
        # A claim not finished within the lease (its notifier died) is claimed again.
        self._lease = timedelta(milliseconds=lease_ms)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                claimed = await self.tick()
            except Exception:
                log.exception("retry loop pass failed; trying again")
                claimed = 0
            if claimed == 0 or len(self._in_flight) >= self._max_in_flight:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._interval)

    async def tick(self) -> int:
        """Claims as many due retries as there is room for and starts sending them."""
        room = self._max_in_flight - len(self._in_flight)
        if room <= 0:
            return 0
        now = self._clock.now()
        refs = await self._store.claim_due(now, room, now + self._lease)
        for ref in refs:
            task = asyncio.create_task(self._retry(ref), name=f"webhook-retry:{ref.delivery_id}")
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(refs)

    async def _retry(self, ref: DeliveryRef) -> None:
        try:
            await self._dispatcher.retry(ref)
        except Exception:
            # The claim stays; its lease runs out and the retry is claimed again.
            log.exception("retry of delivery %s failed", ref.delivery_id)

    def stop(self) -> None:
        self._stopping.set()

    async def drain(self, grace_s: float) -> None:
        """Lets retries under way finish for up to `grace_s`; the rest are cancelled and their
        claims come back when their leases run out."""
        if not self._in_flight:
            return
        _, pending = await asyncio.wait(set(self._in_flight), timeout=grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
