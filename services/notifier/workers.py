"""The delivery workers: claim queued attempts (first sends, retries, test events and
redeliveries) and send each in a task of its own, so no endpoint holds up the consumer or the
other endpoints.

One process holds at most `max_in_flight` attempts at once, and sends at most `per_endpoint` to
one webhook at a time, with more waiting for their turn: as many as the webhook answers in
`waiting_s` at its recent pace (at least `per_endpoint`). An attempt beyond that, or one whose
turn did not come within twice `waiting_s`, goes back to the queue for a moment instead of
waiting here, so a receiver that never answers soon holds a few of the workers' places and
never the rest, while a fast one may use them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from services.notifier.dispatch import Dispatcher, FirstAttempt
from shared.clock import Clock
from shared.models import Webhook
from shared.observability import log_context
from shared.store.catalog import CatalogStore
from shared.store.deliveries import DeliveryRef, DeliveryStore

log = logging.getLogger(__name__)

# The webhooks whose pace one process keeps (forgotten all at once beyond that).
_PACES_KEPT = 10_000


class DeliveryWorkers:
    def __init__(
        self,
        store: DeliveryStore,
        catalog: CatalogStore,
        dispatcher: Dispatcher,
        clock: Clock,
        *,
        interval_ms: int,
        max_in_flight: int,
        per_endpoint: int,
        lease_ms: int,
        busy_retry_ms: int,
        waiting_s: float = 1.0,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._dispatcher = dispatcher
        self._clock = clock
        self._interval = interval_ms / 1000
        self._max_in_flight = max_in_flight
        self._per_endpoint = per_endpoint
        # A claim not finished within the lease (its notifier died) is claimed again; an
        # attempt whose timeout needs longer extends it.
        self._lease = timedelta(milliseconds=lease_ms)
        self._busy_retry = timedelta(milliseconds=busy_retry_ms)
        self._in_flight: set[asyncio.Task[None]] = set()
        # Per webhook, in this process: attempts sent or waiting for their turn, and the gate
        # that lets `per_endpoint` of them through at once.
        self._load: Counter[str] = Counter()
        self._gates: dict[str, asyncio.Semaphore] = {}
        # Per webhook, how long its recent attempts took (seconds, a moving average): an
        # endpoint may have as many attempts waiting for their turn as it takes in `waiting_s`
        # at that pace (at least `per_endpoint`); one waiting twice that long goes back to the
        # queue, so an endpoint that turns slow soon gives back the places it held.
        self._pace: dict[str, float] = {}
        self._waiting_s = waiting_s
        # The last first attempt handed over per (webhook, lane): the next one waits for it.
        self._lanes: dict[tuple[str, str], asyncio.Task[None]] = {}
        # Places held by `take` for first attempts not yet started.
        self._taken = 0
        # Set whenever a place among the process's attempts comes free.
        self._freed = asyncio.Event()
        self._work = asyncio.Event()
        self._stopping = asyncio.Event()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def free_places(self) -> int:
        return self._max_in_flight - len(self._in_flight) - self._taken

    async def room(self, wanted: int, wait_s: float) -> int | None:
        """Waits up to `wait_s` until `wanted` places among the process's attempts are free (an
        eighth of them all, if that is fewer), and returns how many are; None when the wait ran
        out first, or the workers are stopping."""
        loop = asyncio.get_running_loop()
        enough = max(1, min(wanted, self._max_in_flight // 8))
        until = loop.time() + wait_s
        while not self._stopping.is_set():
            free = self.free_places()
            if free >= enough:
                return free
            left = until - loop.time()
            if left <= 0:
                return None
            self._freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), left)
        return None

    def wake(self) -> None:
        """New attempts were queued: look for them now rather than at the next poll."""
        self._work.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            self._work.clear()
            try:
                claimed = await self.tick()
            except Exception:
                log.exception("claiming queued deliveries failed; trying again")
                claimed = 0
            if claimed == 0 or len(self._in_flight) >= self._max_in_flight:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._work.wait(), self._interval)

    async def tick(self) -> int:
        """Claims as many due attempts as there is room for and starts them."""
        room = self._max_in_flight - len(self._in_flight) - self._taken
        if room <= 0 or self._stopping.is_set():
            return 0
        now = self._clock.now()
        leased_until = now + self._lease
        refs = await self._store.claim_due(now, room, leased_until)
        for ref in refs:
            task = asyncio.create_task(
                self._attempt(ref, leased_until), name=f"delivery:{ref.delivery_id}"
            )
            self._in_flight.add(task)
            task.add_done_callback(self._done)
        return len(refs)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._freed.set()
        # Room for more: claim again without waiting for the poll.
        self._work.set()

    async def _attempt(self, ref: DeliveryRef, leased_until: datetime) -> None:
        with log_context(
            campaign_id=ref.campaign_id, webhook_id=ref.webhook_id, delivery_id=ref.delivery_id
        ):
            await self._attempt_queued(ref, leased_until)

    async def _attempt_queued(self, ref: DeliveryRef, leased_until: datetime) -> None:
        try:
            hook = await self._catalog.get_webhook(ref.campaign_id, ref.webhook_id)
            if hook is None:
                # Deleted: its queued attempts are dropped.
                await self._store.release_claimed(ref)
                return
            if not self._enter(hook.id):
                await self._store.requeue_claimed(ref, self._clock.now() + self._busy_retry)
                return
            try:
                made = await self._send_in_turn(
                    hook.id, functools.partial(self._dispatcher.attempt, ref, hook, leased_until)
                )
                if not made:
                    await self._store.requeue_claimed(ref, self._clock.now() + self._busy_retry)
            finally:
                self._leave(hook.id)
        except Exception:
            # The claim stays; its lease runs out and the attempt is claimed again.
            log.exception("attempt of delivery %s failed", ref.delivery_id)

    def _enter(self, webhook_id: str, *, always: bool = False) -> bool:
        """Takes a place for an attempt to the webhook: up to `per_endpoint` are sent at once
        and its waiting room's worth wait for their turn; False beyond that, unless `always`."""
        if not always and self._load[webhook_id] >= self._per_endpoint + self._room_of(webhook_id):
            return False
        self._load[webhook_id] += 1
        if webhook_id not in self._gates:
            self._gates[webhook_id] = asyncio.Semaphore(self._per_endpoint)
        return True

    def _room_of(self, webhook_id: str) -> int:
        """How many attempts to the webhook may wait for their turn: what it takes in
        `waiting_s` at its recent pace, at least `per_endpoint`, at most every place."""
        pace = self._pace.get(webhook_id)
        if pace is None:
            # Not heard from yet: taken for fast until a turn is slow to come.
            return self._max_in_flight
        takes = int(self._per_endpoint * self._waiting_s / max(pace, 0.001))
        return max(self._per_endpoint, min(self._max_in_flight, takes))

    def _paced(self, webhook_id: str, seconds: float) -> None:
        pace = self._pace.get(webhook_id)
        if pace is None and len(self._pace) >= _PACES_KEPT:
            self._pace.clear()
        self._pace[webhook_id] = seconds if pace is None else 0.8 * pace + 0.2 * seconds

    async def _turn(self, webhook_id: str) -> bool:
        """Waits for the webhook's turn (a place among its `per_endpoint`); False when the wait
        outlasted twice `waiting_s` (the attempt goes back to the queue)."""
        gate = self._gates[webhook_id]
        if not gate.locked():
            await gate.acquire()
            return True
        try:
            async with asyncio.timeout(2 * self._waiting_s):
                await gate.acquire()
        except TimeoutError:
            # The endpoint takes at least this long an attempt: its waiting room shrinks.
            self._paced(webhook_id, 2 * self._waiting_s)
            return False
        return True

    async def _send_in_turn(
        self, webhook_id: str, attempt: Callable[[], Awaitable[object]]
    ) -> bool:
        """Makes `attempt` in the webhook's turn, timing it; False (and nothing made) when the
        turn did not come in time."""
        if not await self._turn(webhook_id):
            return False
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await attempt()
        finally:
            self._gates[webhook_id].release()
        self._paced(webhook_id, loop.time() - started)
        return True

    def _leave(self, webhook_id: str) -> None:
        self._load[webhook_id] -= 1
        if self._load[webhook_id] <= 0:
            del self._load[webhook_id]
            del self._gates[webhook_id]

    # -- first attempts, handed over by the consumer that stored them ------------------------

    def take(self, webhook_id: str, lane: str, *, behind: bool = False) -> bool:
        """Whether this process makes a first attempt to the webhook itself; if so the place is
        held for it (`make_first`, or `give_back` if it is not needed). It does when it has
        room, and always behind a first attempt of the same lane it is still making or has
        just taken (`behind`): that keeps a call's events in order and adds nothing sent at
        once."""
        if self._stopping.is_set():
            return False
        if behind or (webhook_id, lane) in self._lanes:
            self._enter(webhook_id, always=True)
        elif self.in_flight + self._taken >= self._max_in_flight or not self._enter(webhook_id):
            return False
        self._taken += 1
        return True

    def give_back(self, webhook_id: str) -> None:
        self._taken -= 1
        self._leave(webhook_id)
        self._freed.set()

    def make_first(
        self,
        first: FirstAttempt,
        hook: Webhook,
        lane: str,
        call_id: str | None = None,
        attempt: int | None = None,
    ) -> None:
        """Makes a first attempt claimed by `take` in a task of its own, after the first
        attempts to the same webhook in the same `lane` (one call's events) handed over before
        it: the events of a call reach a webhook in the order they happened, unless one fails
        and is retried."""
        self._taken -= 1
        key = (hook.id, lane)
        before = self._lanes.get(key)
        task = asyncio.create_task(
            self._first(first, hook, before, call_id, attempt),
            name=f"delivery:{first.ref.delivery_id}",
        )
        self._lanes[key] = task
        self._in_flight.add(task)
        task.add_done_callback(self._done)
        task.add_done_callback(lambda done: self._lane_done(key, done))

    def _lane_done(self, key: tuple[str, str], task: asyncio.Task[None]) -> None:
        if self._lanes.get(key) is task:
            del self._lanes[key]

    async def _first(
        self,
        first: FirstAttempt,
        hook: Webhook,
        before: asyncio.Task[None] | None,
        call_id: str | None,
        attempt: int | None,
    ) -> None:
        ref = first.ref
        with log_context(
            call_id=call_id,
            attempt=attempt,
            campaign_id=ref.campaign_id,
            webhook_id=ref.webhook_id,
            delivery_id=ref.delivery_id,
        ):
            await self._first_in_lane(first, hook, before)

    async def _first_in_lane(
        self, first: FirstAttempt, hook: Webhook, before: asyncio.Task[None] | None
    ) -> None:
        try:
            if before is not None:
                await asyncio.wait({before})
            made = await self._send_in_turn(
                hook.id, functools.partial(self._dispatcher.make_first, first, hook)
            )
            if not made:
                # Its turn did not come in time: any copy's workers make it from the queue.
                await self._dispatcher.hand_back(first, self._clock.now() + self._busy_retry)
        except Exception:
            # Its queue entry brings it back once the claim runs out.
            log.exception("attempt of delivery %s failed", first.ref.delivery_id)
        finally:
            self._leave(hook.id)

    def stop(self) -> None:
        self._stopping.set()
        self._work.set()

    async def drain(self, grace_s: float) -> None:
        """Lets attempts under way finish for up to `grace_s`; the rest are cancelled and their
        claims come back when their leases run out."""
        if not self._in_flight:
            return
        _, pending = await asyncio.wait(set(self._in_flight), timeout=grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
