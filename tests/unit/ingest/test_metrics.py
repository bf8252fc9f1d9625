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
