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
_BEGIN_CAMPAIGN_DELETE: Final = lua.source(__package__, "begin_campaign_delete.lua")
# Keys deleted at once while the rest of a deleted campaign's keys are looked for by SCAN.
_SCAN_BATCH = 500

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
        self._begin_delete = redis.register_script(_BEGIN_CAMPAIGN_DELETE)
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
        created = to_ms(campaign.created_at)
        await asyncio.gather(
            self._redis.hset(keys.campaign(campaign.id), mapping=cast(dict[Any, Any], fields)),
            self._redis.zadd(keys.env_campaigns(campaign.environment_id), {campaign.id: created}),
            self._redis.zadd(
                keys.env_campaigns_by_status(campaign.environment_id, campaign.status.value),
                {campaign.id: created},
            ),
        )

    async def get_campaign(self, campaign_id: str) -> Campaign | None:
        """The campaign; None when there is none or it is being deleted."""
        fields = cast(dict[str, str], await self._redis.hgetall(keys.campaign(campaign_id)))
        return self.parsed(fields) if fields and "deleting" not in fields else None

    async def get_campaign_to_finish(self, campaign_id: str) -> tuple[Campaign | None, bool]:
        """The campaign as stored, even while it is being deleted, and whether it is."""
        fields = cast(dict[str, str], await self._redis.hgetall(keys.campaign(campaign_id)))
        if not fields:
            return None, False
        return self.parsed(fields), "deleting" in fields

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
        return [self.parsed(row) for row in rows if row and "deleting" not in row]

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

    async def begin_delete(self, campaign: Campaign, now: datetime) -> str:
        """Marks the campaign as being deleted (it reads as gone from then on) and takes it out
        of its environment's indexes: `deleting`, or why not: `gone`, `active`, `in_progress`.
        The caller has asked for its removal first (`request_finish`); the scheduler's
        finisher removes its calls and keys."""
        outcome = str(
            await self._begin_delete(
                keys=[
                    keys.campaign(campaign.id),
                    keys.calls_by_status(campaign.id, "in_progress"),
                ],
                args=[to_ms(now), to_iso(now)],
            )
        )
        if outcome == "deleting":
            await self.unlist_campaign(campaign.id, campaign.environment_id)
        return outcome

    async def unlist_campaign(self, campaign_id: str, environment_id: str) -> None:
        """Takes the campaign out of its environment's list and per-status lists."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrem(keys.env_campaigns(environment_id), campaign_id)
            for status in CampaignStatus:
                pipe.zrem(keys.env_campaigns_by_status(environment_id, status.value), campaign_id)
            await pipe.execute()

    async def delete_webhooks(self, campaign_id: str) -> None:
        """Deletes the campaign's webhooks with their logs and health, the logs first (they
        are found through the webhooks): from then on no event of the campaign is delivered."""
        webhooks = keys.campaign_webhooks(campaign_id)
        webhook_ids = cast(list[str], await self._redis.hkeys(webhooks))
        for webhook_id in webhook_ids:
            await self._redis.delete(
                keys.webhook_attempts(campaign_id, webhook_id),
                keys.webhook_failing(campaign_id, webhook_id),
            )
        await self._redis.delete(webhooks)

    async def delete_campaign_keys(self, campaign_id: str) -> int:
        """Deletes every key left under the campaign's hash tag but the campaign's own hash
        (deleted last, by `drop_campaign`), as SCAN finds them (deliveries, indexes,
        counters). Returns how many keys went."""
        deleted = 0
        keep = keys.campaign(campaign_id)
        batch: list[str] = []
        async for key in self._redis.scan_iter(
            match=keys.campaign_pattern(campaign_id), count=_SCAN_BATCH
        ):
            if key != keep:
                batch.append(key)
            if len(batch) >= _SCAN_BATCH:
                deleted += await self._delete_each(batch)
                batch = []
        if batch:
            deleted += await self._delete_each(batch)
        return deleted

    async def _delete_each(self, names: list[str]) -> int:
        # One DEL per key: every key is under one tag, but a cluster client routes a
        # multi-key DEL by its first key only when it can; singles always route.
        counts = await asyncio.gather(*(self._redis.unlink(name) for name in names))
        return sum(int(count) for count in counts)

    async def drop_campaign(self, campaign_id: str) -> None:
        """Deletes the campaign's hash: the last key of a deleted campaign."""
        await self._redis.delete(keys.campaign(campaign_id))

    async def request_finish(self, campaign_id: str, now: datetime) -> None:
        """Asks the scheduler's finisher to end the campaign's queued calls (and, once it is
        marked as being deleted, to remove its keys). Asking twice keeps the first time."""
        await self._redis.zadd(keys.campaigns_to_finish(), {campaign_id: to_ms(now)}, nx=True)

    async def campaigns_to_finish(self, limit: int) -> list[str]:
        """Campaigns waiting for the finisher, longest waiting first."""
        return cast(list[str], await self._redis.zrange(keys.campaigns_to_finish(), 0, limit - 1))

    async def finished(self, campaign_id: str) -> None:
        await self._redis.zrem(keys.campaigns_to_finish(), campaign_id)

    async def take_finish_lease(self, campaign_id: str, holder: str, lease_ms: int) -> bool:
        """The right to walk the campaign for `lease_ms`, unless another finisher holds it."""
        won = await self._redis.set(keys.finish_lease(campaign_id), holder, nx=True, px=lease_ms)
        return bool(won)

    async def renew_finish_lease(self, campaign_id: str, holder: str, lease_ms: int) -> bool:
        """Extends a lease `holder` still holds; False when it lapsed (another may walk)."""
        key = keys.finish_lease(campaign_id)
        if await self._redis.get(key) != holder:
            return False
        return bool(await self._redis.pexpire(key, lease_ms))

    async def release_finish_lease(self, campaign_id: str, holder: str) -> None:
        key = keys.finish_lease(campaign_id)
        if await self._redis.get(key) == holder:
            await self._redis.delete(key)

    async def page_of_campaigns(
        self, environment_id: str, status: CampaignStatus | None, start: int, count: int
    ) -> tuple[list[str], int]:
        """Campaign ids `start` to `start + count` (exclusive) of the environment, newest
        first (by creation time, then id), of one status or all; and how many there are."""
        index = (
            keys.env_campaigns_by_status(environment_id, status.value)
            if status
            else keys.env_campaigns(environment_id)
        )
        ids, total = await asyncio.gather(
            self._redis.zrevrange(index, start, start + count - 1), self._redis.zcard(index)
        )
        return cast(list[str], ids), int(total)

    async def fix_status_index(self, campaign: Campaign, listed_as: CampaignStatus) -> None:
        """Files a campaign found under another status than its own under its own (a status
        move whose index update never happened)."""
        env = campaign.environment_id
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.env_campaigns_by_status(env, listed_as.value), campaign.id)
            pipe.zadd(
                keys.env_campaigns_by_status(env, campaign.status.value),
                {campaign.id: to_ms(campaign.created_at)},
            )
            await pipe.execute()

    async def file_campaign_statuses(self, environment_id: str, chunk: int) -> list[str]:
        """Files every campaign of the environment's list under its status (the per-status
        lists), `chunk` at a time; returns their ids. Idempotent; for data written before the
        per-status lists existed."""
        index = keys.env_campaigns(environment_id)
        found: list[str] = []
        start = 0
        while True:
            rows = cast(
                list[tuple[str, float]],
                await self._redis.zrange(index, start, start + chunk - 1, withscores=True),
            )
            statuses = cast(
                list[str | None],
                await asyncio.gather(
                    *(self._redis.hget(keys.campaign(c), "status") for c, _ in rows)
                ),
            )
            async with self._redis.pipeline(transaction=False) as pipe:
                for (campaign_id, created), status in zip(rows, statuses, strict=True):
                    if status:
                        pipe.zadd(
                            keys.env_campaigns_by_status(environment_id, status),
                            {campaign_id: created},
                        )
                await pipe.execute()
            found.extend(campaign_id for campaign_id, _ in rows)
            if len(rows) < chunk:
                return found
            start += chunk

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
        reply = await self._transition(
            keys=[keys.campaign(campaign_id)],
            args=[to.value, to_iso(now), *(s.value for s in allowed_from)],
        )
        moved, previous = bool(reply[0]), str(reply[1])
        if moved:
            # The per-status list lives under the environment's tag: a second step. Should it
            # never happen, a status-filtered listing files the campaign again when it sees it.
            environment_id, created_at = str(reply[2]), str(reply[3])
            created = to_ms(datetime.fromisoformat(created_at))
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zrem(keys.env_campaigns_by_status(environment_id, previous), campaign_id)
                pipe.zadd(
                    keys.env_campaigns_by_status(environment_id, to.value), {campaign_id: created}
                )
                await pipe.execute()
        return moved, previous

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
