"""Every Redis key the system uses, built in one place.

Keys of one campaign share the hash tag `{<campaign_id>}` so a script touching a campaign's
calls runs on one slot; the due queue is sharded and each shard has its own tag.
"""

from __future__ import annotations

import zlib
from typing import Final

PREFIX: Final = "cc"


def agent(agent_id: str) -> str:
    return f"{PREFIX}:agent:{{{agent_id}}}"


def env_agents(environment_id: str) -> str:
    return f"{PREFIX}:env:{{{environment_id}}}:agents"


def env_campaigns(environment_id: str) -> str:
    return f"{PREFIX}:env:{{{environment_id}}}:campaigns"


def campaign(campaign_id: str) -> str:
    return f"{PREFIX}:{{{campaign_id}}}:campaign"


def campaign_webhooks(campaign_id: str) -> str:
    return f"{PREFIX}:{{{campaign_id}}}:webhooks"


def call(campaign_id: str, call_id: str) -> str:
    return f"{PREFIX}:{{{campaign_id}}}:call:{call_id}"


def campaign_calls(campaign_id: str) -> str:
    """Sorted set of the campaign's call ids by creation time (listing)."""
    return f"{PREFIX}:{{{campaign_id}}}:calls"


def active_number(campaign_id: str, e164: str) -> str:
    """The duplicate registry: the live call for one number in one campaign."""
    return f"{PREFIX}:{{{campaign_id}}}:active:{e164}"


def dial_claim(campaign_id: str, call_id: str, attempt: int) -> str:
    return f"{PREFIX}:{{{campaign_id}}}:claim:{call_id}:{attempt}"


def delivered(campaign_id: str, webhook_id: str, event_id: str) -> str:
    return f"{PREFIX}:{{{campaign_id}}}:delivered:{webhook_id}:{event_id}"


def due_shard_of(call_id: str, shards: int) -> int:
    return zlib.crc32(call_id.encode()) % shards


def due_queue(shard: int) -> str:
    """Sorted set of `campaign_id|call_id` members scored by due time in ms."""
    return f"{PREFIX}:{{due:{shard}}}:queue"


def due_inflight(shard: int) -> str:
    """Claimed but not yet handed to Kafka: scored by lease deadline in ms."""
    return f"{PREFIX}:{{due:{shard}}}:inflight"


def due_member(campaign_id: str, call_id: str) -> str:
    return f"{campaign_id}|{call_id}"


def split_due_member(member: str) -> tuple[str, str]:
    campaign_id, _, call_id = member.partition("|")
    return campaign_id, call_id
