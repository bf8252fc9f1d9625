"""Composition root of the ingest service: the only place that creates clients."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from faststream.kafka import KafkaBroker
from redis.asyncio import Redis

from services.ingest import idempotency
from services.ingest.adapters.recent_campaigns import RecentCampaigns
from services.ingest.adapters.requests_kafka import CallRequestPublisher
from services.ingest.domain.errors import UNAUTHENTICATED_BODY, ApiError, Invalid
from services.ingest.domain.tokens import TokenRegistry
from services.ingest.handlers import agents, calls, campaigns, dnc, docs, webhooks
from services.ingest.handlers.common import json_response
from services.ingest.idempotency import IdempotencyStore
from services.ingest.keys import ENVIRONMENT, RUNTIME, Runtime
from services.ingest.openapi import DOCS_PATH, OPENAPI_PATH
from services.ingest.settings import IngestSettings
from shared.bus import BulkSender, create_broker
from shared.clock import Clock, SystemClock
from shared.dnc_redis import DncStore
from shared.phone import warm_up
from shared.state_redis import CallStore, CatalogStore, create_redis

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API = "/api/v1"


@dataclass(slots=True)
class Deps:
    """Clients a test may hand in instead of the real ones."""

    redis: Redis | None = None
    broker: KafkaBroker | None = None
    clock: Clock | None = None


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request's frame, in one layer: the token check and the Idempotency-Key extension
    for the API's paths, and the documented body for every error."""
    try:
        path = request.path
        if not path.startswith(API) or path == OPENAPI_PATH:
            return await handler(request)
        runtime = request.app[RUNTIME]
        environment = runtime.tokens.environment_for(request.headers.get("Authorization"))
        if environment is None:
            return json_response(UNAUTHENTICATED_BODY, status=401)
        request[ENVIRONMENT] = environment
        if idempotency.applies(request):
            return await idempotency.answer_once(request, handler)
        return await handler(request)
    except ApiError as exc:
        return json_response(exc.body(), status=exc.status)
    except Invalid as exc:
        return json_response(exc.body(), status=422)
    except web.HTTPRequestEntityTooLarge:
        return json_response(
            {"success": False, "message": "The request body is too large.", "code": "TOO_LARGE"},
            status=413,
        )
    except web.HTTPMethodNotAllowed as exc:
        response = json_response(
            {"success": False, "message": "Method not allowed.", "code": "METHOD_NOT_ALLOWED"},
            status=405,
        )
        response.headers["Allow"] = exc.headers["Allow"]
        return response
    except web.HTTPNotFound:
        return json_response(
            {"success": False, "message": "Not found.", "code": "NOT_FOUND"}, status=404
        )
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response(
            {"success": False, "message": "Internal server error.", "code": "INTERNAL_ERROR"},
            status=500,
        )


def create_app(settings: IngestSettings, deps: Deps | None = None) -> web.Application:
    deps = deps or Deps()
    app = web.Application(
        middlewares=[api_middleware],
        client_max_size=settings.max_body_bytes,
    )

    async def resources(app: web.Application) -> AsyncIterator[None]:
        warm_up()
        # What start-up made (phone metadata, compiled patterns) lives as long as the process:
        # the collector need not walk it again on every full collection.
        gc.collect()
        gc.freeze()
        redis = deps.redis or create_redis(settings.redis)
        broker = deps.broker or create_broker(settings.kafka, "ingest")
        await broker.start()
        sender = BulkSender(settings.kafka, "ingest")
        await sender.start()
        catalog = CatalogStore(redis)
        publisher = CallRequestPublisher(broker, sender, linger=settings.handoff_linger_ms / 1000)
        publisher.start()
        app[RUNTIME] = Runtime(
            catalog=catalog,
            calls=CallStore(redis, settings.due_shards),
            publisher=publisher,
            tokens=TokenRegistry.from_settings(settings.api_tokens, settings.dev_api_token),
            clock=deps.clock or SystemClock(),
            reservation_ttl_ms=settings.reservation_ttl_seconds * 1000,
            allow_private_webhook_targets=settings.allow_private_webhook_targets,
            dnc=DncStore(redis),
            idempotency=IdempotencyStore(redis),
            recent_campaigns=RecentCampaigns(catalog, settings.campaign_cache_seconds),
        )
        yield
        await publisher.stop()
        await sender.stop()
        await broker.stop()
        if deps.redis is None:
            await redis.aclose()

    app.cleanup_ctx.append(resources)
    # First: the router tries routes that share a prefix in the order they were added, and
    # this one takes nearly all the traffic.
    app.router.add_post(f"{API}/campaigns/{{campaign_id}}/call", calls.make_call)
    app.router.add_get("/healthz", calls.health)
    app.router.add_get(OPENAPI_PATH, docs.openapi_document)
    app.router.add_get(DOCS_PATH, docs.docs_page)
    app.router.add_post(f"{API}/agents", agents.create_agent)
    app.router.add_get(f"{API}/agents", agents.list_agents)
    app.router.add_get(f"{API}/agents/{{agent_id}}", agents.get_agent)
    app.router.add_post(f"{API}/campaigns", campaigns.create_campaign)
    app.router.add_get(f"{API}/campaigns", campaigns.list_campaigns)
    app.router.add_get(f"{API}/campaigns/{{campaign_id}}", campaigns.get_campaign)
    app.router.add_put(f"{API}/campaigns/{{campaign_id}}", campaigns.update_campaign)
    app.router.add_delete(f"{API}/campaigns/{{campaign_id}}", campaigns.delete_campaign)
    app.router.add_patch(
        f"{API}/campaigns/{{campaign_id}}/status", campaigns.change_campaign_status
    )
    app.router.add_post(f"{API}/campaigns/{{campaign_id}}/webhooks", webhooks.create_webhook)
    hooks = f"{API}/campaigns/{{campaign_id}}/webhooks"
    hook = f"{hooks}/{{webhook_id}}"
    app.router.add_get(hooks, webhooks.list_webhooks)
    app.router.add_get(hook, webhooks.get_webhook)
    app.router.add_put(hook, webhooks.update_webhook)
    app.router.add_delete(hook, webhooks.delete_webhook)
    app.router.add_patch(f"{hook}/toggle", webhooks.toggle_webhook)
    app.router.add_post(f"{hook}/test", webhooks.send_test_event)
    app.router.add_get(f"{hook}/deliveries", webhooks.list_deliveries)
    app.router.add_post(f"{hook}/deliveries/{{delivery_id}}/redeliver", webhooks.redeliver)
    app.router.add_post(f"{API}/campaigns/{{campaign_id}}/calls/batch", calls.make_calls)
    app.router.add_get(f"{API}/campaigns/{{campaign_id}}/calls", calls.list_calls)
    app.router.add_get(f"{API}/campaigns/{{campaign_id}}/calls/{{call_id}}", calls.get_call)
    app.router.add_post(f"{API}/dnc", dnc.add_numbers)
    app.router.add_get(f"{API}/dnc", dnc.get_entries)
    app.router.add_delete(f"{API}/dnc/{{number}}", dnc.remove_number)
    app.router.add_delete(f"{API}/campaigns/{{campaign_id}}/calls/{{call_id}}", calls.cancel_call)
    return app
