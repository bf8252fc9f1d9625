"""Campaigns: create, read, list, edit, delete and move through their statuses."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from services.ingest.domain.campaign_status import allowed_sources, lifecycle_event
from services.ingest.domain.errors import ApiError, Invalid, not_found, validation_errors
from services.ingest.domain.pagination import PageRequest
from services.ingest.domain.query import (
    MAX_ID_LENGTH,
    MAX_SEARCH_LENGTH,
    choice_filter,
    text_filter,
)
from services.ingest.domain.requests import CampaignBody, ChangeCampaignStatus, CreateCampaign
from services.ingest.domain.stats import campaign_stats
from services.ingest.handlers.common import (
    campaign_in_env,
    campaign_view,
    json_response,
    parse,
    read_object,
    runtime_of,
)
from services.ingest.keys import ENVIRONMENT, Runtime
from shared.events import campaign_event
from shared.ids import new_id
from shared.models import Agent, Campaign, CampaignStatus, CampaignType
from shared.observability import FIELDS
from shared.rules.policy import CLOSED_STATUSES

log = logging.getLogger(__name__)


async def _agent_in_env(runtime: Runtime, agent_id: str, environment_id: str) -> Agent:
    agent = await runtime.catalog.get_agent(agent_id)
    if agent is None or agent.environment_id != environment_id:
        raise Invalid({"agent_id": ["The selected agent id is invalid."]})
    return agent


async def _full_view(runtime: Runtime, campaign: Campaign) -> dict[str, Any]:
    agent = await runtime.catalog.get_agent(campaign.agent_id)
    view = campaign_view(campaign, agent)
    view["stats"] = campaign_stats(await runtime.calls.stats(campaign.id))
    return view


async def create_campaign(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    body = parse(CreateCampaign, await read_object(request))
    await _agent_in_env(runtime, body.agent_id, request[ENVIRONMENT])
    now = runtime.clock.now()
    campaign = Campaign(
        **body.model_dump(),
        id=new_id(),
        environment_id=request[ENVIRONMENT],
        status=CampaignStatus.DRAFT,
        created_at=now,
        updated_at=now,
    )
    await runtime.catalog.save_campaign(campaign)
    return json_response({"success": True, "data": await _full_view(runtime, campaign)}, 201)


async def get_campaign(request: web.Request) -> web.Response:
    campaign = await campaign_in_env(request)
    return json_response({"success": True, "data": await _full_view(runtime_of(request), campaign)})


# Campaigns read at once while a filter other than `status` walks the environment's list.
_WALK_CHUNK = 200


async def list_campaigns(request: web.Request) -> web.Response:
    """Newest first (by creation time). Unfiltered or filtered by `status`, a page reads its
    own campaigns only (the environment's list or per-status list); `campaign_type`,
    `agent_id` and `search` are matched over that list a chunk at a time."""
    runtime = runtime_of(request)
    page = PageRequest.from_query(request.query)
    environment_id = request[ENVIRONMENT]
    filters = {
        "status": choice_filter(request.query, "status", CampaignStatus),
        "campaign_type": choice_filter(request.query, "campaign_type", CampaignType),
        "agent_id": text_filter(request.query, "agent_id", MAX_ID_LENGTH),
    }
    wanted = {name: value for name, value in filters.items() if value is not None}
    status = CampaignStatus(wanted.pop("status")) if "status" in wanted else None
    search = (text_filter(request.query, "search", MAX_SEARCH_LENGTH) or "").casefold()
    chosen: Sequence[Campaign]
    if not wanted and not search:
        ids, total = await runtime.catalog.page_of_campaigns(
            environment_id, status, page.start, page.per_page
        )
        chosen = await _in_status(runtime, await runtime.catalog.get_campaigns(ids), status)
        envelope = page.envelope(total, len(chosen))
    else:
        matching: list[Campaign] = []
        start = 0
        while True:
            ids, _ = await runtime.catalog.page_of_campaigns(
                environment_id, status, start, _WALK_CHUNK
            )
            campaigns = await _in_status(runtime, await runtime.catalog.get_campaigns(ids), status)
            matching.extend(
                c
                for c in campaigns
                if all(str(getattr(c, name)) == value for name, value in wanted.items())
                and (
                    not search
                    or search in c.name.casefold()
                    or search in (c.description or "").casefold()
                )
            )
            if len(ids) < _WALK_CHUNK:
                break
            start += _WALK_CHUNK
        chosen, envelope = page.slice(matching)
    agents = {
        a.id: a for a in await runtime.catalog.get_agents(sorted({c.agent_id for c in chosen}))
    }
    data = []
    for campaign in chosen:
        view = campaign_view(campaign, agents.get(campaign.agent_id))
        view["stats"] = campaign_stats(await runtime.calls.stats(campaign.id))
        data.append(view)
    return json_response({"success": True, "data": data, "pagination": envelope})


async def _in_status(
    runtime: Runtime, campaigns: list[Campaign], status: CampaignStatus | None
) -> list[Campaign]:
    """The campaigns that are in `status`; one listed there but no longer in it (its move's
    second step never happened) is filed under its own status and left out."""
    if status is None:
        return campaigns
    for campaign in campaigns:
        if campaign.status is not status:
            await runtime.catalog.fix_status_index(campaign, status)
    return [campaign for campaign in campaigns if campaign.status is status]


async def update_campaign(request: web.Request) -> web.Response:
    """A partial update: the fields sent replace the stored ones, then every rule is checked."""
    runtime = runtime_of(request)
    campaign = await campaign_in_env(request)
    changes = await read_object(request)
    if campaign.status in CLOSED_STATUSES:
        raise ApiError(
            409, "A completed or cancelled campaign cannot be edited.", "CAMPAIGN_CLOSED"
        )
    current = campaign.model_dump(
        exclude={"id", "environment_id", "status", "created_at", "updated_at"}
    )
    known = {name: value for name, value in changes.items() if name in CampaignBody.model_fields}
    try:
        rules = CampaignBody.model_validate({**current, **known})
    except ValidationError as exc:
        raise Invalid(validation_errors(exc)) from exc
    if rules.agent_id != campaign.agent_id:
        await _agent_in_env(runtime, rules.agent_id, campaign.environment_id)
    updated = Campaign(
        **rules.model_dump(),
        id=campaign.id,
        environment_id=campaign.environment_id,
        status=campaign.status,
        created_at=campaign.created_at,
        updated_at=runtime.clock.now(),
    )
    updated_ok = await runtime.catalog.update_rules(updated)
    runtime.recent_campaigns.forget(campaign.id)
    if not updated_ok:
        raise not_found("campaign")
    stored = await runtime.catalog.get_campaign(campaign.id)
    if stored is None:
        raise not_found("campaign")
    return json_response({"success": True, "data": await _full_view(runtime, stored)})


def _active() -> ApiError:
    return ApiError(403, "An active campaign cannot be deleted; pause it first.", "CAMPAIGN_ACTIVE")


async def delete_campaign(request: web.Request) -> web.Response:
    """Answers at once: the campaign reads as gone from then on, and the scheduler's finisher
    cancels its queued calls (with their events) and removes every key of it. Asked again
    while that runs, the answer is the same and the removal is asked for again."""
    runtime = runtime_of(request)
    campaign_id = request.match_info["campaign_id"]
    campaign, deleting = await runtime.catalog.get_campaign_to_finish(campaign_id)
    if campaign is None or campaign.environment_id != request[ENVIRONMENT]:
        raise not_found("campaign")
    now = runtime.clock.now()
    if not deleting:
        if campaign.status is CampaignStatus.ACTIVE:
            raise _active()
        outcome = await runtime.catalog.begin_delete(campaign, now)
        runtime.recent_campaigns.forget(campaign.id)
        if outcome == "active":
            raise _active()
        if outcome == "in_progress":
            raise ApiError(409, "The campaign has calls in progress.", "CALLS_IN_PROGRESS")
        if outcome == "gone":
            raise not_found("campaign")
    # After the mark: a finisher that looked before it would find nothing to do.
    await runtime.catalog.request_finish(campaign.id, now)
    return json_response({"success": True, "data": {"id": campaign.id, "deleted": True}})


async def change_campaign_status(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    campaign = await campaign_in_env(request)
    body = parse(ChangeCampaignStatus, await read_object(request))
    now = runtime.clock.now()
    moved, previous = await runtime.catalog.transition_campaign(
        campaign.id, body.status, allowed_sources(body.status), now
    )
    runtime.recent_campaigns.forget(campaign.id)
    if not moved:
        raise ApiError(
            400,
            f"A campaign cannot move from {previous} to {body.status.value}.",
            "INVALID_TRANSITION",
        )
    if body.status in CLOSED_STATUSES:
        # A finished campaign dials nothing more: the scheduler's finisher cancels what still
        # waits, in the background. Asked after the move, so the finisher sees it; should this
        # step never happen, the due pump cancels each queued call as it comes due.
        await runtime.catalog.request_finish(campaign.id, now)
    await _tell_move(runtime, campaign, CampaignStatus(previous), body.status, now)
    updated = await runtime.catalog.get_campaign(campaign.id)
    if updated is None:
        raise not_found("campaign")
    return json_response({"success": True, "data": await _full_view(runtime, updated)})


async def _tell_move(
    runtime: Runtime,
    campaign: Campaign,
    previous: CampaignStatus,
    current: CampaignStatus,
    at: datetime,
) -> None:
    """Publishes the move's `campaign.*` event for the webhooks. The move is made already, so
    a broker that refuses the event costs the event (logged), not the answer."""
    event_type = lifecycle_event(previous, current)
    if event_type is None:
        return
    event = campaign_event(
        event_type, campaign.id, campaign.environment_id, previous.value, current.value, at
    )
    try:
        await runtime.publisher.publish_campaign_event(event)
    except Exception:
        log.exception(
            "could not publish %s of campaign %s",
            event_type.value,
            campaign.id,
            extra={FIELDS: {"campaign_id": campaign.id}},
        )
