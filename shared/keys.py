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


def env_campaigns_pattern() -> str:
    """SCAN pattern of every environment's campaigns list (`env_campaigns`)."""
    return f"{PREFIX}:env:*:campaigns"


def environment_of(env_key: str) -> str:
    """The environment id of a key built by one of the `env_*` functions."""
    return env_key.partition("{")[2].partition("}")[0]


def env_campaigns_by_status(environment_id: str, status: str) -> str:
    """Sorted set of the environment's campaigns in one status, by creation time in ms."""
    return f"{PREFIX}:env:{{{environment_id}}}:campaigns:{status}"


def campaign(campaign_id: str) -> str:
    return f"{PREFIX}:{{{campaign_id}}}:campaign"


def campaign_webhooks(campaign_id: str) -> str:
    return f"{PREFIX}:{{{campaign_id}}}:webhooks"


def call(campaign_id: str, call_id: str) -> str:
    """Hash of one call's state in small fields, so a waiting call's hash stays a listpack."""
    return f"{PREFIX}:{{{campaign_id}}}:call:{call_id}"


def call_body(campaign_id: str, call_id: str) -> str:
    """The call's immutable `payload` and `context`, as one JSON array written at accept."""
    return f"{PREFIX}:{{{campaign_id}}}:body:{call_id}"


def campaign_calls(campaign_id: str) -> str:
    """Sorted set of every call id of the campaign, scored by creation time in µs (listing)."""
    return f"{PREFIX}:{{{campaign_id}}}:index:calls"


def legacy_campaign_calls(campaign_id: str) -> str:
    """The list of a campaign's call ids written before the sorted-set indexes existed; read
    once by the upgrade (`python -m services.scheduler.reindex`), then deleted."""
    return f"{PREFIX}:{{{campaign_id}}}:calls"


def calls_by_status_prefix(campaign_id: str) -> str:
    """What `calls_by_status` appends the status to; the scripts that move a call between
    statuses are given this and build the two keys themselves (same hash tag, same slot)."""
    return f"{PREFIX}:{{{campaign_id}}}:index:status:"


def calls_by_status(campaign_id: str, status: str) -> str:
    """Sorted set of the campaign's call ids in one status, scored by creation time in µs."""
    return calls_by_status_prefix(campaign_id) + status


def calls_by_number(campaign_id: str) -> str:
    """Sorted set of `<e164>|<call_id>` members, all scored 0: a number's calls are one
    lexicographic range."""
    return f"{PREFIX}:{{{campaign_id}}}:index:numbers"


def number_member(e164: str, call_id: str) -> str:
    return f"{e164}|{call_id}"


def split_number_member(member: str) -> tuple[str, str]:
    e164, _, call_id = member.partition("|")
    return e164, call_id


def ended_calls(campaign_id: str) -> str:
    """Sorted set of the campaign's ended calls (`number_member`) by when they ended (ms): the
    retention sweep removes each once it has been ended `CALL_RETENTION_SECONDS`."""
    return f"{PREFIX}:{{{campaign_id}}}:ended"


RETENTION_SHARDS: Final = 16


def retention_shard_of(campaign_id: str) -> int:
    return zlib.crc32(campaign_id.encode()) % RETENTION_SHARDS


def retention_campaigns(shard: int) -> str:
    """Sorted set of campaigns that have taken calls, scored by the earliest end time (ms) its
    `ended_calls` may hold: the sweep looks at a campaign once that is a retention period old."""
    return f"{PREFIX}:{{retention:{shard}}}:campaigns"


def campaigns_to_finish() -> str:
    """Sorted set of campaigns whose queued calls are to be cancelled (a campaign completed or
    cancelled) or whose keys are to be removed (a deleted campaign), by when it was asked (ms)."""
    return f"{PREFIX}:{{campaign-jobs}}:finish"


def finish_lease(campaign_id: str) -> str:
    """String: which finisher walks the campaign now (a lease, so one copy at a time)."""
    return f"{PREFIX}:{{{campaign_id}}}:finishing"


def calls_to_announce(campaign_id: str) -> str:
    """Set of call ids the finisher cancelled whose `cancelled` events are not yet published:
    a finisher that dies in between leaves them here for the next one."""
    return f"{PREFIX}:{{{campaign_id}}}:to-announce"


def campaign_pattern(campaign_id: str) -> str:
    """SCAN pattern of every key under the campaign's hash tag."""
    escaped = "".join(f"\\{c}" if c in "*?[]\\" else c for c in campaign_id)
    return f"{PREFIX}:{{{escaped}}}:*"


def campaign_stats(campaign_id: str) -> str:
    """Hash of call counts by status (test calls excluded), kept by the status scripts."""
    return f"{PREFIX}:{{{campaign_id}}}:stats"


def dial_slots(campaign_id: str) -> str:
    """Calls of the campaign holding a concurrency slot: `call_id:attempt` by lease deadline."""
    return f"{PREFIX}:{{{campaign_id}}}:slots"


def dial_rate(campaign_id: str) -> str:
    """Releases of the campaign in the last minute: `call_id:attempt` by release time."""
    return f"{PREFIX}:{{{campaign_id}}}:rate"


def handoffs(campaign_id: str) -> str:
    """Calls stored but not yet in the due queue, by when they were stored (ms): a call whose
    request never reached the scheduler is found here and queued by the scheduler itself."""
    return f"{PREFIX}:{{{campaign_id}}}:handoffs"


