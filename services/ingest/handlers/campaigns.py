"""Campaigns: create, read and move through their statuses."""

from __future__ import annotations

import uuid

from aiohttp import web

from services.ingest.domain.errors import ApiError, Invalid, not_found
from services.ingest.domain.requests import (
    ChangeCampaignStatus,
    CreateCampaign,
)
from services.ingest.handlers.common import (
    campaign_in_env,
    campaign_view,
    json_response,
    parse,
    read_object,
    runtime_of,
)
from services.ingest.keys import ENVIRONMENT
from services.scheduler.domain.campaign_status import allowed_sources
from shared.models import Campaign, CampaignStatus


async def create_campaign(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    body = parse(CreateCampaign, await read_object(request))
    agent = await runtime.catalog.get_agent(body.agent_id)
    if agent is None or agent.environment_id != request[ENVIRONMENT]:
        raise Invalid({"agent_id": ["The selected agent id is invalid."]})
    now = runtime.clock.now()
    campaign = Campaign(
        **body.model_dump(),
        id=str(uuid.uuid4()),
        environment_id=request[ENVIRONMENT],
        status=CampaignStatus.DRAFT,
        created_at=now,
        updated_at=now,
    )
    await runtime.catalog.save_campaign(campaign)
    return json_response({"success": True, "data": campaign_view(campaign, agent)}, status=201)


async def get_campaign(request: web.Request) -> web.Response:
    campaign = await campaign_in_env(request)
    agent = await runtime_of(request).catalog.get_agent(campaign.agent_id)
    return json_response({"success": True, "data": campaign_view(campaign, agent)})


async def change_campaign_status(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    campaign = await campaign_in_env(request)
    body = parse(ChangeCampaignStatus, await read_object(request))
    moved, previous = await runtime.catalog.transition_campaign(
        campaign.id, body.status, allowed_sources(body.status), runtime.clock.now()
    )
    if not moved:
        raise ApiError(
            400,
            f"A campaign cannot move from {previous} to {body.status.value}.",
            "INVALID_TRANSITION",
        )
    updated = await runtime.catalog.get_campaign(campaign.id)
    if updated is None:
        raise not_found("campaign")
    agent = await runtime.catalog.get_agent(updated.agent_id)
    return json_response({"success": True, "data": campaign_view(updated, agent)})
