"""Composition root of the ingest service: the only place that creates clients."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from time import perf_counter_ns

from aiohttp import web
from faststream.kafka import KafkaBroker
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from services.ingest import idempotency
from services.ingest.adapters.agent_prompts import AgentPrompts
from services.ingest.adapters.rate_limits import ApiAllowances
from services.ingest.adapters.recent_campaigns import RecentCampaigns
from services.ingest.adapters.requests_kafka import CallRequestPublisher
from services.ingest.domain.errors import UNAUTHENTICATED_BODY, ApiError, Invalid
from services.ingest.domain.rate_limits import batch_cost, rate_limited, retry_after_seconds
from services.ingest.domain.tokens import TokenRegistry
from services.ingest.handlers import agents, calls, campaigns, dnc, docs, webhooks
from services.ingest.handlers.common import json_response
from services.ingest.idempotency import IdempotencyStore
from services.ingest.keys import ENVIRONMENT, RUNTIME, Runtime
from services.ingest.metrics import IngestMetrics, RouteMeter
from services.ingest.openapi import DOCS_PATH, OPENAPI_PATH
from services.ingest.settings import IngestSettings
from shared import tracing
from shared.bus import BulkSender, create_broker
from shared.calls.accept import AcceptCall
from shared.clock import Clock, SystemClock
from shared.observability import FIELDS
from shared.ops_http import Ops, broker_check, redis_check
from shared.phone import warm_up
from shared.redis_client import create_redis
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.store.dnc import DncStore

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API = "/api/v1"


@dataclass(slots=True)
class Deps:
    """Clients a test may hand in instead of the real ones."""

    redis: Redis | None = None
    broker: KafkaBroker | None = None
    clock: Clock | None = None
    # The API's spans go to this provider instead of the one the environment asks for.
    tracer_provider: TracerProvider | None = None


_TOO_LARGE = {"success": False, "message": "The request body is too large.", "code": "TOO_LARGE"}
_NOT_ALLOWED = {"success": False, "message": "Method not allowed.", "code": "METHOD_NOT_ALLOWED"}
_NOT_FOUND = {"success": False, "message": "Not found.", "code": "NOT_FOUND"}
_INTERNAL = {"success": False, "message": "Internal server error.", "code": "INTERNAL_ERROR"}
_BODY_TIMEOUT = {
    "success": False,
    "message": "The request body took too long to arrive.",
    "code": "REQUEST_TIMEOUT",
}


def _error_response(request: web.Request, exc: Exception) -> web.Response:
    """The documented body for an error a handler raised; an HTTP error of aiohttp's own that
    has none is raised again."""
    if isinstance(exc, ApiError):
        return json_response(exc.body(), status=exc.status)
    if isinstance(exc, Invalid):
        return json_response(exc.body(), status=422)
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return json_response(_TOO_LARGE, status=413)
    if isinstance(exc, web.HTTPMethodNotAllowed):
        response = json_response(_NOT_ALLOWED, status=405)
        response.headers["Allow"] = exc.headers["Allow"]
        return response
    if isinstance(exc, web.HTTPNotFound):
        return json_response(_NOT_FOUND, status=404)
    if isinstance(exc, web.HTTPException):
        raise exc
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else request.path
    log.error(
        "unhandled error on %s %s",
        request.method,
        route,
        exc_info=exc,
        extra={FIELDS: {"campaign_id": request.match_info.get("campaign_id")}},
    )
    return json_response(_INTERNAL, status=500)


def public_route(handler: Handler) -> Handler:
    """A route anyone may call (health, the API's document): errors get the documented body.
    Each request is counted and timed (the API's request metrics) in the same frame."""
    meter: RouteMeter | None = None  # the route's counts: a frame serves one route of one app

    async def framed(request: web.Request) -> web.StreamResponse:
        nonlocal meter
        started = perf_counter_ns()
        response: web.StreamResponse | None = None
        try:
            try:
                return (response := await handler(request))
            except Exception as exc:
                return (response := _error_response(request, exc))
        finally:
            status = response.status if response is not None else _status_of(sys.exc_info()[1])
            if meter is None:
                meter = request.app[RUNTIME].metrics.meter_of(request)
            meter.observe(request.method, status, started)

    return framed


def api_route(
    handler: Handler, idempotent: bool = True, cost: Callable[[bytes], int] | None = None
) -> Handler:
    """An API route: the token check, the body's time limit, the environment's rate limit,
    the Idempotency-Key extension (for a POST) and the documented error bodies, in one frame
    around the handler. `cost` says what a request counts for against the rate limit, from
    its body (one, without it).

    The rate limit comes before anything is stored (the Idempotency-Key's claim included), so
    a refused request leaves no trace. Routes are framed one by one rather than by middleware:
    a middleware would add two coroutine layers to every request, a measurable share of the
    call path's cost.

    Each request is counted and timed (the API's request metrics) in the frame itself, the
    hot path's cheapest place, into the counts of its route, found on its first request."""
    meter: RouteMeter | None = None  # the route's counts: a frame serves one route of one app

    async def framed(request: web.Request) -> web.StreamResponse:
        nonlocal meter
        if tracing.enabled and _TRACED not in request:
            return await _traced(request, framed)
        started = perf_counter_ns()
        response: web.StreamResponse | None = None
        runtime = request.app[RUNTIME]
        try:
            environment = runtime.tokens.environment_for(request.headers.get("Authorization"))
            if environment is None:
                return (response := json_response(UNAUTHENTICATED_BODY, status=401))
            request[ENVIRONMENT] = environment
            if request.body_exists and not request.content.is_eof():
                try:
                    async with asyncio.timeout(runtime.body_timeout):
                        await request.read()  # kept: the handler reads the same bytes
                except TimeoutError:
                    return (response := _body_timed_out())
            allowances = runtime.allowances
            if allowances is not None:
                units = 1 if cost is None else cost(await request.read())
                wait_ms = await allowances.take(environment, units)
                if wait_ms:
                    return (response := _too_many_requests(wait_ms))
            if idempotent and idempotency.applies(request):
                return (response := await idempotency.answer_once(request, handler))
            return (response := await handler(request))
        except Exception as exc:
            return (response := _error_response(request, exc))
        finally:
            status = response.status if response is not None else _status_of(sys.exc_info()[1])
            if meter is None:
                meter = runtime.metrics.meter_of(request)
            meter.observe(request.method, status, started)

    return framed


# Set on a request once its server span is open, so the frame runs once inside it.
_TRACED: web.RequestKey[bool] = web.RequestKey("traced", bool)


async def _traced(request: web.Request, framed: Handler) -> web.StreamResponse:
    """An API request in a server span (when the API traces), continuing the trace of a
    `traceparent` header the client sent. Only when tracing is on: the frame stays as cheap
    as it was otherwise."""
    request[_TRACED] = True
    traced = request.app[RUNTIME].tracing
    if not traced.on:
        return await framed(request)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else request.path
    with traced.span(
        f"{request.method} {route}",
        kind=SpanKind.SERVER,
        parent=tracing.from_http(request.headers),
        attributes={"http.request.method": request.method, "http.route": route},
    ) as span:
        response = await framed(request)
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            tracing.failed(span, str(response.status))
        return response


def _status_of(exc: BaseException | None) -> int:
    """The status an exception leaving a route's frame is answered with."""
    return exc.status if isinstance(exc, web.HTTPException) else 500


def _too_many_requests(wait_ms: int) -> web.Response:
    error = rate_limited()
    response = json_response(error.body(), status=error.status)
    response.headers["Retry-After"] = str(retry_after_seconds(wait_ms))
    return response


def _body_timed_out() -> web.Response:
    response = json_response(_BODY_TIMEOUT, status=408)
    response.force_close()  # what is left of the body would be read as the next request
    return response


def _batch_cost(body: bytes) -> int:
    return batch_cost(body, calls.MAX_BATCH)


async def _no_route(request: web.Request) -> web.StreamResponse:
    """What no route takes: 405 if a route has the path (with the methods it takes), else
    404."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not request.match_info.route.resource:
            allowed |= (await resource.resolve(request))[1]
    raise web.HTTPMethodNotAllowed(request.method, allowed) if allowed else web.HTTPNotFound()


def _unrouted() -> Handler:
    """What the catch-all route answers, counted once under its template, by the API's frame
    or the public one."""
    # A request no route takes ran nothing: there is no answer to keep for its Idempotency-Key.
    no_api_route = api_route(_no_route, idempotent=False)
    no_public_route = public_route(_no_route)

    async def unrouted(request: web.Request) -> web.StreamResponse:
        # Under the API's path, a request without a valid token learns nothing of its routes.
        if request.path.startswith(API) and request.path != OPENAPI_PATH:
            return await no_api_route(request)
        return await no_public_route(request)

    return unrouted


def create_app(settings: IngestSettings, deps: Deps | None = None) -> web.Application:
    deps = deps or Deps()
    app = web.Application(client_max_size=settings.max_body_bytes)
    registry = CollectorRegistry()
    # Each route's frame counts what it answers, a rate limit's refusals too.
    metrics = IngestMetrics(registry)
    ops = Ops(registry)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        warm_up()
        traced = tracing.Tracing.for_service("ingest", settings.log.instance, deps.tracer_provider)
        redis = deps.redis or create_redis(settings.redis)
        broker = deps.broker or create_broker(settings.kafka, "ingest")
        await broker.start()
        ops.checks.update(redis=redis_check(redis), kafka=broker_check(broker))
        sender = BulkSender(settings.kafka, "ingest")
        await sender.start()
        catalog = CatalogStore(redis)
        publisher = CallRequestPublisher(broker, sender, linger=settings.handoff_linger_ms / 1000)
        publisher.start()
        calls = CallStore(redis, settings.due_shards, settings.retention.call_retention_ms)
        clock = deps.clock or SystemClock()
        dnc = DncStore(redis)
        recent_campaigns = RecentCampaigns(catalog, settings.campaign_cache_seconds)
        app[RUNTIME] = Runtime(
            catalog=catalog,
            calls=calls,
            publisher=publisher,
            tokens=TokenRegistry.from_settings(settings.api_tokens, settings.dev_api_token),
            clock=clock,
            allow_private_webhook_targets=settings.allow_private_webhook_targets,
            dnc=dnc,
            idempotency=IdempotencyStore(redis),
            recent_campaigns=recent_campaigns,
            agent_prompts=AgentPrompts(catalog),
            accept_call=AcceptCall(
                calls, dnc, recent_campaigns, clock, settings.reservation_ttl_seconds * 1000
            ),
            allowances=(
                ApiAllowances(redis, settings.rate_limit_per_second)
                if settings.rate_limit_per_second
                else None
            ),
            body_timeout=settings.body_timeout_seconds,
            metrics=metrics,
            tracing=traced,
        )
        yield
        metrics.access.flush()
        await asyncio.to_thread(traced.close)
        await publisher.stop()
        await sender.stop()
        await broker.stop()
        if deps.redis is None:
            await redis.aclose()

    app.cleanup_ctx.append(resources)
    # First: the router tries routes that share a prefix in the order they were added, and
    # this one takes nearly all the traffic.
    app.router.add_post(f"{API}/campaigns/{{campaign_id}}/call", api_route(calls.make_call))
    app.router.add_get("/healthz", public_route(calls.health))
    ops.add_routes(app, healthz=False)
    app.router.add_get(OPENAPI_PATH, public_route(docs.openapi_document))
    app.router.add_get(DOCS_PATH, public_route(docs.docs_page))
    app.router.add_post(f"{API}/agents", api_route(agents.create_agent))
    app.router.add_get(f"{API}/agents", api_route(agents.list_agents))
    app.router.add_get(f"{API}/agents/{{agent_id}}", api_route(agents.get_agent))
    app.router.add_post(f"{API}/campaigns", api_route(campaigns.create_campaign))
    app.router.add_get(f"{API}/campaigns", api_route(campaigns.list_campaigns))
    app.router.add_get(f"{API}/campaigns/{{campaign_id}}", api_route(campaigns.get_campaign))
    app.router.add_put(f"{API}/campaigns/{{campaign_id}}", api_route(campaigns.update_campaign))
    app.router.add_delete(f"{API}/campaigns/{{campaign_id}}", api_route(campaigns.delete_campaign))
    app.router.add_patch(
        f"{API}/campaigns/{{campaign_id}}/status", api_route(campaigns.change_campaign_status)
    )
    app.router.add_post(
        f"{API}/campaigns/{{campaign_id}}/webhooks", api_route(webhooks.create_webhook)
    )
    hooks = f"{API}/campaigns/{{campaign_id}}/webhooks"
    hook = f"{hooks}/{{webhook_id}}"
    app.router.add_get(hooks, api_route(webhooks.list_webhooks))
    app.router.add_get(hook, api_route(webhooks.get_webhook))
    app.router.add_put(hook, api_route(webhooks.update_webhook))
    app.router.add_delete(hook, api_route(webhooks.delete_webhook))
    app.router.add_patch(f"{hook}/toggle", api_route(webhooks.toggle_webhook))
    app.router.add_post(f"{hook}/test", api_route(webhooks.send_test_event))
    app.router.add_get(f"{hook}/deliveries", api_route(webhooks.list_deliveries))
    app.router.add_post(
        f"{hook}/deliveries/{{delivery_id}}/redeliver", api_route(webhooks.redeliver)
    )
    app.router.add_post(
        f"{API}/campaigns/{{campaign_id}}/calls/batch",
        api_route(calls.make_calls, cost=_batch_cost),
    )
    app.router.add_get(f"{API}/campaigns/{{campaign_id}}/calls", api_route(calls.list_calls))
    app.router.add_get(
        f"{API}/campaigns/{{campaign_id}}/calls/{{call_id}}", api_route(calls.get_call)
    )
    app.router.add_post(f"{API}/dnc", api_route(dnc.add_numbers))
    app.router.add_get(f"{API}/dnc", api_route(dnc.get_entries))
    app.router.add_delete(f"{API}/dnc/{{number}}", api_route(dnc.remove_number))
    app.router.add_delete(
        f"{API}/campaigns/{{campaign_id}}/calls/{{call_id}}", api_route(calls.cancel_call)
    )
    # Last: it takes only what no route above does.
    app.router.add_route("*", "/{path:.*}", _unrouted())
    return app
