"""Due-call release: with N calls due in Redis, how fast one scheduler process hands them to
Kafka, and the Redis memory each scheduled call takes; against a raw aiokafka producer
publishing N messages of the same size with acks=all (the ceiling) in the same run.

Target: at least 20,000 releases/s (5,000 at first) and under 1 KiB of Redis per scheduled call.
Printed, never asserted.

No dialer runs, so every released call keeps its campaign concurrency slot: a campaign releases
at most `max_concurrent_calls` (≤ 10,000) calls. The calls are spread over enough campaigns
(default 20 × 5,000) that this cap never binds.

The agent, campaigns and calls get ids from `shared.ids.new_id` (22 characters), or uuid4s (36)
with `--ids uuid4`: ids are a fair part of a call's memory, being in its key names, its due
entry, the duplicate registry and the listing.

With `--outcomes`, once every call is released, the same scheduler is then sent one
`internal.attempt_ended` (`completed`) per call on `campaign-calls.events`, published at once
by a raw producer, and the bench follows the campaigns' `completed` counts until every outcome
is applied: the scheduler's outcome consumer (read the call and campaign, free the slot,
`apply_outcome.lua`, publish the `completed` event, commit).

With `--requests`, nothing is released: the calls are stored as ingest stores them (accepted,
not queued, due in an hour so the pump leaves them alone), one accepted `CallRequested` per call
(the bytes and key ingest publishes) is put on `campaign-calls.requested` before the scheduler
starts, and the bench follows the due queue until every call is in it: the scheduler's request
consumer (read the call and campaign, enqueue it, publish the `queued` event, commit). Printed
with the scheduler's CPU seconds per request, the figure that holds on a shared machine.

python -m bench scheduler_release [--calls 100000] [--campaigns 20] [--ids short|uuid4]
    [--outcomes | --requests]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import uvloop
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from bench.figures import CpuUse, CpuWindow, load_line, process_cpu_seconds, table
from bench.loadgen import CONTEXT, PAYLOAD, number_at
from bench.profiling import finish_profile, start_profile, stop_profile
from bench.servers import (
    Servers,
    Started,
    read_topic,
    service_env,
    start_servers,
    start_service,
    started_processes,
)
from shared import keys
from shared.events import CallEventType, accepted_request, call_due, call_event
from shared.ids import new_id
from shared.models import Agent, Call, Campaign, CampaignStatus
from shared.redis_client import create_redis
from shared.settings import RedisSettings
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.topics import CALLS_DUE, CALLS_EVENTS, CALLS_REQUESTED, call_key, requested_key
from tests.support import ALWAYS_OPEN

DESCRIPTION = "releases/s of one scheduler with N calls due, vs a raw aiokafka producer"
ENVIRONMENT = "bench"
CEILING_TOPIC = "bench.ceiling"
MAX_CONCURRENT = 10_000  # the model's maximum
PER_MINUTE = 100_000  # the model's maximum
DUE_SHARDS = 16
TARGET_RATE = 20_000.0
# The profile runs as long as a release at this rate would take: slower than any release.
PROFILE_RATE = 2_000.0
TARGET_BYTES = 1024.0
RESERVATION_TTL_MS = 3_600_000
LISTPACK_VALUE = "hash-max-listpack-value"


def _uuid4() -> str:
    return str(uuid.uuid4())


# short: shared.ids.new_id, 22 characters; uuid4: 36 characters, for comparison.
ID_MAKERS: dict[str, Callable[[], str]] = {"uuid4": _uuid4, "short": new_id}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench scheduler_release",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--campaigns", type=int, default=20)
    parser.add_argument("--pump-interval-ms", type=int, default=10)
    parser.add_argument("--claim-batch", type=int, default=None, help="SCHEDULER_CLAIM_BATCH")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up releasing after")
    parser.add_argument("--seed-processes", type=int, default=2)
    parser.add_argument("--seed-concurrency", type=int, default=64, help="per seeding process")
    parser.add_argument(
        "--ids",
        choices=sorted(ID_MAKERS),
        default="short",
        help="how the seeded agent, campaigns and calls get their ids (default: short)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the scheduler while it releases (and while it applies outcomes)",
    )
    parser.add_argument(
        "--outcomes",
        action="store_true",
        help="then send an attempt_ended per call and measure how fast the outcomes are applied",
    )
    parser.add_argument(
        "--requests",
        action="store_true",
        help="instead of releasing: publish an accepted request per stored call and measure "
        "how fast (and at what CPU per request) the scheduler queues them",
    )
    return parser.parse_args(argv)


# --- seeding ----------------------------------------------------------------------------------


async def _used_memory(redis: Redis) -> int:
    info = await redis.info("memory")
    return int(info["used_memory"])


@dataclass(frozen=True)
class Campaigns:
    agent_id: str
    ids: list[str]
    created_at: datetime
    id_kind: str  # a key of ID_MAKERS, for the calls' ids too


async def _create_campaigns(redis_url: str, count: int, id_kind: str) -> Campaigns:
    """An agent and `count` active, always-open campaigns whose limits are at their maxima."""
    make_id = ID_MAKERS[id_kind]
    redis = create_redis(RedisSettings(url=redis_url))
    try:
        catalog = CatalogStore(redis)
        now = datetime.now(UTC)
        agent = Agent(
            id=make_id(),
            environment_id=ENVIRONMENT,
            name="Bench",
            prompt="Hello",
            created_at=now,
        )
        await catalog.save_agent(agent)
        ids = [make_id() for _ in range(count)]
        for number, campaign_id in enumerate(ids):
            await catalog.save_campaign(
                Campaign.model_validate(
                    {
                        **ALWAYS_OPEN,
                        "name": f"Bench {number}",
                        "agent_id": agent.id,
                        "max_concurrent_calls": MAX_CONCURRENT,
                        "calls_per_minute": PER_MINUTE,
                        "recipient_local_hours": None,
                        "id": campaign_id,
                        "environment_id": ENVIRONMENT,
                        "status": CampaignStatus.ACTIVE,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            )
        return Campaigns(agent.id, ids, now, id_kind)
    finally:
        await redis.aclose()


def _call_at(index: int, campaigns: Campaigns) -> Call:
    """The index-th call: due a second before the campaigns were made, so due at once."""
    return Call(
        id=ID_MAKERS[campaigns.id_kind](),
        campaign_id=campaigns.ids[index % len(campaigns.ids)],
        environment_id=ENVIRONMENT,
        to=number_at(index),
        payload=PAYLOAD,
        context=CONTEXT,
        attempt=1,
        scheduled_at=campaigns.created_at - timedelta(seconds=1),
        scheduling_reason="immediate",
        created_at=campaigns.created_at,
        updated_at=campaigns.created_at,
    )


async def _seed_range(
    redis_url: str, campaigns: Campaigns, indices: range, concurrency: int, queue: bool
) -> int:
    """Stores the calls of `indices` through CallStore.accept + enqueue, as the scheduler's
    request consumer does (without `queue`: accept only, as ingest does, the calls due in an
    hour); returns how many were accepted."""
    redis = create_redis(RedisSettings(url=redis_url, max_connections=concurrency))
    store = CallStore(redis, DUE_SHARDS)
    todo = iter(indices)
    accepted = 0

    async def worker() -> None:
        nonlocal accepted
        for index in todo:  # one iterator shared by every worker
            call = _call_at(index, campaigns)
            if not queue:
                call = call.model_copy(
                    update={"scheduled_at": call.created_at + timedelta(hours=1)}
                )
            result = await store.accept(call, RESERVATION_TTL_MS)
            if result.outcome == "accepted":
                accepted += 1
                if queue:
                    await store.enqueue(call, campaigns.created_at)

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await redis.aclose()
    return accepted


def _seed_part(
    redis_url: str, campaigns: Campaigns, indices: range, concurrency: int, queue: bool
) -> int:
    """One seeding process's share (run in a worker process)."""
    return uvloop.run(_seed_range(redis_url, campaigns, indices, concurrency, queue))


