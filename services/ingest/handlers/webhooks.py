"""Webhooks: where a campaign's events are delivered, their deliveries log and redelivery."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import orjson
from aiohttp import web
from pydantic import field_validator
from yarl import URL

from services.ingest.domain.credentials import keep_unchanged_credentials, masked_view
from services.ingest.domain.errors import ApiError, Invalid, not_found
from services.ingest.domain.pagination import PageRequest
from services.ingest.domain.requests import CreateWebhook
from services.ingest.handlers.common import (
    campaign_in_env,
    json_response,
    parse,
    read_object,
    runtime_of,
)
from services.ingest.keys import Runtime
from shared.clock import to_iso
from shared.ids import new_id
from shared.models import Campaign, Webhook
from shared.rules.webhook_payloads import EVENT_NAMES
from shared.rules.webhook_targets import is_refused_host
from shared.webhooks.dispatch import DeliveryBusy, DeliveryNotFound, Dispatcher
from shared.webhooks.webhook_http import HttpWebhookSender

_PRIVATE_TARGET = "The webhook url may not point at a private address."


class WebhookBody(CreateWebhook):
    """The create body, with `events` held to the documented names."""

    @field_validator("events")
    @classmethod
    def _known_events(cls, events: list[str]) -> list[str]:
        unknown = [name for name in events if name not in EVENT_NAMES]
        if unknown:
            raise ValueError(
                f"may only hold these events: {', '.join(EVENT_NAMES)} "
                f"(unknown: {', '.join(unknown)})"
            )
        return events


def _refuse_private_target(url: str, allowed: bool) -> None:
    """The check at save time, on what the URL says; the notifier checks the resolved address
    again at each send."""
    if allowed:
        return
    if is_refused_host(URL(url).host or ""):
        raise Invalid({"webhook_url": [_PRIVATE_TARGET]})


def webhook_view(webhook: Webhook) -> dict[str, Any]:
    """A webhook as the API shows it: each credential as a masked hint, never its value."""
    view = webhook.model_dump(
        mode="json",
        exclude={"environment_id", "webhook_secret", "authorization_value", "custom_headers"},
    )
    view["created_at"] = to_iso(webhook.created_at)
    return masked_view(webhook, view)


async def _webhook_of(request: web.Request) -> tuple[Runtime, Campaign, Webhook]:
    """The campaign (of this environment) and its webhook named in the path, or a 404."""
    runtime = runtime_of(request)
    campaign = await campaign_in_env(request)
    webhook = await runtime.catalog.get_webhook(campaign.id, request.match_info["webhook_id"])
    if webhook is None or webhook.environment_id != campaign.environment_id:
        raise not_found("webhook")
    return runtime, campaign, webhook


async def create_webhook(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    campaign = await campaign_in_env(request)
    body = parse(WebhookBody, await read_object(request))
    _refuse_private_target(str(body.webhook_url), runtime.allow_private_webhook_targets)
    generated = body.webhook_secret is None
    secret = body.webhook_secret or "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    webhook = Webhook(
        **body.model_dump(exclude={"webhook_secret"}),
        id=new_id(),
        campaign_id=campaign.id,
        environment_id=campaign.environment_id,
        webhook_secret=secret,
        created_at=runtime.clock.now(),
    )
    await runtime.catalog.save_webhook(webhook)
    view = webhook_view(webhook)
    if generated:
        # Shown once, in full: the customer needs it to verify signatures. A secret the
        # customer sent is theirs already, and shown masked like every other credential.
        view["webhook_secret"] = secret
    return json_response({"success": True, "data": view}, status=201)


async def list_webhooks(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    campaign = await campaign_in_env(request)
    page = PageRequest.from_query(request.query)
    webhooks = await runtime.catalog.list_webhooks(campaign.id)
    chosen, envelope = page.slice(webhooks)
    data = [webhook_view(webhook) for webhook in chosen]
    return json_response({"success": True, "data": data, "pagination": envelope})


async def get_webhook(request: web.Request) -> web.Response:
    _, _, webhook = await _webhook_of(request)
    return json_response({"success": True, "data": webhook_view(webhook)})


async def update_webhook(request: web.Request) -> web.Response:
    """A partial update: the fields sent replace the stored ones, then every rule is checked.

    A credential sent back as the hint reads show (a client writing back what it read) keeps
    the stored value; a custom header is matched to the stored one by name."""
    runtime, campaign, webhook = await _webhook_of(request)
    changes = await read_object(request)
    known = {name: value for name, value in changes.items() if name in WebhookBody.model_fields}
    if known.get("webhook_secret") is None:
        # Left out or null: the secret stays as it is (it is never shown again).
        known.pop("webhook_secret", None)

    def change(current: Webhook) -> Webhook:
        stored = current.model_dump(
            mode="json", include=set(WebhookBody.model_fields) - {"webhook_secret"}
        )
        sent = keep_unchanged_credentials(known, current)
        body = parse(WebhookBody, {**stored, **sent})
        if "webhook_url" in known:
            _refuse_private_target(str(body.webhook_url), runtime.allow_private_webhook_targets)
        return Webhook(
            **body.model_dump(exclude={"webhook_secret"}),
            id=current.id,
            campaign_id=current.campaign_id,
            environment_id=current.environment_id,
            webhook_secret=body.webhook_secret or current.webhook_secret,
            created_at=current.created_at,
        )

    updated = await runtime.catalog.update_webhook(campaign.id, webhook.id, change)
    if updated is None:
        raise not_found("webhook")
    return json_response({"success": True, "data": webhook_view(updated)})


async def toggle_webhook(request: web.Request) -> web.Response:
    runtime, campaign, webhook = await _webhook_of(request)
    updated = await runtime.catalog.update_webhook(
        campaign.id,
        webhook.id,
        lambda current: current.model_copy(update={"enabled": not current.enabled}),
    )
    if updated is None:
        raise not_found("webhook")
    return json_response({"success": True, "data": webhook_view(updated)})


async def delete_webhook(request: web.Request) -> web.Response:
    runtime, campaign, webhook = await _webhook_of(request)
    if not await runtime.catalog.delete_webhook(campaign.id, webhook.id):
        raise not_found("webhook")
    await runtime.catalog.webhook_deliveries.forget_webhook(campaign.id, webhook.id)
    return json_response({"success": True, "data": {"id": webhook.id, "deleted": True}})


async def send_test_event(request: web.Request) -> web.Response:
    """Sends a signed `webhook.test` event now and answers with how the attempt went."""
    runtime, _, webhook = await _webhook_of(request)
    # A pool of its own per request: tests are rare, and the API holds no HTTP client.
    async with HttpWebhookSender(1, runtime.allow_private_webhook_targets) as sender:
        dispatcher = Dispatcher(
            runtime.catalog.webhook_deliveries, runtime.catalog, sender, runtime.clock
        )
        record = await dispatcher.send_test(webhook)
    return json_response({"success": True, "data": record.view()})


async def list_deliveries(request: web.Request) -> web.Response:
    """The webhook's delivery attempts, newest first."""
    runtime, campaign, webhook = await _webhook_of(request)
    page = PageRequest.from_query(request.query)
    store = runtime.catalog.webhook_deliveries
    total = await store.attempt_count(campaign.id, webhook.id)
    chosen, envelope = page.slice(range(total))
    entries = await store.attempts(campaign.id, webhook.id, chosen[0] if chosen else 0, len(chosen))
    data = [orjson.loads(entry) for entry in entries]
    return json_response({"success": True, "data": data, "pagination": envelope})


async def redeliver(request: web.Request) -> web.Response:
    """Sends a stored delivery again: the same body and webhook-id, a new signature."""
    runtime, _, webhook = await _webhook_of(request)
    async with HttpWebhookSender(1, runtime.allow_private_webhook_targets) as sender:
        dispatcher = Dispatcher(
            runtime.catalog.webhook_deliveries, runtime.catalog, sender, runtime.clock
        )
        try:
            record = await dispatcher.redeliver(webhook, request.match_info["delivery_id"])
        except DeliveryNotFound:
            raise not_found("delivery") from None
        except DeliveryBusy:
            raise ApiError(
                409, "An attempt of this delivery is under way.", "DELIVERY_IN_PROGRESS"
            ) from None
    return json_response({"success": True, "data": record.view()})
