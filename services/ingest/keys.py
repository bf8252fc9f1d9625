"""Typed keys for what the ingest app and its requests carry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from services.ingest.adapters.agent_prompts import AgentPrompts
from services.ingest.adapters.rate_limits import ApiAllowances
from services.ingest.adapters.recent_campaigns import RecentCampaigns
from services.ingest.adapters.requests_kafka import CallRequestPublisher
from services.ingest.domain.tokens import TokenRegistry
from services.ingest.metrics import IngestMetrics
from shared.calls.accept import AcceptCall
from shared.clock import Clock
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.store.dnc import DncStore
from shared.tracing import Tracing

if TYPE_CHECKING:
    # The Idempotency-Key module reads this module's keys; import its store for typing only.
    from services.ingest.idempotency import IdempotencyStore


@dataclass(slots=True)
class Runtime:
    """Everything the handlers use, built once by the composition root."""

    catalog: CatalogStore
    calls: CallStore
    publisher: CallRequestPublisher
    tokens: TokenRegistry
    clock: Clock
    allow_private_webhook_targets: bool
    dnc: DncStore
    idempotency: IdempotencyStore
    recent_campaigns: RecentCampaigns
    agent_prompts: AgentPrompts
    accept_call: AcceptCall
    metrics: IngestMetrics
    # Each environment's request allowance; None when the rate limit is off.
    allowances: ApiAllowances | None = None
    # How long an authenticated request's body may take to arrive.
    body_timeout: float = 30.0
    # The API's spans (off unless an OTLP endpoint is configured).
    tracing: Tracing = field(default_factory=Tracing)


RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)
# The environment the bearer token belongs to, set by each API route's token check
# (`app.api_route`).
ENVIRONMENT: web.RequestKey[str] = web.RequestKey("environment_id", str)
