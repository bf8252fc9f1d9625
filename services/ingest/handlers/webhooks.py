"""Webhooks: where a campaign's events are delivered."""

from __future__ import annotations

import base64
import ipaddress
import secrets
import uuid

from aiohttp import web
from yarl import URL

from services.ingest.domain.errors import Invalid
from services.ingest.domain.requests import (
    CreateWebhook,
)
from services.ingest.handlers.common import (
    campaign_in_env,
    json_response,
    parse,
    read_object,
    runtime_of,
)
from shared.models import Webhook
from shared.state_redis import to_iso


def _refuse_private_target(url: str, allowed: bool) -> None:
    host = (URL(url).host or "").strip("[]")
    if allowed:
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise Invalid({"webhook_url": ["The webhook url may not point at a private address."]})
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if address.is_private or address.is_loopback or address.is_link_local:
        raise Invalid({"webhook_url": ["The webhook url may not point at a private address."]})


async def create_webhook(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    campaign = await campaign_in_env(request)
    body = parse(CreateWebhook, await read_object(request))
    _refuse_private_target(str(body.webhook_url), runtime.allow_private_webhook_targets)
    generated = body.webhook_secret is None
    secret = body.webhook_secret or "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    webhook = Webhook(
        **body.model_dump(exclude={"webhook_secret"}),
        id=str(uuid.uuid4()),
        campaign_id=campaign.id,
        environment_id=campaign.environment_id,
        webhook_secret=secret,
        created_at=runtime.clock.now(),
    )
    await runtime.catalog.save_webhook(webhook)
    view = webhook.model_dump(mode="json", exclude={"environment_id", "webhook_secret"})
    view["created_at"] = to_iso(webhook.created_at)
    if generated:
        # Shown once: the customer needs it to verify signatures.
        view["webhook_secret"] = secret
    return json_response({"success": True, "data": view}, status=201)
