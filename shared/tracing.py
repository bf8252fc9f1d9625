"""Traces: OpenTelemetry spans along one call's path, from the API request to its webhooks.

The trace context (W3C `traceparent`, and `tracestate` if any) travels in the Kafka headers of
every message published for a call, and is stored with the call (a field of its hash) and with
each webhook delivery while they wait in Redis, so every service continues the same trace.

Tracing is off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
is set, or a test hands a service a tracer provider of its own. Off, nothing is made, stored or
propagated: the hot paths test the module's `enabled` flag, or their service's `Tracing.on`.
On, spans go to the OTLP/HTTP exporter, which follows the standard `OTEL_*` variables
(`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_TRACES_SAMPLER`, ...); `OTEL_SERVICE_NAME` names the
service (default: its own name)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

log = logging.getLogger(__name__)

# True while a service of this process traces: the one test the hot paths make when it is off.
enabled: bool = False
_tracing_services = 0

TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
_PROPAGATOR: Final = TraceContextTextMapPropagator()
_SCOPE: Final = "campaign-calls"
# The variables that name where spans go; without one of them tracing stays off.
ENDPOINT_VARIABLES: Final = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

# Span attributes of the services' spans.
CALL_ID: Final = "campaign_calls.call_id"
CAMPAIGN_ID: Final = "campaign_calls.campaign_id"
ATTEMPT: Final = "campaign_calls.attempt"
TOPIC: Final = "messaging.destination.name"

# Kafka headers as aiokafka takes and gives them.
Headers = list[tuple[str, bytes]]
Attributes = Mapping[str, AttributeValue]


def _opened() -> None:
    global enabled, _tracing_services
    _tracing_services += 1
    enabled = True


def _closed() -> None:
    global enabled, _tracing_services
    _tracing_services = max(0, _tracing_services - 1)
    enabled = _tracing_services > 0


def exporting(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for spans to be exported."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(env.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def exporting_provider(service: str, instance: str | None = None) -> TracerProvider:
    """A provider whose spans go, in batches, to the OTLP/HTTP endpoint the environment
    names; `OTEL_SERVICE_NAME` (else `service`) names the service."""
    # Imported only when asked for: the exporter pulls in protobuf and requests.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    attributes: dict[str, AttributeValue] = {}
    if not os.environ.get("OTEL_SERVICE_NAME", "").strip():
        attributes["service.name"] = service
    if instance:
        attributes["service.instance.id"] = instance
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


class Tracing:
    """One service's tracer: `on` when it has a provider. Every method is a cheap no-op when
    it is off, but the hot paths test `on` (or the module's `enabled`) before calling."""

    __slots__ = ("_owned", "_provider", "_tracer", "on")

    def __init__(self, provider: TracerProvider | None = None, *, owned: bool = False) -> None:
        self._provider = provider
        self._owned = owned and provider is not None
        self.on = provider is not None
        self._tracer: trace.Tracer = (
            provider.get_tracer(_SCOPE) if provider is not None else trace.NoOpTracer()
        )
        if self.on:
            _opened()

    @classmethod
    def for_service(
        cls, service: str, instance: str | None = None, provider: TracerProvider | None = None
    ) -> Tracing:
        """The service's tracing: with the provider given (a test's), else exporting if the
        environment names an OTLP endpoint, else off."""
        if provider is not None:
            return cls(provider)
        if exporting():
            log.info("tracing on: spans of %s go to the OTLP endpoint", service)
            return cls(exporting_provider(service, instance), owned=True)
        return cls()

    def close(self) -> None:
        """Flushes and stops a provider this service made; a test's is left to the test."""
        if not self.on:
            return
        self.on = False
        _closed()
        if self._owned and self._provider is not None:
            self._provider.shutdown()

    @contextlib.contextmanager
    def span(
        self,
        name: str,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        parent: Context | None = None,
        attributes: Attributes | None = None,
    ) -> Iterator[Span]:
        """A span, current inside the block; its parent is `parent` if given (an empty
        Context starts a new trace), else the current span. An exception leaving the block
        marks the span as failed."""
        with self._tracer.start_as_current_span(
            name, context=parent, kind=kind, attributes=attributes
        ) as current:
            yield current

    def start(
        self,
        name: str,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        parent: Context | None = None,
        attributes: Attributes | None = None,
    ) -> Span:
        """A span that is not made current: the caller ends it."""
        return self._tracer.start_span(name, context=parent, kind=kind, attributes=attributes)

    def consuming(
        self,
        name: str,
        headers: Sequence[tuple[str, bytes]] | None,
        attributes: Attributes | None = None,
    ) -> contextlib.AbstractContextManager[Span | None]:
        """A consumer span for a message, continuing the trace its headers carry (a message
        without one starts a new trace); nothing when tracing is off."""
        if not self.on:
            return contextlib.nullcontext()
        return self.span(
            name, kind=SpanKind.CONSUMER, parent=from_headers(headers), attributes=attributes
        )


# --- the context, in Kafka headers and stored in Redis -----------------------------------


def from_headers(headers: Sequence[tuple[str, bytes]] | None) -> Context:
    """The context Kafka headers carry; an empty one (a new trace) when they carry none."""
    carrier: dict[str, str] = {}
    for name, value in headers or ():
        if name in (TRACEPARENT, TRACESTATE) and value:
            carrier[name] = value.decode("latin-1")
    if not carrier:
        return Context()
    return _PROPAGATOR.extract(carrier, context=Context())


def from_http(headers: Mapping[str, str]) -> Context:
    """The context an HTTP request's `traceparent` (and `tracestate`) header carries; an empty
    one (a new trace) when it carries none, or one that is not valid."""
    carrier = {name: headers[name] for name in (TRACEPARENT, TRACESTATE) if name in headers}
    if not carrier:
        return Context()
    return _PROPAGATOR.extract(carrier, context=Context())


def _carrier(ctx: Context | None = None) -> dict[str, str]:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=ctx)
    return carrier


