"""The ingest API's request metrics: labelled by route template, never by what the path holds."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.ingest.metrics import IngestMetrics


def _samples(registry: CollectorRegistry, name: str) -> dict[frozenset[tuple[str, str]], float]:
    text = generate_latest(registry).decode()
    return {
        frozenset(sample.labels.items()): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def test_requests_are_counted_by_route_template_status_and_known_method() -> None:
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)

    async def found(request: web.Request) -> web.Response:
        return web.json_response({}, status=201)

    async def missing(request: web.Request) -> web.Response:
        raise web.HTTPNotFound()

    app = web.Application(middlewares=[metrics.middleware])
    app.router.add_post("/campaigns/{campaign_id}/call", found)
    app.router.add_route("*", "/{path:.*}", missing)
    async with TestClient(TestServer(app)) as client:
        assert (await client.post("/campaigns/c-123/call")).status == 201
        assert (await client.post("/campaigns/c-456/call")).status == 201
        assert (await client.request("PROPFIND", "/pot-789")).status == 404

    requests = _samples(registry, "campaign_calls_http_requests_total")
    call = "/campaigns/{campaign_id}/call"
    assert requests == {
        frozenset({("method", "POST"), ("route", call), ("status", "201")}): 2,
        frozenset({("method", "other"), ("route", "/{path}"), ("status", "404")}): 1,
    }
    durations = _samples(registry, "campaign_calls_http_request_duration_seconds_count")
    assert durations[frozenset({("method", "POST"), ("route", call)})] == 2
    text = generate_latest(registry).decode()
    assert not any(value in text for value in ("c-123", "c-456", "pot-789", "PROPFIND"))


async def test_a_call_request_refused_by_a_rate_limit_is_counted_as_such() -> None:
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)

    async def limited(request: web.Request) -> web.Response:
        raise web.HTTPTooManyRequests()

    app = web.Application(middlewares=[metrics.middleware])
    app.router.add_post("/api/v1/campaigns/{campaign_id}/call", limited)
    app.router.add_get("/api/v1/campaigns", limited)
    async with TestClient(TestServer(app)) as client:
        assert (await client.post("/api/v1/campaigns/c-1/call")).status == 429
        assert (await client.get("/api/v1/campaigns")).status == 429

    results = _samples(registry, "campaign_calls_call_requests_total")
    assert results[frozenset({("result", "rate_limited")})] == 1
    assert results[frozenset({("result", "accepted")})] == 0
