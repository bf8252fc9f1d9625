"""Redis state of agents, campaigns and webhooks, read and written through atomic steps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import cached_property
from typing import Any, Final, cast

import orjson
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from shared import keys
from shared.clock import to_iso, to_ms
from shared.models import Agent, Campaign, CampaignStatus, Webhook
from shared.store import lua
from shared.store.deliveries import DeliveryStore

_TRANSITION_CAMPAIGN: Final = lua.source(__package__, "transition_campaign.lua")
_UPDATE_RULES: Final = lua.source(__package__, "update_rules.lua")
_REPLACE_WEBHOOK: Final = lua.source(__package__, "replace_webhook.lua")
_ADD_WEBHOOK: Final = lua.source(__package__, "add_webhook.lua")

_NOT_RULES = {"id", "environment_id", "status", "created_at", "updated_at"}
_CAMPAIGN_CACHE_SIZE = 10_000
# Agents' prompts run to 32 KiB: fewer of them are kept.
_AGENT_CACHE_SIZE = 1_000
_WEBHOOK_CACHE_SIZE = 10_000


def _rules_json(campaign: Campaign) -> str:
    return campaign.model_dump_json(exclude=_NOT_RULES)


def _campaign_from_fields(fields: Mapping[str, str]) -> Campaign:
    rules: dict[str, Any] = orjson.loads(fields["rules"])
    return Campaign.model_validate(
        {
            **rules,
            "id": fields["id"],
            "environment_id": fields["environment_id"],
            "status": fields["status"],
            "created_at": fields["created_at"],
            "updated_at": fields["updated_at"],
        }
    )


class CatalogStore:
    """Agents, campaigns and webhooks: written by ingest, read by every service."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._transition = redis.register_script(_TRANSITION_CAMPAIGN)
        self._update_rules = redis.register_script(_UPDATE_RULES)
        self._campaigns: dict[str, tuple[tuple[str | None, ...], Campaign]] = {}
        self._agents: dict[str, tuple[str, Agent]] = {}
        self._webhooks: dict[str, tuple[str, Webhook]] = {}

    async def save_agent(self, agent: Agent) -> None:
        await asyncio.gather(
            self._redis.set(keys.agent(agent.id), agent.model_dump_json()),
            self._redis.zadd(
                keys.env_agents(agent.environment_id), {agent.id: to_ms(agent.created_at)}
            ),
        )

    async def get_agent(self, agent_id: str) -> Agent | None:
        raw = cast(str | None, await self._redis.get(keys.agent(agent_id)))
        if not raw:
            return None
        # Parsed again only when its stored form changed: the dialer reads it for every call.
        cached = self._agents.get(agent_id)
        if cached is not None and cached[0] == raw:
            return cached[1]
        agent = Agent.model_validate_json(raw)
        if len(self._agents) >= _AGENT_CACHE_SIZE:
            self._agents.pop(next(iter(self._agents)))
        self._agents[agent_id] = (raw, agent)
        return agent

    async def list_agent_ids(self, environment_id: str) -> list[str]:
        ids = cast(list[str], await self._redis.zrange(keys.env_agents(environment_id), 0, -1))
        return ids

    async def save_campaign(self, campaign: Campaign) -> None:
        fields = {
            "id": campaign.id,
            "environment_id": campaign.environment_id,
            "status": campaign.status.value,
            "rules": _rules_json(campaign),
            "created_at": to_iso(campaign.created_at),
            "updated_at": to_iso(campaign.updated_at),
        }
        await asyncio.gather(
            self._redis.hset(keys.campaign(campaign.id), mapping=cast(dict[Any, Any], fields)),
            self._redis.zadd(
                keys.env_campaigns(campaign.environment_id),
                {campaign.id: to_ms(campaign.created_at)},
            ),
        )

    async def get_campaign(self, campaign_id: str) -> Campaign | None:
        fields = cast(dict[str, str], await self._redis.hgetall(keys.campaign(campaign_id)))
        return self.parsed(fields) if fields else None

    def parsed(self, fields: dict[str, str]) -> Campaign:
        """Parses a stored campaign, reusing the last parse while its stored form is unchanged.

        Every request reads its campaign; validating the same rules again each time is the
        single largest cost of a call request after the Redis round trips themselves.
        """
        fingerprint = (fields.get("status"), fields.get("updated_at"), fields.get("rules"))
        cached = self._campaigns.get(fields.get("id", ""))
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        campaign = _campaign_from_fields(fields)
        if len(self._campaigns) >= _CAMPAIGN_CACHE_SIZE:
            self._campaigns.pop(next(iter(self._campaigns)))
        self._campaigns[campaign.id] = (fingerprint, campaign)
        return campaign

    async def get_campaigns(self, campaign_ids: list[str]) -> list[Campaign]:
        rows = cast(
            list[dict[str, str]],
            await asyncio.gather(*(self._redis.hgetall(keys.campaign(c)) for c in campaign_ids)),
        )
        return [self.parsed(row) for row in rows if row]

    async def get_agents(self, agent_ids: list[str]) -> list[Agent]:
        if not agent_ids:
            return []
        # Each agent has its own hash tag: one GET each, all in one round trip.
        raws = cast(
            list[str | None],
            await asyncio.gather(*(self._redis.get(keys.agent(a)) for a in agent_ids)),
        )
        return [Agent.model_validate_json(raw) for raw in raws if raw]

    async def update_rules(self, campaign: Campaign) -> bool:
        """Stores edited rules of a campaign that still exists; the status is left alone."""
        updated = await self._update_rules(
            keys=[keys.campaign(campaign.id)],
            args=[_rules_json(campaign), to_iso(campaign.updated_at)],
        )
        return bool(updated)

    async def delete_campaign(self, campaign: Campaign) -> None:
        """Deletes the campaign, then takes it out of its environment's index: two steps, as
        the two live under different hash tags. Should the second never happen, listings skip
        the id whose campaign is gone."""
        await self._redis.delete(keys.campaign(campaign.id), keys.campaign_webhooks(campaign.id))
        await self._redis.zrem(keys.env_campaigns(campaign.environment_id), campaign.id)

    async def list_campaign_ids(self, environment_id: str) -> list[str]:
        ids = cast(list[str], await self._redis.zrange(keys.env_campaigns(environment_id), 0, -1))
        return ids

    async def transition_campaign(
        self,
        campaign_id: str,
        to: CampaignStatus,
        allowed_from: Iterable[CampaignStatus],
        now: datetime,
    ) -> tuple[bool, str]:
        """Moves the status only from one of `allowed_from`; returns (moved, status before)."""
        moved, previous = await self._transition(
            keys=[keys.campaign(campaign_id)],
            args=[to.value, to_iso(now), *(s.value for s in allowed_from)],
        )
        return bool(moved), str(previous)

    async def save_webhook(self, webhook: Webhook) -> None:
        await self._redis.hset(
            keys.campaign_webhooks(webhook.campaign_id), webhook.id, webhook.model_dump_json()
        )

    async def add_webhook(self, webhook: Webhook, most: int) -> bool:
        """Stores a new webhook unless its campaign has `most` already; whether it was stored."""
        stored = await self._add_webhook(
            keys=[keys.campaign_webhooks(webhook.campaign_id)],
            args=[webhook.id, webhook.model_dump_json(), most],
        )
        return bool(stored)

    async def list_webhooks(self, campaign_id: str) -> list[Webhook]:
        raw = cast(dict[str, str], await self._redis.hgetall(keys.campaign_webhooks(campaign_id)))
        hooks = [self._webhook(webhook_id, value) for webhook_id, value in raw.items()]
        return sorted(hooks, key=lambda hook: hook.created_at)

    async def get_webhook(self, campaign_id: str, webhook_id: str) -> Webhook | None:
        raw = cast(
            str | None, await self._redis.hget(keys.campaign_webhooks(campaign_id), webhook_id)
        )
        return self._webhook(webhook_id, raw) if raw else None

    def _webhook(self, webhook_id: str, raw: str) -> Webhook:
        """The webhook stored as `raw`, parsed again only when its stored form changed: the
        notifier reads it for every delivery."""
        cached = self._webhooks.get(webhook_id)
        if cached is not None and cached[0] == raw:
            return cached[1]
        webhook = Webhook.model_validate_json(raw)
        if len(self._webhooks) >= _WEBHOOK_CACHE_SIZE:
            self._webhooks.pop(next(iter(self._webhooks)))
        self._webhooks[webhook_id] = (raw, webhook)
        return webhook

    async def update_webhook(
        self, campaign_id: str, webhook_id: str, change: Callable[[Webhook], Webhook]
    ) -> Webhook | None:
        """Applies `change` to the stored webhook with compare-and-set, re-reading and applying
        it again when another edit landed in between; None if the webhook is gone."""
        key = keys.campaign_webhooks(campaign_id)
        while True:
            raw = await self._redis.hget(key, webhook_id)
            if not raw:
                return None
            updated = change(Webhook.model_validate_json(raw))
            stored = await self._replace_webhook(
                keys=[key], args=[webhook_id, raw, updated.model_dump_json()]
            )
            if stored:
                return updated

    async def disable_webhook(
        self, campaign_id: str, webhook_id: str, reason: str
    ) -> Webhook | None:
        """Switches the webhook off with the reason it shows; one already off keeps its state
        and reason (its owner's choice or the first reason). None if the webhook is gone."""

        def change(current: Webhook) -> Webhook:
            if not current.enabled:
                return current
            return current.model_copy(update={"enabled": False, "disabled_reason": reason})

        return await self.update_webhook(campaign_id, webhook_id, change)

    async def delete_webhook(self, campaign_id: str, webhook_id: str) -> bool:
        removed = await self._redis.hdel(keys.campaign_webhooks(campaign_id), webhook_id)
        return bool(removed)

    @cached_property
    def _replace_webhook(self) -> AsyncScript:
        return self._redis.register_script(_REPLACE_WEBHOOK)

    @cached_property
    def _add_webhook(self) -> AsyncScript:
        return self._redis.register_script(_ADD_WEBHOOK)

    @cached_property
    def webhook_deliveries(self) -> DeliveryStore:
        """The webhooks' deliveries and attempts log, on the same connection pool."""
        return DeliveryStore(self._redis)
