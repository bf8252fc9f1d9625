"""Hand back an attempt that was released but never dialed: the same attempt goes back to the
due queue, its concurrency slot is freed, and its claim (if taken) let go."""

from __future__ import annotations

from datetime import datetime

from shared import keys
from shared.models import Call
from shared.store.calls import CallStore
from shared.store.limits import DialLimits


async def hand_back(
    calls: CallStore,
    limits: DialLimits,
    call: Call,
    attempt: int,
    now: datetime,
    *,
    claimed: bool,
) -> None:
    """In this order, so a crash between the steps leaves the call queued: at worst its slot
    lapses, or its claim stays and the attempt's next lapse ends it lost."""
    await calls.requeue(call.campaign_id, call.id, now)
    await limits.free(call.campaign_id, keys.slot_member(call.id, attempt))
    if claimed:
        await calls.release_attempt(call, attempt)
