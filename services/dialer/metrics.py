"""The dialer's metrics: placements by carrier and how they went, how long the carrier took to
take each, and the placements under way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.metrics import PREFIX

PLACED = "placed"
FAILED = "failed"
# A placement is one request (with its retries) to the carrier: from well under a second for
# the sandbox to the whole placement budget for a carrier that keeps failing.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class DialerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._attempts = Counter(
            f"{PREFIX}_dial_attempts_total",
            "Attempts this process handed to a carrier, by carrier and whether the carrier "
            "took the call (placed) or refused it after every try (failed).",
            ["provider", "outcome"],
            registry=registry,
        )
        self._duration = Histogram(
            f"{PREFIX}_dial_duration_seconds",
            "Placement time: from the request to the carrier to its answer (the call is "
            "ringing, or the placement failed), by carrier.",
            ["provider"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self._in_flight = Gauge(
            f"{PREFIX}_dials_in_flight",
            "Placements under way in this process: attempts it took whose carrier has not "
            "answered the placement yet.",
            registry=registry,
        )
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def count_in_flight(self, in_flight: Callable[[], float]) -> None:
        """The gauge reads `in_flight` at each scrape."""
        self._in_flight.set_function(in_flight)

    def placement(self, provider: str, outcome: str, seconds: float) -> None:
        children = self._children.get((provider, outcome))
        if children is None:
            children = self._children[(provider, outcome)] = (
                self._attempts.labels(provider, outcome),
                self._duration.labels(provider),
            )
        attempts, duration = children
        attempts.inc()
        duration.observe(seconds)
