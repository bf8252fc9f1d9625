"""The retention sweep: removes calls that have been ended `CALL_RETENTION_SECONDS`.

Ending a call records it in its campaign's ended set (by end time) and gives its hash and body
an expiry a day past the retention, as a backstop. The sweep looks only at campaigns whose
earliest recorded end is a retention period old (the sharded retention index, scored by that
time), removes their calls ended that long ago with every key and index entry of theirs, and
files each campaign again under the earliest end it still holds. Stats are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from shared import keys
from shared.clock import Clock, to_ms
from shared.store.calls import CallStore

log = logging.getLogger(__name__)
# Sweeps of one campaign in one pass, each of up to `batch` calls.
_ROUNDS_PER_CAMPAIGN = 20


class RetentionSweeper:
    def __init__(self, calls: CallStore, clock: Clock, *, batch: int, interval_ms: int) -> None:
        self._calls = calls
        self._clock = clock
        self._batch = batch
        self._interval = interval_ms / 1000
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.sweep()
            except Exception:
                log.exception("retention sweep failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)

    def stop(self) -> None:
        self._stopping.set()

    async def sweep(self) -> int:
        """One pass over every retention shard; returns how many calls were removed."""
        now = self._clock.now()
        cutoff = to_ms(now) - self._calls.retention_ms
        removed = 0
        for shard in range(keys.RETENTION_SHARDS):
            for campaign_id in await self._calls.retention_due(shard, now, self._batch):
                earliest: int | None = None
                for _ in range(_ROUNDS_PER_CAMPAIGN):
                    gone, earliest = await self._calls.forget_ended(campaign_id, now, self._batch)
                    removed += len(gone)
                    if earliest is None or earliest > cutoff:
                        break
                # Nothing ended left: looked at again a retention period from now, by when
                # anything that ends from now on may be due.
                await self._calls.retention_next(
                    campaign_id, earliest if earliest is not None else to_ms(now)
                )
        if removed:
            log.info("removed %d calls past their retention", removed)
        return removed
