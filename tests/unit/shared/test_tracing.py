"""Trace context in Kafka headers and stored with calls: what is written is what is read back,
a message without one starts a new trace, log lines name the trace, and nothing happens while
tracing is off."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id

from shared import tracing
from shared.observability import JsonFormatter, MaskingFormatter, log_context
from shared.tracing import Tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{SPAN_ID}-01"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def traced(exporter: InMemorySpanExporter) -> Iterator[Tracing]:
    provider = TracerProvider(resource=Resource.create({"service.name": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    service = Tracing(provider)
    yield service
    service.close()
    provider.shutdown()


def test_tracing_is_off_without_a_provider_or_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    service = Tracing.for_service("ingest")
    assert not service.on
    assert not tracing.enabled
    with service.consuming("accept call", [("traceparent", TRACEPARENT.encode())]) as span:
        assert span is None
    # Nothing to propagate: no span is current.
    assert tracing.current_headers() is None
    assert tracing.current_stored() is None


def test_an_otlp_endpoint_turns_exporting_on_unless_disabled() -> None:
    assert not tracing.exporting({})
    assert tracing.exporting({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.exporting({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    assert not tracing.exporting(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}
    )
    assert not tracing.exporting(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}
    )


def test_the_exporting_provider_names_the_service_unless_the_environment_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    service = Tracing.for_service("dialer", "dialer-2")
    try:
        assert service.on
        assert tracing.enabled
        provider = service._provider
        assert isinstance(provider, TracerProvider)
        assert provider.resource.attributes["service.name"] == "dialer"
        assert provider.resource.attributes["service.instance.id"] == "dialer-2"
    finally:
        service.close()
    assert not tracing.enabled
    monkeypatch.setenv("OTEL_SERVICE_NAME", "calls-dialer")
    named = tracing.exporting_provider("dialer")
    try:
        assert named.resource.attributes["service.name"] == "calls-dialer"
    finally:
        named.shutdown()


def test_the_module_flag_is_on_while_any_service_traces(exporter: InMemorySpanExporter) -> None:
    first, second = Tracing(TracerProvider()), Tracing(TracerProvider())
    assert tracing.enabled
    first.close()
    assert tracing.enabled
    first.close()  # closing twice counts once
    assert tracing.enabled
    second.close()
    assert not tracing.enabled


def test_headers_carry_the_current_span_and_are_read_back(
    traced: Tracing, exporter: InMemorySpanExporter
) -> None:
    with traced.span("send") as span:
        headers = tracing.current_headers()
        stored = tracing.current_stored()
    assert headers is not None
    assert dict(headers)["traceparent"].decode() == stored
    context = span.get_span_context()
    with traced.consuming("receive", headers):
        pass
    (_, received) = exporter.get_finished_spans()
    assert received.kind is SpanKind.CONSUMER
    assert received.parent is not None
    assert received.parent.span_id == context.span_id
    assert received.context is not None
    assert received.context.trace_id == context.trace_id


def test_a_message_without_a_trace_starts_a_new_one(
    traced: Tracing, exporter: InMemorySpanExporter
) -> None:
    with traced.span("unrelated"), traced.consuming("receive", [("content-type", b"x")]):
        pass
    received = next(s for s in exporter.get_finished_spans() if s.name == "receive")
    assert received.parent is None
    with traced.consuming("receive bad", [("traceparent", b"not-a-traceparent")]):
        pass
    received = next(s for s in exporter.get_finished_spans() if s.name == "receive bad")
    assert received.parent is None


def test_the_stored_form_keeps_the_tracestate(traced: Tracing) -> None:
    headers = [("traceparent", TRACEPARENT.encode()), ("tracestate", b"vendor=1,other=2")]
    stored = tracing.stored_from_headers(headers)
    assert stored == f"{TRACEPARENT} vendor=1,other=2"
    assert tracing.headers_from_stored(stored) == headers
    context = trace.get_current_span(tracing.from_stored(stored)).get_span_context()
    assert format_trace_id(context.trace_id) == TRACE_ID
    assert format_span_id(context.span_id) == SPAN_ID
    assert context.is_remote
    assert context.trace_state.get("other") == "2"
    # Without a tracestate the stored form is the traceparent alone.
    assert tracing.stored_from_headers(headers[:1]) == TRACEPARENT
    assert tracing.headers_from_stored(TRACEPARENT) == headers[:1]


def test_an_http_requests_header_is_read_whatever_it_holds() -> None:
    context = trace.get_current_span(tracing.from_http({"traceparent": TRACEPARENT}))
    assert format_trace_id(context.get_span_context().trace_id) == TRACE_ID
    for bad in ({}, {"traceparent": "00-é-x-01"}, {"traceparent": ""}, {"tracestate": "a=1"}):
        assert not trace.get_current_span(tracing.from_http(bad)).get_span_context().is_valid


def test_nothing_stored_reads_as_a_new_trace() -> None:
    assert tracing.stored_from_headers(None) is None
    assert tracing.stored_from_headers([("traceparent", b"00-zz-yy-01")]) is None
    assert tracing.headers_from_stored(None) is None
    assert not trace.get_current_span(tracing.from_stored(None)).get_span_context().is_valid


def test_a_stored_context_is_continued_only_where_no_span_is_current(traced: Tracing) -> None:
    with tracing.continued(TRACEPARENT):
        assert tracing.current_stored() == TRACEPARENT
        headers = tracing.current_headers()
        assert headers is not None
        assert dict(headers)["traceparent"] == TRACEPARENT.encode()
    assert tracing.current_stored() is None
    with traced.span("own") as span, tracing.continued(TRACEPARENT):
        own = span.get_span_context()
        assert tracing.current_trace_id() == format_trace_id(own.trace_id)


def test_a_producer_span_gives_its_own_headers(
    traced: Tracing, exporter: InMemorySpanExporter
) -> None:
    span = traced.start(
        "release call", kind=SpanKind.PRODUCER, parent=tracing.from_stored(TRACEPARENT)
    )
    headers = dict(tracing.headers_of(span))
    span.end()
    (released,) = exporter.get_finished_spans()
    assert released.context is not None
    assert headers["traceparent"].decode() == (
        f"00-{TRACE_ID}-{format_span_id(released.context.span_id)}-01"
    )
    assert released.parent is not None
    assert format_span_id(released.parent.span_id) == SPAN_ID


def _line(formatter: logging.Formatter) -> str:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", (), None)
    return formatter.format(record)


def test_log_lines_name_the_current_trace(traced: Tracing) -> None:
    json_form = JsonFormatter("dialer", "dialer-0")
    text_form = MaskingFormatter("%(message)s")
    assert "trace_id" not in orjson.loads(_line(json_form))
    assert "trace_id" not in _line(text_form)
    with traced.span("dial attempt") as span:
        trace_id = format_trace_id(span.get_span_context().trace_id)
        assert orjson.loads(_line(json_form))["trace_id"] == trace_id
        assert _line(text_form) == f"hello trace_id={trace_id}"
        # A trace id the log context names wins.
        with log_context(trace_id="given"):
            assert orjson.loads(_line(json_form))["trace_id"] == "given"


def test_log_lines_carry_no_trace_while_tracing_is_off() -> None:
    assert not tracing.enabled
    with tracing.continued(TRACEPARENT):
        # Off: nothing is attached, so nothing is named.
        assert tracing.current_trace_id() is None
        assert "trace_id" not in orjson.loads(_line(JsonFormatter("ingest", "ingest-0")))
