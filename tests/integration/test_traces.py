"""Traces in-process on the real broker and Redis: the four services, each with a tracer provider
of its own (its `service.name`) exporting to memory, follow one call in one trace, its context
carried in Kafka headers and stored with the call and its webhook deliveries; and a service's
spans reach the OTLP/HTTP endpoint the environment names."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaProducer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from services.dialer.app import Deps as DialerDeps
from services.ingest.app import Deps as IngestDeps
from services.ingest.app import create_app as create_ingest
from services.notifier.app import Deps as NotifierDeps
from services.notifier.app import create_app as create_notifier
from services.notifier.settings import NotifierSettings
from services.scheduler.app import Deps as SchedulerDeps
from shared import tracing
from shared.topics import CALLS_REQUESTED
from tests.clock import MovableClock
from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.integration.conftest import IngestClient, ingest_settings
from tests.integration.pipeline import kafka_settings, request, running_pipeline
from tests.support import AUTH, Receiver

pytestmark = pytest.mark.integration

SERVICES = ("ingest", "scheduler", "dialer", "notifier")
MAKE_CALL = "POST /api/v1/campaigns/{campaign_id}/call"
# A client's trace, as a customer publishing straight to the topic would send it.
CLIENT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN_ID = "00f067aa0ba902b7"


@dataclass
class Traces:
    exporter: InMemorySpanExporter
    providers: dict[str, TracerProvider]

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def of_call(self, call_id: str, name: str) -> list[ReadableSpan]:
        return [
            span
            for span in self.spans()
            if span.name == name and (span.attributes or {}).get(tracing.CALL_ID) == call_id
        ]

    def delivery_of(self, campaign_id: str, event_type: str) -> list[ReadableSpan]:
        return [
            span
            for span in self.spans()
            if span.name == "webhook delivery"
            and (span.attributes or {}).get(tracing.CAMPAIGN_ID) == campaign_id
            and (span.attributes or {}).get("campaign_calls.event_type") == event_type
        ]

    def path_to(self, span: ReadableSpan, *, outside: bool = False) -> list[ReadableSpan]:
        """The span and its ancestors, root first; fails on a parent that was not exported,
        unless `outside` allows the first to have one (the client's, for instance)."""
        by_id = {s.context.span_id: s for s in self.spans() if s.context is not None}
        path = [span]
        while path[0].parent is not None:
            parent = by_id.get(path[0].parent.span_id)
            if parent is None and outside:
                break
            assert parent is not None, f"the parent of {path[0].name!r} was not exported"
            path.insert(0, parent)
        return path


def service_of(span: ReadableSpan) -> str:
    return str(span.resource.attributes["service.name"])


def trace_of(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


@pytest.fixture
def traces() -> Iterator[Traces]:
    exporter = InMemorySpanExporter()
    providers: dict[str, TracerProvider] = {}
    for service in SERVICES:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers[service] = provider
    yield Traces(exporter, providers)
    for provider in providers.values():
        provider.shutdown()
    assert not tracing.enabled, "a service left tracing on after it stopped"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


@pytest.fixture
async def api(
    kafka_server: KafkaServer, redis_server: RedisServer, traces: Traces
) -> AsyncIterator[IngestClient]:
    """The four services in this process, each tracing to its own provider."""
    clock = MovableClock()
    settings = ingest_settings(kafka_server, redis_server, allow_private_webhook_targets=True)
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            TestClient(
                TestServer(
                    create_ingest(settings, IngestDeps(tracer_provider=traces.providers["ingest"]))
                )
            )
        )
        await stack.enter_async_context(
            running_pipeline(
                kafka_server.bootstrap,
                redis_server.url,
                clock,
                scheduler_deps=SchedulerDeps(
                    clock=clock, tracer_provider=traces.providers["scheduler"]
                ),
                dialer_deps=DialerDeps(clock=clock, tracer_provider=traces.providers["dialer"]),
            )
        )
        await stack.enter_async_context(
            create_notifier(
                NotifierSettings(
                    kafka=kafka_settings(kafka_server.bootstrap),
                    redis=redis_server.settings(),
                    poll_ms=10,
                    # Retries in milliseconds: 5 ms, 300 ms, ...
                    retry_scale=0.001,
                    allow_private_targets=True,
                    http_port=0,
                ),
                NotifierDeps(tracer_provider=traces.providers["notifier"]),
            )
        )
        yield IngestClient(client)


async def campaign_with_webhook(api: IngestClient, url: str, *events: str) -> str:
    campaign = await api.campaign()
    status, created = await api.call(
        "POST",
        f"/campaigns/{campaign['id']}/webhooks",
        {"name": "CRM", "webhook_url": url, "events": list(events)},
    )
    assert status == 201, created
    return str(campaign["id"])


async def test_one_trace_follows_a_call_from_the_api_to_its_webhook(
    api: IngestClient, traces: Traces, receiver: Receiver
) -> None:
    campaign_id = await campaign_with_webhook(
        api, receiver.url, "campaign_call.queued", "campaign_call.completed"
    )
    # The first webhook (`queued`) fails once: its retry, claimed from the queue, is traced too.
    receiver.statuses = [500]
    status, made = await api.call("POST", f"/campaigns/{campaign_id}/call", {"to": "+12125550100"})
    assert status == 201, made
    call_id = made["campaign_call"]["id"]

    async def delivered() -> bool:
        return (
            len(traces.delivery_of(campaign_id, "campaign_call.completed")) == 1
            and len(traces.delivery_of(campaign_id, "campaign_call.queued")) == 2
        )

    await wait_until(delivered, within=30)
    (delivery,) = traces.delivery_of(campaign_id, "campaign_call.completed")
    path = traces.path_to(delivery)

    # From the API request to the webhook, one parent after another, through every service.
    assert [span.name for span in path] == [
        MAKE_CALL,
        "release call",
        "dial attempt",
        "place call",
        "apply outcome",
        "webhook delivery",
    ]
    assert [service_of(span) for span in path] == [
        "ingest",
        "scheduler",
        "dialer",
        "dialer",
        "scheduler",
        "notifier",
    ]
    assert [span.kind for span in path] == [
        SpanKind.SERVER,
        SpanKind.PRODUCER,
        SpanKind.CONSUMER,
        SpanKind.CLIENT,
        SpanKind.CONSUMER,
        SpanKind.CLIENT,
    ]
    root = path[0]
    assert {trace_of(span) for span in path} == {trace_of(root)}
    assert root.parent is None
    assert (root.attributes or {})["http.response.status_code"] == 201
    assert (delivery.attributes or {})["http.response.status_code"] == 200
    assert (delivery.attributes or {})["url.full"] == receiver.url
    for span in path[1:5]:
        assert (span.attributes or {})[tracing.CALL_ID] == call_id

    # The scheduler took the request in the same trace, and the `queued` webhook went out in it.
    (accepted,) = traces.of_call(call_id, "accept call")
    assert accepted.parent is not None
    assert root.context is not None
    assert accepted.parent.span_id == root.context.span_id
    failed, retried = sorted(
        traces.delivery_of(campaign_id, "campaign_call.queued"),
        key=lambda span: int(str((span.attributes or {})["campaign_calls.delivery_attempt"])),
    )
    for queued in (failed, retried):
        assert [span.name for span in traces.path_to(queued)] == [
            MAKE_CALL,
            "accept call",
            "webhook delivery",
        ]
    assert (failed.attributes or {})["http.response.status_code"] == 500
    assert failed.status.status_code is StatusCode.ERROR
    assert (retried.attributes or {})["campaign_calls.trigger"] == "retry"
    assert (retried.attributes or {})["http.response.status_code"] == 200
    # Every span of the call is in that one trace, each service's among them.
    in_trace = [span for span in traces.spans() if trace_of(span) == trace_of(root)]
    assert {service_of(span) for span in in_trace} == set(SERVICES)
    # The trace stays ours: the customer's endpoint gets no trace context.
    assert all("traceparent" not in d.headers for d in receiver.deliveries)


async def send_requests(
    bootstrap: str, *messages: tuple[tuple[bytes, bytes], Sequence[tuple[str, bytes]] | None]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for (value, key), headers in messages:
            await producer.send_and_wait(
                CALLS_REQUESTED, value, key=key, headers=list(headers) if headers else None
            )
    finally:
        await producer.stop()


async def test_a_request_continues_its_senders_trace_or_starts_one(
    api: IngestClient, traces: Traces, kafka_server: KafkaServer
) -> None:
    campaign = await api.campaign()
    traceparent = f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01"
    status, made = await api.call(
        "POST",
        f"/campaigns/{campaign['id']}/call",
        {"to": "+12125550103"},
        headers={**AUTH, "traceparent": traceparent},
    )
    assert status == 201, made
    api_call = made["campaign_call"]["id"]
    await send_requests(
        kafka_server.bootstrap,
        (
            request(campaign["id"], "+12125550101", "traced-call"),
            [("traceparent", traceparent.encode()), ("tracestate", b"vendor=1")],
        ),
        (request(campaign["id"], "+12125550102", "untraced-call"), None),
    )

    async def placed() -> bool:
        return all(
            traces.of_call(call_id, "place call")
            for call_id in ("traced-call", "untraced-call", api_call)
        )

    await wait_until(placed, within=30)

    # An API request with a `traceparent` header: its server span is the client's child.
    (placing,) = traces.of_call(api_call, "place call")
    path = traces.path_to(placing, outside=True)
    assert [span.name for span in path] == [MAKE_CALL, "release call", "dial attempt", "place call"]
    assert path[0].parent is not None
    assert format_span_id(path[0].parent.span_id) == CLIENT_SPAN_ID
    assert {format_trace_id(trace_of(span)) for span in path} == {CLIENT_TRACE_ID}

    # A topic request with a `traceparent`: the scheduler's span is its child and the call
    # stays in that trace.
    (placing,) = traces.of_call("traced-call", "place call")
    path = traces.path_to(placing, outside=True)
    assert [span.name for span in path] == [
        "accept call",
        "release call",
        "dial attempt",
        "place call",
    ]
    accepted = path[0]
    assert accepted.parent is not None
    assert accepted.parent.is_remote
    assert format_span_id(accepted.parent.span_id) == CLIENT_SPAN_ID
    assert {format_trace_id(trace_of(span)) for span in path} == {CLIENT_TRACE_ID}
    assert accepted.context is not None
    assert accepted.context.trace_state.get("vendor") == "1"

    # Without one, a new trace starts at the scheduler's consumer.
    (placing,) = traces.of_call("untraced-call", "place call")
    path = traces.path_to(placing)
    assert [span.name for span in path] == [
        "accept call",
        "release call",
        "dial attempt",
        "place call",
    ]
    assert path[0].parent is None
    assert {trace_of(span) for span in path} == {trace_of(path[0])}
    assert format_trace_id(trace_of(path[0])) != CLIENT_TRACE_ID


async def test_spans_reach_the_otlp_endpoint_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    received: list[ExportTraceServiceRequest] = []

    async def collect(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        received.append(ExportTraceServiceRequest.FromString(await request.read()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/v1/traces", collect)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        port = runner.addresses[0][1]
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
        service = tracing.Tracing.for_service("scheduler", "scheduler-0")
        with service.span("accept call", attributes={tracing.CALL_ID: "call-1"}):
            pass
        # Stopping flushes what the batch still holds.
        await asyncio.to_thread(service.close)
    finally:
        await runner.cleanup()

    (export,) = received
    (spans,) = export.resource_spans
    resource = {a.key: a.value.string_value for a in spans.resource.attributes}
    assert resource["service.name"] == "scheduler"
    assert resource["service.instance.id"] == "scheduler-0"
    (span,) = [span for scope in spans.scope_spans for span in scope.spans]
    assert span.name == "accept call"
    assert {a.key: a.value.string_value for a in span.attributes} == {tracing.CALL_ID: "call-1"}
