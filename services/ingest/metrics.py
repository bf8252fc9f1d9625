"""The ingest API's metrics: requests by route template and status, their duration, and how
each call request was decided; and the access log, one line per request, timed by the same
frame.

A request's cost is kept to a few list and dict operations: each route template has its own
counts (`RouteMeter`), bound to the route's frame on its first request, held in plain ints and
turned into metric families only when scraped; its access line is a tuple, formatted when the
gathered lines are written."""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator
from itertools import accumulate, repeat
from operator import truediv
from time import perf_counter_ns

from aiohttp import web
from prometheus_client import CollectorRegistry, Metric
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from shared.metrics import PREFIX
from shared.observability import LINES, Lines

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
# An access line's fields, in the order of an entry's values.
_FIELDS = ("method", "route", "status", "duration_ms")

# (method, route template, status, microseconds): one request's access line.
AccessLine = tuple[str, str, int, int]


class AccessLog:
    """Ingest's access lines, one per request: its method, route template (never the path,
    which holds ids and a number's digits), status and time in milliseconds, at INFO
    (LOG_LEVEL=WARNING leaves them out). Gathered and written together at most `FLUSH_S` later
    (or every `MOST` lines), as one log record of many lines: the request path pays for a list
    append."""

    FLUSH_S = 0.1
    MOST = 1_000

    def __init__(self) -> None:
        # The lines gathered: a request appends its own, then calls `gathered` if it is the
        # first or the `MOST`th.
        self.pending: list[AccessLine] = []
        self._flush: asyncio.TimerHandle | None = None

    def add(self, line: AccessLine) -> None:
        pending = self.pending
        pending.append(line)
        if len(pending) == 1 or len(pending) >= self.MOST:
            self.gathered()

    def gathered(self) -> None:
        """A write is due once lines are pending: the first one asks for it, the `MOST`th has
        it done now."""
        if len(self.pending) >= self.MOST:
            self.flush()
        elif self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(self.FLUSH_S, self.flush)

    def flush(self) -> None:
        """Writes what is gathered now (also when the service stops)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        pending, self.pending = self.pending, []
        if pending and access_log.isEnabledFor(logging.INFO):
            methods, routes, statuses, micros = zip(*pending, strict=True)
            milliseconds = list(map(truediv, micros, repeat(1000)))
            lines = Lines(_FIELDS, (methods, routes, statuses, milliseconds))
            access_log.info("access", extra={LINES: lines})


# Upper bounds (seconds) of the request duration histogram: prometheus_client's defaults.
_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# The same in microseconds, what a request's time is counted in.
_BOUNDS_US = tuple(round(bound * 1_000_000) for bound in _BOUNDS)


_MOST_LINES = AccessLog.MOST


class RouteMeter:
    """The requests of one route template: by method and status, how many in each duration
    bucket and their time in all, in plain ints; and their access lines."""

    __slots__ = ("_access", "_counts", "route")

    def __init__(self, route: str, access: AccessLog) -> None:
        self.route = route
        self._access = access
        # (method, status) -> [microseconds in all, requests per bucket (the last for beyond
        # every bound)]
        self._counts: dict[tuple[str, int], list[int]] = {}

    def observe(self, method: str, status: int, started_ns: int) -> None:
        """One answered request, timed from `started_ns` (`time.perf_counter_ns()`)."""
        micros = (perf_counter_ns() - started_ns) // 1000
        if method not in _METHODS:
            method = "other"
        counts = self._counts.get((method, status))
        if counts is None:
            counts = self._counts[(method, status)] = [0] * (len(_BOUNDS_US) + 2)
        counts[0] += micros
        counts[bisect_left(_BOUNDS_US, micros) + 1] += 1
        # AccessLog.add, inline: the hot path's one call fewer.
        access = self._access
        pending = access.pending
        pending.append((method, self.route, status, micros))
        if len(pending) == 1 or len(pending) >= _MOST_LINES:
            access.gathered()

    def counts(self) -> list[tuple[str, int, int, list[int]]]:
        """(method, status, microseconds in all, requests per bucket) of each series."""
        return [
            (method, status, counts[0], counts[1:])
            for (method, status), counts in list(self._counts.items())
        ]


class IngestMetrics:
    """Ingest's request metrics and call results, made metric families at scrape time."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.access = AccessLog()
        self._meters: dict[str, RouteMeter] = {}
        self._calls = dict.fromkeys(CALL_RESULTS, 0)
        registry.register(self)

    def meter(self, route: str) -> RouteMeter:
        """The counts of the route template `route`."""
        meter = self._meters.get(route)
        if meter is None:
            meter = self._meters[route] = RouteMeter(route, self.access)
        return meter

    def meter_of(self, request: web.Request) -> RouteMeter:
        """The counts of the route that took `request`: its template, never its path."""
        resource = request.match_info.route.resource
        return self.meter(resource.canonical if resource is not None else _NO_ROUTE)

    def call_decided(self, result: str) -> None:
        self._calls[result] += 1

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The same counting for an application whose routes are not framed by the API's."""
        started = perf_counter_ns()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self.meter_of(request).observe(request.method, status, started)

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            f"{PREFIX}_http_requests",
            "HTTP requests answered, by method, route template and status.",
            labels=["method", "route", "status"],
        )
        durations = HistogramMetricFamily(
            f"{PREFIX}_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            labels=["method", "route"],
        )
        calls = dict(self._calls)
        for route, meter in list(self._meters.items()):
            by_method: dict[str, tuple[int, list[int]]] = {}
            for method, status, micros, buckets in meter.counts():
                answered = sum(buckets)
                requests.add_metric([method, route, str(status)], answered)
                if status == _TOO_MANY_REQUESTS and route in CALL_ROUTES:
                    calls["rate_limited"] += answered
                summed, summed_buckets = by_method.get(method, (0, [0] * len(buckets)))
                by_method[method] = (
                    summed + micros,
                    [a + b for a, b in zip(summed_buckets, buckets, strict=True)],
                )
            for method, (micros, buckets) in by_method.items():
                cumulative = list(accumulate(buckets))
                durations.add_metric(
                    [method, route],
                    [(repr(bound), float(n)) for bound, n in zip(_BOUNDS, cumulative, strict=False)]
                    + [("+Inf", float(cumulative[-1]))],
                    sum_value=micros / 1_000_000,
                )
        results = CounterMetricFamily(
            f"{PREFIX}_call_requests",
            "Call requests (Make Campaign Call, and each item of a batch) by how they were "
            "decided.",
            labels=["result"],
        )
        for result, count in calls.items():
            results.add_metric([result], count)
        yield requests
        yield durations
        yield results