def _seed(
    redis_url: str,
    campaigns: Campaigns,
    calls: int,
    processes: int,
    concurrency: int,
    queue: bool = True,
) -> int:
    """Seeds `calls` calls from `processes` processes at once (seeding is not measured)."""
    step = -(-calls // processes)
    parts = [range(start, min(calls, start + step)) for start in range(0, calls, step)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=len(parts), mp_context=context) as pool:
        futures = [
            pool.submit(_seed_part, redis_url, campaigns, part, concurrency, queue)
            for part in parts
        ]
        return sum(future.result() for future in futures)


@dataclass(frozen=True)
class Memory:
    before: int
    after: int
    breakdown: dict[str, float]  # bytes per call by structure (MEMORY USAGE)
    encodings: dict[str, str]  # OBJECT ENCODING of the call hash, body and registry
    sample: Call
    sample_fields: int
    sample_bytes: int
    body_bytes: int
    listpack_value_limit: int  # Redis's hash-max-listpack-value
    too_long: dict[str, int]  # fields longer than it, which would make the hash a hashtable


async def _used_memory_of(redis_url: str) -> int:
    redis = Redis.from_url(redis_url)
    try:
        return await _used_memory(redis)
    finally:
        await redis.aclose()


async def _memory(redis_url: str, campaign_ids: list[str], calls: int, before: int) -> Memory:
    redis = create_redis(RedisSettings(url=redis_url))
    try:
        after = await _used_memory(redis)
        store = CallStore(redis, DUE_SHARDS)
        first = cast(list[str], await redis.zrange(keys.campaign_calls(campaign_ids[0]), 0, 0))
        sample = await store.get(campaign_ids[0], first[0])
        assert sample is not None
        breakdown = await _breakdown(redis, store, campaign_ids, calls)
        key = keys.call(campaign_ids[0], first[0])
        encodings = {
            "call hash": str(await redis.object("encoding", key)),
            "body": str(await redis.object("encoding", keys.call_body(campaign_ids[0], first[0]))),
            "registry": str(await redis.object("encoding", keys.active_numbers(campaign_ids[0]))),
            "listing": str(await redis.object("encoding", keys.campaign_calls(campaign_ids[0]))),
        }
        fields = cast(dict[str, str], await redis.hgetall(key))
        raw = sum(len(k.encode()) + len(v.encode()) for k, v in fields.items())
        body = await redis.get(keys.call_body(campaign_ids[0], first[0]))
        limit = int(cast(dict[str, str], await redis.config_get(LISTPACK_VALUE))[LISTPACK_VALUE])
        too_long = {k: len(v.encode()) for k, v in fields.items() if len(v.encode()) > limit}
        return Memory(
            before,
            after,
            breakdown,
            encodings,
            sample,
            len(fields),
            raw,
            len(str(body or "").encode()),
            limit,
            too_long,
        )
    finally:
        await redis.aclose()


async def _mean_usage(redis: Redis, names: list[str]) -> float:
    sizes = [await redis.memory_usage(name, samples=0) for name in names]
    return sum(size or 0 for size in sizes) / max(1, len(sizes))


async def _breakdown(
    redis: Redis, store: CallStore, campaign_ids: list[str], calls: int
) -> dict[str, float]:
    """Bytes per call of each structure a scheduled call adds, from MEMORY USAGE: the call's
    own keys measured on a sample, the shared structures (the campaigns' registries and
    listings, the due shards) divided by the number of calls."""
    sample_ids = cast(list[str], await redis.zrange(keys.campaign_calls(campaign_ids[0]), 0, 99))
    hashes = await _mean_usage(redis, [keys.call(campaign_ids[0], i) for i in sample_ids])
    bodies = await _mean_usage(redis, [keys.call_body(campaign_ids[0], i) for i in sample_ids])
    registries = await _mean_usage(redis, [keys.active_numbers(c) for c in campaign_ids])
    listings = await _mean_usage(redis, [keys.campaign_calls(c) for c in campaign_ids])
    queues = await _mean_usage(redis, [keys.due_queue(s) for s in range(DUE_SHARDS)])
    # The key space itself (a dict entry per key) is what used_memory adds beyond these.
    return {
        "call hash": hashes,
        "body key": bodies,
        "registry entry": registries * len(campaign_ids) / calls,
        "listing entry": listings * len(campaign_ids) / calls,
        "due entry": queues * DUE_SHARDS / calls,
    }


# --- the ceiling ------------------------------------------------------------------------------


def _due_message(call: Call) -> bytes:
    now = datetime.now(UTC)
    return call_due(call, call.scheduled_at, now).model_dump_json().encode()


async def _ceiling(kafka: str, sample: Call, messages: int) -> float:
    """Seconds a raw aiokafka producer (acks=all, linger 0) takes to publish `messages`."""
    value = _due_message(sample)
    message_keys = [call_key(str(uuid.uuid4())) for _ in range(messages)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all", linger_ms=0)
    await producer.start()
    try:
        await producer.send_and_wait(CEILING_TOPIC, value, key=message_keys[0])
        began = time.monotonic()
        pending: list[asyncio.Future[Any]] = []
        for key in message_keys:
            pending.append(await producer.send(CEILING_TOPIC, value, key=key))
            if len(pending) >= 5_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return time.monotonic() - began
    finally:
        await producer.stop()


# --- releasing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Released:
    total: int
    started_to_first: float  # process start to the first release
    first_to_last: float
    started_to_last: float
    rate: float  # from the first sample that saw a release to the last
    steady_rate: float  # between 10% and 90% of the calls
    samples: list[tuple[float, int]]
    cpu: CpuUse | None
    profile: str
    scheduler_pid: int


def _crossing(samples: list[tuple[float, int]], count: float) -> float:
    """When the released count first reached `count`, interpolated between samples."""
    previous = samples[0]
    for sample in samples:
        if sample[1] >= count:
            t0, c0 = previous
            t1, c1 = sample
            return t1 if c1 == c0 else t0 + (t1 - t0) * (count - c0) / (c1 - c0)
        previous = sample
    return samples[-1][0]


async def _unreleased(redis: Redis) -> int:
    """Calls still in the due queue or claimed but not yet acknowledged by the broker."""
    async with redis.pipeline(transaction=False) as pipe:
        for shard in range(DUE_SHARDS):
            pipe.zcard(keys.due_queue(shard))
            pipe.zcard(keys.due_inflight(shard))
        counts = cast(list[int], await pipe.execute())
    return sum(counts)


async def _release(
    group: Started,
    servers: Servers,
    env: dict[str, str],
    calls: int,
    give_up_after: float,
    profile: bool,
) -> Released:
    """Starts one scheduler and follows the due queue in Redis until every call is released.

    A call counts as released once the pump has dropped its lease, which it does only after
    the broker acknowledged the call's message (acks=all)."""
    redis = Redis.from_url(servers.redis_url)
    try:
        started_at = time.monotonic()
        scheduler = start_service(group, "scheduler", env)
        pids = {
            "scheduler": scheduler.pid,
            "redis": servers.redis.pid,
            "broker": servers.broker.pid,
        }
        samples: list[tuple[float, int]] = [(started_at, 0)]
        window: CpuWindow | None = None
        spy = None
        cpu: CpuUse | None = None
        deadline = started_at + give_up_after
        while True:
            count = calls - await _unreleased(redis)
            now = time.monotonic()
            samples.append((now, count))
            if count and window is None:
                window = CpuWindow.open(pids, now)
                if profile:
                    # Long enough for the whole release; cut short below.
                    spy = start_profile(group, "scheduler", scheduler.pid, calls / PROFILE_RATE)
            if count >= calls or now > deadline or not scheduler.alive():
                break
            await asyncio.sleep(0.05)
        if window is not None:
            cpu = window.close(samples[-1][0])
        stop_profile(spy)
        profile_text = finish_profile(group, spy)
    finally:
        await redis.aclose()
    released = [s for s in samples if s[1] > 0]
    total = samples[-1][1]
    if not released:
        return Released(total, 0, 0, 0, 0, 0, samples, cpu, profile_text, scheduler.pid)
    first, last = released[0][0], samples[-1][0]
    t10, t90 = _crossing(samples, 0.1 * total), _crossing(samples, 0.9 * total)
    steady = 0.8 * total / (t90 - t10) if t90 > t10 else 0.0
    rate = (total - released[0][1]) / (last - first) if last > first else 0.0
    return Released(
        total,
        first - started_at,
        last - first,
        last - started_at,
        rate,
        steady,
        samples,
        cpu,
        profile_text,
        scheduler.pid,
    )


# --- outcomes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    total: int
    published_in: float  # seconds the raw producer took to publish every outcome
    first_to_last: float
    rate: float  # from the first sample that saw an applied outcome to the last
    cpu: CpuUse | None
    profile: str


async def _completed(redis: Redis, campaign_ids: list[str]) -> int:
    async with redis.pipeline(transaction=False) as pipe:
        for campaign_id in campaign_ids:
            pipe.hget(keys.campaign_stats(campaign_id), "completed")
        counts = cast(list[str | None], await pipe.execute())
    return sum(int(count or 0) for count in counts)


async def _outcome_records(redis_url: str, campaign_ids: list[str]) -> list[tuple[bytes, bytes]]:
    """One `attempt_ended` (`completed`) per stored call, keyed by call id as the dialer's."""
    redis = create_redis(RedisSettings(url=redis_url))
    try:
        store = CallStore(redis, DUE_SHARDS)
        now = datetime.now(UTC)
        records = []
        for campaign_id in campaign_ids:
            call_ids = cast(list[str], await redis.zrange(keys.campaign_calls(campaign_id), 0, -1))
            for start in range(0, len(call_ids), 5_000):
                chunk = call_ids[start : start + 5_000]
                for call in await store.get_many((campaign_id, c) for c in chunk):
                    assert call is not None
                    event = call_event(
                        call,
                        CallEventType.ATTEMPT_ENDED,
                        now,
                        attempt=call.attempt,
                        max_attempts=1,
                        status="completed",
                        outcome="completed",
                        duration_seconds=1.0,
                    )
                    records.append((call_key(call.id), event.model_dump_json().encode()))
        return records
    finally:
        await redis.aclose()


async def _apply_outcomes(
    group: Started,
    servers: Servers,
    campaign_ids: list[str],
    records: list[tuple[bytes, bytes]],
    scheduler_pid: int,
    give_up_after: float,
    profile: bool,
) -> Applied:
    """Publishes the outcomes at once and follows the campaigns' `completed` counts."""
    redis = Redis.from_url(servers.redis_url)
    producer = AIOKafkaProducer(bootstrap_servers=servers.kafka, acks="all", linger_ms=0)
    await producer.start()
    try:
        pids = {"scheduler": scheduler_pid, "redis": servers.redis.pid}
        began = time.monotonic()
        pending: list[asyncio.Future[Any]] = []
        for key, value in records:
            pending.append(await producer.send(CALLS_EVENTS, value, key=key))
            if len(pending) >= 5_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        published_in = time.monotonic() - began
        samples: list[tuple[float, int]] = []
        window: CpuWindow | None = None
        spy = None
        deadline = began + give_up_after
        while True:
            count = await _completed(redis, campaign_ids)
            now = time.monotonic()
            samples.append((now, count))
            if count and window is None:
                window = CpuWindow.open(pids, now)
                if profile:
                    spy = start_profile(group, "outcomes", scheduler_pid, len(records) / 1_000)
            if count >= len(records) or now > deadline:
                break
            await asyncio.sleep(0.05)
        cpu = window.close(samples[-1][0]) if window is not None else None
        stop_profile(spy)
        profile_text = finish_profile(group, spy)
    finally:
        await producer.stop()
        await redis.aclose()
    applied = [sample for sample in samples if sample[1] > 0]
    total = samples[-1][1]
    if not applied:
        return Applied(total, published_in, 0.0, 0.0, cpu, profile_text)
    first, last = applied[0], samples[-1]
    span = last[0] - first[0]
    rate = (total - first[1]) / span if span > 0 else 0.0
    return Applied(total, published_in, span, rate, cpu, profile_text)


# --- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Queued:
    total: int
    published_in: float  # seconds the raw producer took to publish every request
    started_to_first: float  # scheduler start to the first call queued
    first_to_last: float
    rate: float  # from the first sample that saw a queued call to the last
    cpu: CpuUse | None
    cpu_seconds: float  # the scheduler's CPU from the first sample that saw a queued call
    counted: int  # calls queued in that window
    profile: str


async def _request_records(redis_url: str, campaign_ids: list[str]) -> list[tuple[bytes, bytes]]:
    """One accepted request per stored call: the value and key ingest publishes."""
    redis = create_redis(RedisSettings(url=redis_url))
    try:
        store = CallStore(redis, DUE_SHARDS)
        records = []
        for campaign_id in campaign_ids:
            call_ids = cast(list[str], await redis.zrange(keys.campaign_calls(campaign_id), 0, -1))
            for start in range(0, len(call_ids), 5_000):
                chunk = call_ids[start : start + 5_000]
                for call in await store.get_many((campaign_id, c) for c in chunk):
                    assert call is not None
                    records.append((requested_key(campaign_id, call.to), accepted_request(call)))
        return records
    finally:
        await redis.aclose()


async def _queued_count(redis: Redis) -> int:
    async with redis.pipeline(transaction=False) as pipe:
        for shard in range(DUE_SHARDS):
            pipe.zcard(keys.due_queue(shard))
        counts = cast(list[int], await pipe.execute())
    return sum(counts)


async def _queue_requests(
    group: Started,
    servers: Servers,
    env: dict[str, str],
    records: list[tuple[bytes, bytes]],
    give_up_after: float,
    profile: bool,
) -> Queued:
    """Publishes the requests at once, then starts one scheduler and follows the due queue
    until every call is in it."""
    redis = Redis.from_url(servers.redis_url)
    producer = AIOKafkaProducer(bootstrap_servers=servers.kafka, acks="all", linger_ms=0)
    await producer.start()
    try:
        began = time.monotonic()
        pending: list[asyncio.Future[Any]] = []
        for key, value in records:
            pending.append(await producer.send(CALLS_REQUESTED, value, key=key))
            if len(pending) >= 5_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        published_in = time.monotonic() - began
        started_at = time.monotonic()
        scheduler = start_service(group, "scheduler", env)
        pids = {
            "scheduler": scheduler.pid,
            "redis": servers.redis.pid,
            "broker": servers.broker.pid,
        }
        samples: list[tuple[float, int]] = [(started_at, 0)]
        window: CpuWindow | None = None
        cpu_at_first = 0.0
        spy = None
        deadline = started_at + give_up_after
        while True:
            count = await _queued_count(redis)
            now = time.monotonic()
            samples.append((now, count))
            if count and window is None:
                window = CpuWindow.open(pids, now)
                cpu_at_first = process_cpu_seconds(scheduler.pid)
                if profile:
                    spy = start_profile(group, "requests", scheduler.pid, len(records) / 1_000)
            if count >= len(records) or now > deadline or not scheduler.alive():
                break
            await asyncio.sleep(0.05)
        cpu = window.close(samples[-1][0]) if window is not None else None
        cpu_seconds = process_cpu_seconds(scheduler.pid) - cpu_at_first if window else 0.0
        stop_profile(spy)
        profile_text = finish_profile(group, spy)
    finally:
        await producer.stop()
        await redis.aclose()
    queued = [sample for sample in samples if sample[1] > 0]
    total = samples[-1][1]
    if not queued:
        return Queued(total, published_in, 0.0, 0.0, 0.0, cpu, 0.0, 0, profile_text)
    first, last = queued[0], samples[-1]
    span = last[0] - first[0]
    rate = (total - first[1]) / span if span > 0 else 0.0
    return Queued(
        total,
        published_in,
        first[0] - started_at,
        span,
        rate,
        cpu,
        cpu_seconds,
        total - first[1],
        profile_text,
    )


def _requests_main(args: argparse.Namespace) -> int:
    """The `--requests` run: store, publish the accepted requests, follow the queueing."""
    print(
        f"scheduler_release --requests: how fast one scheduler queues {args.calls:,} accepted "
        f"requests for stored calls ({args.campaigns} campaigns; ids: {args.ids})"
    )
    print(f"  before: {load_line()}", flush=True)
    with started_processes("scheduler") as group:
        servers = start_servers(group)
        campaigns = uvloop.run(_create_campaigns(servers.redis_url, args.campaigns, args.ids))
        began = time.monotonic()
        accepted = _seed(
            servers.redis_url,
            campaigns,
            args.calls,
            args.seed_processes,
            args.seed_concurrency,
            queue=False,
        )
        print(
            f"  stored {accepted:,} calls in {time.monotonic() - began:.1f} s "
            f"({args.seed_processes} processes; not measured)",
            flush=True,
        )
        records = uvloop.run(_request_records(servers.redis_url, campaigns.ids))
        env = service_env(
            servers,
            {
                # The calls are due in an hour: the pump has nothing to release, and no call
                # is stranded long enough for it to queue one itself.
                "SCHEDULER_PUMP_INTERVAL_MS": "1000",
                "SCHEDULER_HANDOFF_GRACE_MS": "3600000",
                "DUE_SHARDS": str(DUE_SHARDS),
            },
        )
        queued = uvloop.run(
            _queue_requests(group, servers, env, records, args.timeout, args.profile)
        )
        on_topic = uvloop.run(read_topic(servers.kafka, CALLS_EVENTS, len(records), 120))
        print(f"  logs: {group.logs}")
    print()
    print(
        f"Requests: {len(records):,} accepted requests ({len(records[0][1])} B values keyed by "
        f"campaign and number) published before the scheduler started, in "
        f"{queued.published_in:.2f} s"
    )
    print(
        f"  queued {queued.total:,}: {queued.rate:,.0f} requests/s "
        f"(first→last {queued.first_to_last:.2f} s; scheduler start to first "
        f"{queued.started_to_first:.2f} s)"
        + ("" if queued.total >= len(records) else f"; NOT all within {args.timeout:g} s")
    )
    if queued.counted:
        print(
            f"  scheduler CPU {queued.cpu_seconds:.2f} s for {queued.counted:,} requests: "
            f"{queued.cpu_seconds / queued.counted * 1e6:,.0f} µs per request"
        )
    if queued.cpu is not None:
        print(f"  while queueing: {queued.cpu.line()}")
    print(
        f"  read back from {CALLS_EVENTS}: {on_topic.messages:,} messages, "
        f"{on_topic.distinct_keys:,} distinct call ids"
    )
    print(f"  after: {load_line()}")
    if queued.profile:
        print("\nprofile of the scheduler queueing requests (py-spy):")
        print(queued.profile)
    return 0


async def _left_in_redis(redis_url: str, campaign_ids: list[str]) -> tuple[int, int, int, int]:
    """(due, in flight, slots held, used_memory) after the release."""
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        due = sum([await redis.zcard(keys.due_queue(s)) for s in range(DUE_SHARDS)])
        inflight = sum([await redis.zcard(keys.due_inflight(s)) for s in range(DUE_SHARDS)])
        slots = sum([await redis.zcard(keys.dial_slots(c)) for c in campaign_ids])
        return due, inflight, slots, await _used_memory(redis)
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.requests:
        return _requests_main(args)
    per_campaign = -(-args.calls // args.campaigns)
    print(f"scheduler_release: {DESCRIPTION}")
    print(
        f"  {args.calls:,} calls due over {args.campaigns} campaigns ({per_campaign:,} each; "
        f"max_concurrent_calls {MAX_CONCURRENT:,}, calls_per_minute {PER_MINUTE:,}, "
        f"always open, recipient_local_hours null): the concurrency cap "
        + ("never binds" if per_campaign <= MAX_CONCURRENT else "BINDS (use more campaigns)")
        + f"; ids: {args.ids}"
    )
    print(f"  before: {load_line()}", flush=True)
    with started_processes("scheduler") as group:
        servers = start_servers(group, topics=[CEILING_TOPIC])
        campaigns = uvloop.run(_create_campaigns(servers.redis_url, args.campaigns, args.ids))
        before = uvloop.run(_used_memory_of(servers.redis_url))
        began = time.monotonic()
        accepted = _seed(
            servers.redis_url, campaigns, args.calls, args.seed_processes, args.seed_concurrency
        )
        print(
            f"  seeded {accepted:,} calls in {time.monotonic() - began:.1f} s "
            f"({args.seed_processes} processes; not measured)",
            flush=True,
        )
        memory = uvloop.run(_memory(servers.redis_url, campaigns.ids, accepted, before))
        message = _due_message(memory.sample)
        ceiling_seconds = uvloop.run(_ceiling(servers.kafka, memory.sample, accepted))
        extra = {
            "SCHEDULER_PUMP_INTERVAL_MS": str(args.pump_interval_ms),
            "DUE_SHARDS": str(DUE_SHARDS),
        }
        if args.claim_batch:
            extra["SCHEDULER_CLAIM_BATCH"] = str(args.claim_batch)
        env = service_env(servers, extra)
        released = uvloop.run(_release(group, servers, env, accepted, args.timeout, args.profile))
        due, inflight, slots, memory_released = uvloop.run(
            _left_in_redis(servers.redis_url, campaigns.ids)
        )
        on_topic = uvloop.run(read_topic(servers.kafka, CALLS_DUE, accepted, 120))
        applied: Applied | None = None
        if args.outcomes:
            records = uvloop.run(_outcome_records(servers.redis_url, campaigns.ids))
            applied = uvloop.run(
                _apply_outcomes(
                    group,
                    servers,
                    campaigns.ids,
                    records,
                    released.scheduler_pid,
                    args.timeout,
                    args.profile,
                )
            )
        print(f"  logs: {group.logs}")

    per_call = (memory.after - memory.before) / max(1, accepted)
    print()
    print("Redis memory per scheduled call")
    print(
        f"  used_memory {memory.before:,} -> {memory.after:,} B: "
        f"{per_call:,.0f} B per call ({per_call / 1024:.2f} KiB)"
    )
    print(
        "  MEMORY USAGE per call: "
        + ", ".join(f"{name} {size:,.0f} B" for name, size in memory.breakdown.items())
        + f" (sum {sum(memory.breakdown.values()):,.0f} B; the rest is the key space)"
    )
    print("  encodings: " + ", ".join(f"{k} {v}" for k, v in memory.encodings.items()))
    print(
        f"  after the release (due entries gone, {slots:,} dial slots + rate entries held): "
        f"used_memory {memory_released:,} B"
    )
    print(
        f"  the {memory.breakdown['call hash']:,.0f} B call hash holds "
        f"{memory.sample_fields} fields, {memory.sample_bytes} B of field names and values; "
        f"fields over {LISTPACK_VALUE} ({memory.listpack_value_limit} B): "
        + (", ".join(f"{k} ({n} B)" for k, n in memory.too_long.items()) or "none")
        + f"; the body key holds {memory.body_bytes} B of JSON"
    )
    print()
    all_out = released.total >= accepted
    release_rate = released.rate
    ceiling_rate = accepted / ceiling_seconds if ceiling_seconds else 0.0
    rows = [
        [
            "scheduler (real)",
            f"{release_rate:,.0f}",
            f"{released.steady_rate:,.0f}",
            f"{released.first_to_last:.2f}",
            f"{released.started_to_last:.2f}",
            f"{released.total:,}",
        ],
        [
            "raw aiokafka acks=all",
            f"{ceiling_rate:,.0f}",
            "",
            f"{ceiling_seconds:.2f}",
            "",
            f"{accepted:,}",
        ],
    ]
    print(
        f"Release to {CALLS_DUE} ({len(message)} B values keyed by call id; "
        f"pump interval {args.pump_interval_ms} ms)"
    )
    print(
        table(
            ["", "msg/s", "10-90% msg/s", "first→last s", "start→last s", "messages"],
            rows,
        )
    )
    print(f"ratio real/ceiling: {release_rate / ceiling_rate if ceiling_rate else 0:.1%}")
    print(
        f"  scheduler start to first release {released.started_to_first:.2f} s; "
        + ("all released" if all_out else f"NOT all released within {args.timeout:g} s")
        + f"; left in Redis: {due:,} due, {inflight:,} in flight"
    )
    print(
        f"  read back from {CALLS_DUE}: {on_topic.messages:,} messages, "
        f"{on_topic.distinct_keys:,} distinct call ids ({accepted:,} calls seeded)"
    )
    if released.cpu is not None:
        print(f"  during the release: {released.cpu.line()}")
    print(
        f"target: ≥{TARGET_RATE:,.0f} releases/s: "
        f"{'met' if release_rate >= TARGET_RATE and all_out else 'NOT met'}; "
        f"< {TARGET_BYTES:,.0f} B per scheduled call: "
        f"{'met' if per_call < TARGET_BYTES else 'NOT met'}"
    )
    print(f"  after: {load_line()}")
    if applied is not None:
        print()
        print(
            f"Outcomes: {accepted:,} attempt_ended (completed) published at once by a raw "
            f"producer in {applied.published_in:.2f} s"
        )
        print(
            f"  applied {applied.total:,}: {applied.rate:,.0f} outcomes/s "
            f"(first→last {applied.first_to_last:.2f} s)"
            + ("" if applied.total >= accepted else f"; NOT all within {args.timeout:g} s")
        )
        if applied.cpu is not None:
            print(f"  while applying: {applied.cpu.line()}")
    if released.profile:
        print("\nprofile of the scheduler process (py-spy; this run's figures are perturbed):")
        print(released.profile)
    if applied is not None and applied.profile:
        print("\nprofile of the scheduler applying outcomes (py-spy):")
        print(applied.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
