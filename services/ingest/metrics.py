"""The ingest API's metrics: requests by route template and status, their duration, and how
each call request was decided; and the access log, one line per request, timed by the same
middleware."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from shared.metrics import PREFIX
from shared.observability import FIELDS

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


def log_access(method: str, route: str, status: int, seconds: float) -> None:
    """The access line of one request: its route template (never the path, which holds ids
    and a number's digits), status and time; at INFO, so LOG_LEVEL=WARNING leaves it out."""
    access_log.info(
        "%s %s %d %.1f ms",
        method,
        route,
        status,
        seconds * 1000,
        extra={
            FIELDS: {
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
            }
        },
    )


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter(
            f"{PREFIX}_http_requests_total",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self._duration = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            registry=registry,
        )
        calls = Counter(
            f"{PREFIX}_call_requests_total",
            "Call requests (Make Campaign Call, and each item of a batch) by how they were "
            "decided.",
            ["result"],
            registry=registry,
        )
        self.calls = {result: calls.labels(result) for result in CALL_RESULTS}
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def call_decided(self, result: str) -> None:
        self.calls[result].inc()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
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
            seconds = time.perf_counter() - started
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else _NO_ROUTE
            method = request.method if request.method in _METHODS else "other"
            self._observe(method, route, status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                log_access(method, route, status, seconds)

    def _observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self._requests.labels(method, route, str(status)),
                self._duration.labels(method, route),
            )
        requests, duration = children
        requests.inc()
        duration.observe(seconds)
        if status == _TOO_MANY_REQUESTS and route in CALL_ROUTES:
            self.calls["rate_limited"].inc()
