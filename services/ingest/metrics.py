"""The ingest API's metrics: requests by route template and status, their duration, and how
each call request was decided; and the access log, one line per request, timed by the same
middleware."""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator
from itertools import accumulate
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Metric
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from shared.metrics import PREFIX
from shared.observability import LINES

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# How Make Campaign Call (one call, or one item of a batch) was decided.
CALL_RESULTS = (
    "accepted",
    "duplicate",
    "invalid",
    "do_not_call",
    "closed",
    "not_found",
    "unavailable",
    "rate_limited",
)
# The routes of Make Campaign Call: a 429 there is a call request refused by a rate limit.
CALL_ROUTES = frozenset(
    {"/api/v1/campaigns/{campaign_id}/call", "/api/v1/campaigns/{campaign_id}/calls/batch"}
)
_TOO_MANY_REQUESTS = 429
_NO_ROUTE = "unmatched"
# Its own logger: `ingest.access` lines can be told (and filtered) from the rest.
access_log = logging.getLogger("ingest.access")
# Any other method a client sends is counted as "other": labels stay few.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class AccessLog:
    """Ingest's access lines, one per request: its method, route template (never the path,
    which holds ids and a number's digits), status and time, at INFO (LOG_LEVEL=WARNING leaves
    them out). Gathered and written together at most `FLUSH_S` later (or every `MOST` lines),
    as one log record of many lines: the request path pays for a list append."""

    FLUSH_S = 0.1
    MOST = 1_000

    def __init__(self) -> None:
        self._pending: list[tuple[str, str, int, float]] = []
        self._flush: asyncio.TimerHandle | None = None

    def add(self, method: str, route: str, status: int, seconds: float) -> None:
        self._pending.append((method, route, status, seconds))
        if len(self._pending) >= self.MOST:
            self.flush()
        elif self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(self.FLUSH_S, self.flush)

    def flush(self) -> None:
        """Writes what is gathered now (also when the service stops)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        pending, self._pending = self._pending, []
        if pending:
            lines = [
                {
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                }
                for method, route, status, seconds in pending
            ]
            access_log.info("access", extra={LINES: lines})


# Upper bounds (seconds) of the request duration histogram: prometheus_client's defaults.
_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class _RequestSeries:
    """Requests by (method, route, status) and their durations, kept in plain counts and
    turned into metric families only when scraped: a request costs a dict look-up and a
    bisection, not prometheus_client's locked counter and histogram updates."""

    def __init__(self) -> None:
        # (method, route, status) -> [requests, seconds in all, count per bucket (the last
        # for beyond every bound)]
        self._series: dict[tuple[str, str, int], list[Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        entry = self._series.get((method, route, status))
        if entry is None:
            entry = self._series[(method, route, status)] = [0, 0.0, [0] * (len(_BOUNDS) + 1)]
        entry[0] += 1
        entry[1] += seconds
        entry[2][bisect_left(_BOUNDS, seconds)] += 1

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            f"{PREFIX}_http_requests",
            "HTTP requests answered, by method, route template and status.",
            labels=["method", "route", "status"],
        )
        by_route: dict[tuple[str, str], list[Any]] = {}
        for (method, route, status), (count, seconds, buckets) in list(self._series.items()):
            requests.add_metric([method, route, str(status)], count)
            summed = by_route.setdefault((method, route), [0.0, [0] * len(buckets)])
            summed[0] += seconds
            summed[1] = [a + b for a, b in zip(summed[1], buckets, strict=True)]
        durations = HistogramMetricFamily(
            f"{PREFIX}_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            labels=["method", "route"],
        )
        for (method, route), (seconds, buckets) in by_route.items():
            cumulative = list(accumulate(buckets))
            durations.add_metric(
                [method, route],
                [(repr(bound), float(n)) for bound, n in zip(_BOUNDS, cumulative, strict=False)]
                + [("+Inf", float(cumulative[-1]))],
                sum_value=seconds,
            )
        yield requests
        yield durations


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._series = _RequestSeries()
        self.access = AccessLog()
        registry.register(self._series)
        calls = Counter(
            f"{PREFIX}_call_requests_total",
            "Call requests (Make Campaign Call, and each item of a batch) by how they were "
            "decided.",
            ["result"],
            registry=registry,
        )
        self.calls = {result: calls.labels(result) for result in CALL_RESULTS}

    def call_decided(self, result: str) -> None:
        self.calls[result].inc()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The same counting for an application whose routes are not framed by the API's."""
        return await self.timed(request, handler)

    async def timed(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Answers the request with `handler`, counting and timing it (`observe`)."""
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self.observe(request, status, time.perf_counter() - started)

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        """One answered request: counted under its route's template, never its path, and its
        access line written (at INFO)."""
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else _NO_ROUTE
        method = request.method if request.method in _METHODS else "other"
        self._series.observe(method, route, status, seconds)
        if access_log.isEnabledFor(logging.INFO):
            self.access.add(method, route, status, seconds)
        if status == _TOO_MANY_REQUESTS and route in CALL_ROUTES:
            self.calls["rate_limited"].inc()