def current_headers() -> Headers | None:
    """Kafka headers carrying the current span's context; None without a valid span."""
    carrier = _carrier()
    if not carrier:
        return None
    return [(name, value.encode()) for name, value in carrier.items()]


def current_stored() -> str | None:
    """The current span's context as it is stored with a call or a delivery: the
    `traceparent`, then a space and the `tracestate` if there is one. None without a span."""
    return _stored(_carrier())


def stored_from_headers(headers: Sequence[tuple[str, bytes]] | None) -> str | None:
    """The context Kafka headers carry, in its stored form (validated); None if none."""
    ctx = from_headers(headers)
    return _stored(_carrier(ctx)) if ctx else None


def _stored(carrier: Mapping[str, str]) -> str | None:
    parent = carrier.get(TRACEPARENT)
    if not parent:
        return None
    state = carrier.get(TRACESTATE)
    return f"{parent} {state}" if state else parent


def from_stored(stored: str | None) -> Context:
    """The context stored with a call or a delivery; an empty one (a new trace) if none."""
    if not stored:
        return Context()
    parent, _, state = stored.partition(" ")
    carrier = {TRACEPARENT: parent}
    if state:
        carrier[TRACESTATE] = state
    return _PROPAGATOR.extract(carrier, context=Context())


def headers_from_stored(stored: str | None) -> Headers | None:
    """Kafka headers carrying a stored context; None if there is none."""
    if not stored:
        return None
    parent, _, state = stored.partition(" ")
    headers = [(TRACEPARENT, parent.encode())]
    if state:
        headers.append((TRACESTATE, state.encode()))
    return headers


def headers_of(span: Span) -> Headers:
    """Kafka headers carrying a span's context."""
    carrier = _carrier(trace.set_span_in_context(span, Context()))
    return [(name, value.encode()) for name, value in carrier.items()]


@contextlib.contextmanager
def continued(stored: str | None) -> Iterator[None]:
    """Makes a stored context current for the block, unless a span is current already (or
    tracing is off, or nothing was stored): what is published inside carries it."""
    if not enabled or not stored or trace.get_current_span().get_span_context().is_valid:
        yield
        return
    token = otel_context.attach(from_stored(stored))
    try:
        yield
    finally:
        otel_context.detach(token)


def current_trace_id() -> str | None:
    """The current span's trace id (32 hex digits), for log lines; None without one."""
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


def failed(span: Span, description: str) -> None:
    span.set_status(Status(StatusCode.ERROR, description))
