"""Webhooks: where a campaign's events are delivered, their deliveries log and redelivery."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
import uuid
from datetime import datetime
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
from shared import tracing
from shared.clock import to_iso
from shared.ids import new_id
from shared.models import Campaign, Webhook
from shared.rules.delivery_attempts import AttemptRecord, Trigger
from shared.rules.delivery_retries import DeliveryState, delivery_id_for
from shared.rules.input_bounds import MAX_WEBHOOKS_PER_CAMPAIGN
from shared.rules.webhook_payloads import (
    EVENT_NAMES,
    TEST_EVENT,
    TEST_WAIT_S,
    webhook_test_body,
)
from shared.rules.webhook_targets import is_refused_host
from shared.store.deliveries import DeliveryRef

_TOO_MANY_WEBHOOKS = (
    f"A campaign may have at most {MAX_WEBHOOKS_PER_CAMPAIGN} webhooks; delete one first."
)
_PRIVATE_TARGET = "The webhook url may not point at a private address."
# The answer leaves before TEST_WAIT_S is up.
_TEST_WAIT_MARGIN_S = 0.3
_TEST_NOT_YET = (
    "The notifier has not reported this attempt yet: it is queued or under way, and the "
    "deliveries log will show how it went."
)


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
    if not await runtime.catalog.add_webhook(webhook, MAX_WEBHOOKS_PER_CAMPAIGN):
        raise ApiError(409, _TOO_MANY_WEBHOOKS, "WEBHOOK_LIMIT_REACHED")
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
            # Why the notifier switched it off stays shown while it stays off.
            disabled_reason=None if body.enabled else current.disabled_reason,
        )

    updated = await runtime.catalog.update_webhook(campaign.id, webhook.id, change)
    if updated is None:
        raise not_found("webhook")
    if updated.enabled and not webhook.enabled:
        # Switched on again: its past run of failures no longer counts towards disabling it.
        await runtime.catalog.webhook_deliveries.healthy_again(campaign.id, webhook.id)
    return json_response({"success": True, "data": webhook_view(updated)})


async def toggle_webhook(request: web.Request) -> web.Response:
    runtime, campaign, webhook = await _webhook_of(request)
    updated = await runtime.catalog.update_webhook(
        campaign.id,
        webhook.id,
        # Either way the notifier's reason goes: enabled again, or disabled by the owner.
        lambda current: current.model_copy(
            update={"enabled": not current.enabled, "disabled_reason": None}
        ),
    )
    if updated is None:
        raise not_found("webhook")
    if updated.enabled:
        # Switched on again: its past run of failures no longer counts towards disabling it.
        await runtime.catalog.webhook_deliveries.healthy_again(campaign.id, webhook.id)
    return json_response({"success": True, "data": webhook_view(updated)})


async def delete_webhook(request: web.Request) -> web.Response:
    runtime, campaign, webhook = await _webhook_of(request)
    if not await runtime.catalog.delete_webhook(campaign.id, webhook.id):
        raise not_found("webhook")
    await runtime.catalog.webhook_deliveries.forget_webhook(campaign.id, webhook.id)
    return json_response({"success": True, "data": {"id": webhook.id, "deleted": True}})


async def send_test_event(request: web.Request) -> web.Response:
    """Queues a signed `webhook.test` event for the notifier and answers with how the attempt
    went, or, when the notifier has not reported it within TEST_WAIT_S, that it is still on
    its way (the deliveries log gets its result)."""
    runtime, _, webhook = await _webhook_of(request)
    store = runtime.catalog.webhook_deliveries
    waited_from = time.monotonic()
    event_id = str(uuid.uuid4())
    ref = DeliveryRef(webhook.campaign_id, webhook.id, delivery_id_for(webhook.id, event_id))
    now = runtime.clock.now()
    body = webhook_test_body(webhook, event_id, now)
    # Its attempt continues this request's trace.
    trace = tracing.current_stored() if runtime.tracing.on else None
    await store.begin(ref, event_id, TEST_EVENT, body, now, kind="test", trace=trace)
    await store.schedule(ref, now)
    deadline = waited_from + TEST_WAIT_S - _TEST_WAIT_MARGIN_S
    pause = 0.02
    while (entry := await store.last_attempt(ref)) is None:
        left = deadline - time.monotonic()
        if left <= 0:
            return json_response({"success": True, "data": _not_yet(ref, event_id, now)})
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, 0.25)
    return json_response({"success": True, "data": orjson.loads(entry)})


def _not_yet(ref: DeliveryRef, event_id: str, queued_at: datetime) -> dict[str, Any]:
    """The answer to a test whose result did not come in time: a log entry of the attempt as
    it stands, pending."""
    return AttemptRecord(
        delivery_id=ref.delivery_id,
        event_id=event_id,
        event_type=TEST_EVENT,
        attempt=1,
        trigger=Trigger.TEST,
        status_code=None,
        latency_ms=TEST_WAIT_S * 1000,
        error=_TEST_NOT_YET,
        attempted_at=queued_at,
        state=DeliveryState.PENDING,
    ).view()


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
    """Queues one more attempt of a stored delivery: the same body and webhook-id, a new
    signature. The notifier makes it; the deliveries log shows it."""
    runtime, _, webhook = await _webhook_of(request)
    delivery_id = request.match_info["delivery_id"]
    ref = DeliveryRef(webhook.campaign_id, webhook.id, delivery_id)
    store = runtime.catalog.webhook_deliveries
    now = runtime.clock.now()
    answer = await store.request_redelivery(ref, now)
    if answer == "missing":
        raise not_found("delivery")
    if answer == "busy":
        raise ApiError(409, "An attempt of this delivery is under way.", "DELIVERY_IN_PROGRESS")
    await store.schedule(ref, now)
    return json_response(
        {"success": True, "data": {"delivery_id": delivery_id, "state": "queued"}}, status=202
    )
