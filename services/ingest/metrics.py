"""The ingest API's metrics: requests by route template and status, their duration, and how
each call request was decided."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from shared.metrics import PREFIX

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
# Any other method a client sends is counted as "other": labels stay few.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


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
            self._observe(request, status, time.perf_counter() - started)

    def _observe(self, request: web.Request, status: int, seconds: float) -> None:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else _NO_ROUTE
        method = request.method if request.method in _METHODS else "other"
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
