"""The ingest API's request metrics: labelled by route template, never by what the path holds."""

from __future__ import annotations

import logging

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.ingest.metrics import IngestMetrics
from shared.observability import JsonFormatter
from tests.conftest import wait_until


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


async def test_each_request_is_one_access_line_with_its_route_template(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = IngestMetrics(CollectorRegistry())

    async def found(request: web.Request) -> web.Response:
        return web.json_response({}, status=201)

    app = web.Application(middlewares=[metrics.middleware])
    app.router.add_post("/campaigns/{campaign_id}/call", found)
    with caplog.at_level(logging.INFO, logger="ingest.access"):
        async with TestClient(TestServer(app)) as client:
            assert (await client.post("/campaigns/c-123/call?to=+12025550101")).status == 201
            assert (await client.get("/nothing/c-456")).status == 404
        metrics.access.flush()
    # Gathered into one record, written as one JSON line per request.
    (record,) = [record for record in caplog.records if record.name == "ingest.access"]
    written = JsonFormatter("ingest", "i-1").format(record).split("\n")
    call, missing = (orjson.loads(line) for line in written)
    assert call["method"] == "POST"
    assert call["route"] == "/campaigns/{campaign_id}/call"
    assert call["status"] == 201
    assert isinstance(call["duration_ms"], float)
    assert call["duration_ms"] >= 0
    assert call["event"] == "access"
    assert (call["service"], call["logger"], call["level"]) == ("ingest", "ingest.access", "INFO")
    assert missing["route"] == "unmatched"
    assert missing["status"] == 404
    assert not any(value in "".join(written) for value in ("c-123", "c-456", "2025550101"))


async def test_access_lines_are_written_soon_after_their_requests(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = IngestMetrics(CollectorRegistry())

    async def found(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application(middlewares=[metrics.middleware])
    app.router.add_get("/x", found)
    with caplog.at_level(logging.INFO, logger="ingest.access"):
        async with TestClient(TestServer(app)) as client:
            for _ in range(3):
                assert (await client.get("/x")).status == 200

            async def written() -> bool:
                return any(record.name == "ingest.access" for record in caplog.records)

            await wait_until(written, within=5)
    (record,) = [record for record in caplog.records if record.name == "ingest.access"]
    assert len(JsonFormatter("ingest", "i-1").format(record).split("\n")) == 3


async def test_no_access_line_below_info(caplog: pytest.LogCaptureFixture) -> None:
    metrics = IngestMetrics(CollectorRegistry())

    async def found(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application(middlewares=[metrics.middleware])
    app.router.add_get("/x", found)
    with caplog.at_level(logging.WARNING):
        async with TestClient(TestServer(app)) as client:
            assert (await client.get("/x")).status == 200
    assert [record for record in caplog.records if record.name == "ingest.access"] == []
