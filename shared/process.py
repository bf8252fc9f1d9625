"""Settings of a long-running service process."""

from __future__ import annotations

import gc


def tune_collector() -> None:
    """The collector's settings for a serving process, once its resources are up.

    What start-up made (phone metadata, compiled patterns, clients) lives as long as the
    process: the collector need not walk it again on every full collection. Young objects are
    collected every 50,000 allocations, not 700: under load the work in flight keeps thousands
    of objects alive, which the default walks again and again. Cycles are rare; they wait a
    little longer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
