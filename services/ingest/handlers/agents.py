"""Agents: the voice and prompt a campaign calls with."""

from __future__ import annotations

from aiohttp import web

from services.ingest.domain.errors import not_found
from services.ingest.domain.pagination import PageRequest
from services.ingest.domain.requests import (
    CreateAgent,
)
from services.ingest.handlers.common import (
    agent_view,
    json_response,
    parse,
    read_object,
    runtime_of,
)
from services.ingest.keys import ENVIRONMENT
from shared.ids import new_id
from shared.models import Agent


async def create_agent(request: web.Request) -> web.Response:
    body = parse(CreateAgent, await read_object(request))
    agent = Agent(
        id=new_id(),
        environment_id=request[ENVIRONMENT],
        created_at=runtime_of(request).clock.now(),
        **body.model_dump(),
    )
    await runtime_of(request).catalog.save_agent(agent)
    return json_response({"success": True, "data": agent_view(agent)}, status=201)


async def get_agent(request: web.Request) -> web.Response:
    agent = await runtime_of(request).catalog.get_agent(request.match_info["agent_id"])
    if agent is None or agent.environment_id != request[ENVIRONMENT]:
        raise not_found("agent")
    return json_response({"success": True, "data": agent_view(agent)})


async def list_agents(request: web.Request) -> web.Response:
    runtime = runtime_of(request)
    page = PageRequest.from_query(request.query)
    ids = list(reversed(await runtime.catalog.list_agent_ids(request[ENVIRONMENT])))
    chosen, envelope = page.slice(ids)
    agents = await runtime.catalog.get_agents(list(chosen))
    return json_response(
        {"success": True, "data": [agent_view(a) for a in agents], "pagination": envelope}
    )