def campaigns_with_handoffs() -> str:
    """Campaigns that have taken calls, so the scheduler can find calls never handed on."""
    return f"{PREFIX}:handoff-campaigns"


def campaigns_with_slots() -> str:
    """Campaigns that may hold slots, so a sweeper can find slots whose dialer died."""
    return f"{PREFIX}:slot-campaigns"


def slot_member(call_id: str, attempt: int) -> str:
    return f"{call_id}:{attempt}"


def split_slot_member(member: str) -> tuple[str, int]:
    call_id, _, attempt = member.rpartition(":")
    return call_id, int(attempt)


def number_cooldown(environment_id: str, e164: str) -> str:
    """Until when (ms) no campaign of the environment may ring the number after a completed call."""
    return f"{PREFIX}:env:{{{environment_id}}}:cooldown:{e164}"


def active_numbers(campaign_id: str) -> str:
    """The duplicate registry: hash of E.164 -> the live call holding the number in the campaign.

    A value is `<call_id>|<deadline_ms>` while the reservation waits for the scheduler to queue
    the call (a passed deadline frees the number) and `<call_id>|` once it is confirmed."""
    return f"{PREFIX}:{{{campaign_id}}}:active"


def dial_claim(campaign_id: str, call_id: str, attempt: int) -> str:
    return f"{dial_claim_prefix(campaign_id)}{call_id}:{attempt}"


def dial_claim_prefix(campaign_id: str) -> str:
    """What a dial claim's key is made of before `<call_id>:<attempt>`."""
    return f"{PREFIX}:{{{campaign_id}}}:claim:"


def carrier_call(carrier: str, carrier_call_id: str) -> str:
    """Which attempt a carrier's call id belongs to: `campaign_id|call_id|attempt`."""
    return f"{PREFIX}:carrier:{{{carrier}:{carrier_call_id}}}"


AWAITING_SHARDS: Final = 16


def awaiting_shard_of(call_id: str) -> int:
    return zlib.crc32(call_id.encode()) % AWAITING_SHARDS


def awaiting_outcome(shard: int) -> str:
    """Attempts handed to a carrier whose outcome is not yet reported, by when to look at them
    next (ms): `campaign_id|call_id|attempt` members."""
    return f"{PREFIX}:{{awaiting:{shard}}}:calls"


def attempt_member(campaign_id: str, call_id: str, attempt: int) -> str:
    return f"{campaign_id}|{call_id}|{attempt}"


def split_attempt_member(member: str) -> tuple[str, str, int]:
    campaign_id, call_id, attempt = member.split("|")
    return campaign_id, call_id, int(attempt)


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


def dnc_list(environment_id: str, scope: str) -> str:
    """Hash of one do-not-call list (`environment` or `campaign:<id>`): E.164 -> entry JSON."""
    return f"{PREFIX}:env:{{{environment_id}}}:dnc:list:{scope}"


def dnc_scopes(environment_id: str) -> str:
    """Set of the scopes of the environment's do-not-call lists that hold entries."""
    return f"{PREFIX}:env:{{{environment_id}}}:dnc:scopes"


def idempotency(environment_id: str, scope: str) -> str:
    """One Idempotency-Key's entry; `scope` is a digest of the method, path and key."""
    return f"{PREFIX}:env:{{{environment_id}}}:idempotency:{scope}"


def api_rate(environment_id: str) -> str:
    """When the environment's API allowance is next wholly spent (GCRA's theoretical arrival
    time, microseconds of Redis's clock)."""
    return f"{PREFIX}:env:{{{environment_id}}}:api-rate"


def webhook_delivery(campaign_id: str, webhook_id: str, delivery_id: str) -> str:
    """Hash of one (webhook, event) delivery: its body, state and attempt count."""
    return f"{PREFIX}:{{{campaign_id}}}:delivery:{webhook_id}:{delivery_id}"


def webhook_attempts(campaign_id: str, webhook_id: str) -> str:
    """List of a webhook's delivery attempts as JSON, newest first, trimmed to a fixed length."""
    return f"{PREFIX}:{{{campaign_id}}}:attempts:{webhook_id}"


def webhook_failing(campaign_id: str, webhook_id: str) -> str:
    """String: since when (ms) every attempt to the webhook has failed; gone after a success."""
    return f"{PREFIX}:{{{campaign_id}}}:failing:{webhook_id}"


def webhook_retry_queue() -> str:
    """Sorted set of deliveries waiting for their next attempt (the first, a retry or a
    redelivery), scored by due time in ms."""
    return f"{PREFIX}:{{webhook-retries}}:queue"


def webhook_retry_inflight() -> str:
    """Queued deliveries a notifier claimed, scored by lease deadline in ms."""
    return f"{PREFIX}:{{webhook-retries}}:inflight"


def webhook_retry_member(campaign_id: str, webhook_id: str, delivery_id: str) -> str:
    return f"{campaign_id}|{webhook_id}|{delivery_id}"


def split_webhook_retry_member(member: str) -> tuple[str, str, str]:
    campaign_id, _, rest = member.partition("|")
    webhook_id, _, delivery_id = rest.partition("|")
    return campaign_id, webhook_id, delivery_id
