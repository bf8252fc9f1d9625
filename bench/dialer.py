"""Dialing: how many attempts one dialer process takes from its claim to the attempt's end, with
N due messages waiting in `campaign-calls.due`; against a raw aiokafka consume→publish stage
over the same N records in the same run.

Each scenario gets a broker and Redis of its own. N calls are stored as the scheduler stores
them (queued, attempt 1, over `--campaigns` active campaigns whose do-not-call check is on and
whose list is empty), each with its concurrency slot held far into the future (the dialer only
renews a slot), and N `CallDue` messages keyed by call id are published before the dialer
starts. No scheduler runs, so nothing frees a slot or applies an outcome. Every number ends in
0-3, so every attempt is answered and ends `completed`.

- sandbox: the in-process sandbox carrier with no ring and no talk time
  (`DIALER_SANDBOX_RING_MS=0`, `DIALER_SANDBOX_TALK_MS=0`), `--calls` calls.
- fake Twilio: `DIALER_PROVIDER=twilio` against `tests/fake_carrier.py` run as its own process,
  which takes each call at once and sends its four signed status callbacks (initiated, ringing,
  in-progress, completed) back to the dialer's HTTP port without delay; `--carrier-calls` calls.
- raw aiokafka: one consumer fetching the N `CallDue` records in batches of
  `KAFKA_BATCH_MAX_RECORDS` and publishing one event of an `attempt_ended`'s size per record
  with acks=all to `campaign-calls.events`, committing each batch once the broker has it (run
  in the benchmark's own process): the ceiling of a consume→publish stage. The dialer
  publishes three events per attempt (`started`, `answered`, `attempt_ended`).

The dialer's figures come from the events it publishes: attempts/s is the number of attempts
ended over the span from the first `started` to the last `attempt_ended` (both stamped in the
dialer process); the latency of an attempt is its `attempt_ended` time less its `started` time.
Wall time runs from starting the dialer process to seeing the last `attempt_ended`.

The dialer's CPU time per attempt (its CPU seconds over that window, from the first event seen
to the last `attempt_ended` seen, per attempt) is printed too: it moves far less than the rates
when other work shares the machine.

Target: at least 5,000 attempts/s with the sandbox. Printed, never asserted.

python -m bench dialer [--calls 20000] [--carrier-calls 5000] [--rounds 1] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.figures import CpuUse, CpuWindow, load_line, percentile, table
from bench.loadgen import number_at
from bench.profiling import finish_profile, start_profile, stop_profile
from bench.seeding import DUE_SHARDS, accept_all, queued_calls, seed_campaigns
from bench.servers import (
    Servers,
    Started,
    python_module,
    service_env,
    start_servers,
    start_service,
    started_processes,
)
from devstack.processes import free_port
from shared import keys
from shared.bus import BulkSender
from shared.events import CallEvent, CallEventType, call_due, call_event
from shared.models import Call
from shared.partitioner import KeyPartitioner
from shared.redis_client import create_redis
from shared.settings import KafkaSettings, RedisSettings
from shared.store.catalog import CatalogStore
from shared.topics import CALLS_DUE, CALLS_EVENTS, call_key

DESCRIPTION = "attempts/s of one dialer (sandbox, fake Twilio), vs raw aiokafka consume→publish"
TARGET_RATE = 5_000.0
# Slots are made to outlast any run: the dialer only renews a slot that exists.
SLOT_HELD_MS = 24 * 3_600_000
BATCH_MAX_RECORDS = KafkaSettings().batch_max_records
TWILIO_ACCOUNT_SID = "AC" + "0" * 32
TWILIO_AUTH_TOKEN = "bench-auth-token"
TWILIO_FROM_NUMBER = "+15005550006"
# How an `attempt_ended` event reads in its JSON (pydantic writes no spaces), to count them
# while the dialer runs without parsing each event in this process.
ENDED_MARK = f'"type":"{CallEventType.ATTEMPT_ENDED.value}"'.encode()
# With every attempt ended, further events are waited for this long: a second copy of an
# ending is published about when the first is (once its 10 s right to publish has lapsed).
QUIET_AFTER_ALL_S = 3.0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench dialer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--calls", type=int, default=20_000, help="sandbox and raw aiokafka")
    parser.add_argument(
        "--carrier-calls", type=int, default=5_000, help="fake Twilio (0 skips that scenario)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="figures are the rounds' median")
    parser.add_argument("--campaigns", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=300.0, help="give up waiting after")
    parser.add_argument("--max-in-flight", type=int, default=None, help="DIALER_MAX_IN_FLIGHT")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the dialer in each scenario's first round"
    )
    args = parser.parse_args(argv)
    args.calls = max(1, args.calls)
    args.rounds = max(1, args.rounds)
    args.campaigns = max(1, args.campaigns)
    return args


# --- seeding ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    calls: list[Call]
    campaign_ids: list[str]


def _number(index: int) -> str:
    """A distinct number per index, whose last digit is 0-3 (answered and completed)."""
    return number_at((index // 4) * 10 + index % 4)


async def _seed(redis_url: str, calls: int, campaigns: int, concurrency: int = 64) -> Seeded:
    """An agent, `campaigns` active always-open campaigns, and `calls` queued calls spread over
    them, stored through `CallStore.accept` as the scheduler stores them, each holding its
    concurrency slot as the pump leaves it at release."""
    redis = create_redis(RedisSettings(url=redis_url, max_connections=concurrency))
    try:
        catalog = CatalogStore(redis)
        now = datetime.now(UTC)
        campaign_ids = await seed_campaigns(catalog, campaigns, now)
        seeded = queued_calls(campaign_ids, calls, now, _number)
        await accept_all(redis, seeded, concurrency)
        held_until = float(int(time.time() * 1000) + SLOT_HELD_MS)
        by_campaign: dict[str, dict[str, float]] = {}
        for call in seeded:
            slots = by_campaign.setdefault(call.campaign_id, {})
            slots[keys.slot_member(call.id, call.attempt)] = held_until
        for campaign_id, slots in by_campaign.items():
            members = list(slots.items())
            for start in range(0, len(members), 1_000):
                await redis.zadd(keys.dial_slots(campaign_id), dict(members[start : start + 1_000]))
        return Seeded(seeded, campaign_ids)
    finally:
        await redis.aclose()


def _due_values(calls: Sequence[Call]) -> list[tuple[bytes, bytes]]:
    released_at = datetime.now(UTC)
    return [
        (
            call_key(call.id),
            call_due(call, call.scheduled_at, released_at).model_dump_json().encode(),
        )
        for call in calls
    ]


async def _publish_due(kafka: str, calls: Sequence[Call]) -> None:
    """The N due messages the pump would release, keyed by call id, acknowledged by the broker."""
    sender = BulkSender(KafkaSettings(bootstrap_servers=kafka), "bench")
    await sender.start()
    try:
        records = _due_values(calls)
        for start in range(0, len(records), 5_000):
            await sender.send_all(CALLS_DUE, records[start : start + 5_000])
    finally:
        await sender.stop()


def _prepare(servers: Servers, calls: int, campaigns: int) -> Seeded:
    began = time.monotonic()
    seeded = uvloop.run(_seed(servers.redis_url, calls, campaigns))
    uvloop.run(_publish_due(servers.kafka, seeded.calls))
    print(
        f"    seeded {len(seeded.calls):,} calls and published their due messages in "
        f"{time.monotonic() - began:.1f} s (not measured)",
        flush=True,
    )
    return seeded


# --- following the dialer ---------------------------------------------------------------------


@dataclass(frozen=True)
class Followed:
    values: list[bytes]  # every event the dialer published, once each
    started_at: float  # monotonic: the dialer process started
    first_seen: float | None  # monotonic: the first event seen
    last_ended_seen: float | None  # monotonic: the last call's first attempt_ended seen
    all_ended: bool
    dialer_alive: bool
    cpu: CpuUse | None
    profile: str


def _follower(kafka: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        CALLS_EVENTS,
        bootstrap_servers=kafka,
        group_id=f"bench-follow-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=2_000,
        heartbeat_interval_ms=300,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )


async def _assigned(consumer: AIOKafkaConsumer, within: float) -> None:
    """Waits until the consumer has joined its group and holds the topic's partitions."""
    deadline = time.monotonic() + within
    while not consumer.assignment():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the events follower got no partitions within {within:g} s")
        await consumer.getmany(timeout_ms=100)  # joins; the topic is empty yet


async def _follow(
    group: Started,
    servers: Servers,
    env: Mapping[str, str],
    http_port: int,
    calls: int,
    extra_pids: Mapping[str, int],
    give_up_after: float,
    profile: bool,
) -> Followed:
    """Starts one dialer and reads its events until every call's attempt has ended (and no
    more events came for `QUIET_AFTER_ALL_S`), the time is up, or the dialer died."""
    consumer = _follower(servers.kafka)
    await consumer.start()
    try:
        await _assigned(consumer, 60)
        started_at = time.monotonic()
        # In a thread: waiting for the port must not stall this loop's heartbeats.
        dialer = await asyncio.to_thread(start_service, group, "dialer", env, http_port)
        pids = {
            "dialer": dialer.pid,
            **extra_pids,
            "redis": servers.redis.pid,
            "broker": servers.broker.pid,
            "bench (follows the events)": os.getpid(),
        }
        # By partition and offset: a record read twice (after a rebalance) counts once.
        seen: dict[tuple[int, int], bytes] = {}
        # Events are keyed by call id: the calls whose attempt_ended was seen.
        ended: set[bytes | None] = set()
        first_seen: float | None = None
        last_ended_seen: float | None = None
        last_new = started_at
        window: CpuWindow | None = None
        cpu: CpuUse | None = None
        spy = None
        deadline = started_at + give_up_after
        while True:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            now = time.monotonic()
            for partition, records in batch.items():
                for record in records:
                    where = (partition.partition, record.offset)
                    if where in seen or record.value is None:
                        continue
                    seen[where] = record.value
                    last_new = now
                    if ENDED_MARK in record.value and record.key not in ended:
                        ended.add(record.key)
                        last_ended_seen = now
            if seen and window is None:
                first_seen = now
                window = CpuWindow.open(pids, now)
                if profile:
                    # Cut short below once every attempt has ended.
                    spy = start_profile(group, "dialer", dialer.pid, give_up_after)
            if len(ended) >= calls and cpu is None and window is not None:
                cpu = window.close(now)
                stop_profile(spy)
            if len(ended) >= calls and now - last_new > QUIET_AFTER_ALL_S:
                break
            if now > deadline or not dialer.alive():
                break
        if cpu is None and window is not None:
            cpu = window.close(time.monotonic())
        stop_profile(spy)
        profile_text = await asyncio.to_thread(finish_profile, group, spy)
        return Followed(
            list(seen.values()),
            started_at,
            first_seen,
            last_ended_seen,
            len(ended) >= calls,
            dialer.alive(),
            cpu,
            profile_text,
        )
    finally:
        await consumer.stop()


# --- what the events say ----------------------------------------------------------------------


@dataclass(frozen=True)
class DialerRun:
    calls: int
    ended_calls: int  # calls with at least one attempt_ended
    duplicates: dict[str, int]  # call id -> attempt_ended events, where more than one
    missing: int  # seeded calls with no attempt_ended
    started_duplicates: int  # calls with more than one started
    answered_duplicates: int
    outcomes: Counter[str]
    types: Counter[str]
    rate: float  # ended calls over first started -> last ended (occurred_at)
    steady_rate: float  # between the 10th and 90th percentile of ended times
    span: float  # first started -> last ended, s (occurred_at)
    wall: float  # dialer process start -> last ended seen, s
    to_first: float  # dialer process start -> first event seen, s
    latency_ms: list[float]  # sorted, started -> ended per call
    all_ended: bool
    dialer_alive: bool
    cpu: CpuUse | None
    profile: str


def _analyse(followed: Followed, seeded: Seeded) -> DialerRun:
    events = [CallEvent.model_validate_json(value) for value in followed.values]
    types = Counter(event.type.value for event in events)
    started: dict[str, list[datetime]] = {}
    ended: dict[str, list[CallEvent]] = {}
    answered: Counter[str] = Counter()
    for event in events:
        if event.type is CallEventType.STARTED:
            started.setdefault(event.call_id, []).append(event.occurred_at)
        elif event.type is CallEventType.ATTEMPT_ENDED:
            ended.setdefault(event.call_id, []).append(event)
        elif event.type is CallEventType.ANSWERED:
            answered[event.call_id] += 1
    ids = {call.id for call in seeded.calls}
    ended_times = sorted(min(e.occurred_at for e in ends) for ends in ended.values())
    latency = sorted(
        (min(e.occurred_at for e in ends) - min(started[call_id])).total_seconds() * 1000
        for call_id, ends in ended.items()
        if call_id in started
    )
    rate = steady = span = 0.0
    if ended_times and started:
        first = min(min(times) for times in started.values())
        span = (ended_times[-1] - first).total_seconds()
        rate = len(ended_times) / span if span > 0 else 0.0
        t10 = ended_times[int(0.1 * (len(ended_times) - 1))]
        t90 = ended_times[int(0.9 * (len(ended_times) - 1))]
        between = (t90 - t10).total_seconds()
        steady = 0.8 * len(ended_times) / between if between > 0 else 0.0
    seen = followed.last_ended_seen
    return DialerRun(
        calls=len(seeded.calls),
        ended_calls=len(ended),
        duplicates={c: len(ends) for c, ends in ended.items() if len(ends) > 1},
        missing=len(ids - ended.keys()),
        started_duplicates=sum(1 for times in started.values() if len(times) > 1),
        answered_duplicates=sum(1 for count in answered.values() if count > 1),
        outcomes=Counter(str(e.outcome) for ends in ended.values() for e in ends),
        types=types,
        rate=rate,
        steady_rate=steady,
        span=span,
        wall=seen - followed.started_at if seen is not None else 0.0,
        to_first=(
            followed.first_seen - followed.started_at if followed.first_seen is not None else 0.0
        ),
        latency_ms=latency,
        all_ended=followed.all_ended,
        dialer_alive=followed.dialer_alive,
        cpu=followed.cpu,
        profile=followed.profile,
    )


# --- the scenarios ----------------------------------------------------------------------------


def _dialer_env(servers: Servers, http_port: int, args: argparse.Namespace) -> dict[str, str]:
    extra = {
        "DIALER_HTTP_PORT": str(http_port),
        "DIALER_SANDBOX_RING_MS": "0",
        "DIALER_SANDBOX_TALK_MS": "0",
        "DUE_SHARDS": str(DUE_SHARDS),
    }
    if args.max_in_flight:
        extra["DIALER_MAX_IN_FLIGHT"] = str(args.max_in_flight)
    return service_env(servers, extra)


def _report_exit(group: Started, followed: Followed) -> None:
    print(f"    logs: {group.logs}", flush=True)
    if not followed.dialer_alive:
        print("    the dialer exited; the end of its log:\n" + group.log_tail("dialer"))


def _sandbox(args: argparse.Namespace, profile: bool) -> DialerRun:
    with started_processes("dialer") as group:
        servers = start_servers(group)
        seeded = _prepare(servers, args.calls, args.campaigns)
        http_port = free_port()
        env = _dialer_env(servers, http_port, args)
        followed = uvloop.run(
            _follow(group, servers, env, http_port, args.calls, {}, args.timeout, profile)
        )
        _report_exit(group, followed)
    return _analyse(followed, seeded)


def _twilio(args: argparse.Namespace, profile: bool) -> DialerRun:
    with started_processes("dialer-twilio") as group:
        servers = start_servers(group)
        seeded = _prepare(servers, args.carrier_calls, args.campaigns)
        carrier_port = free_port()
        carrier = group.start(
            "fake-carrier",
            python_module(
                "tests.fake_carrier",
                "--port",
                str(carrier_port),
                "--auth-token",
                TWILIO_AUTH_TOKEN,
                "--account-sid",
                TWILIO_ACCOUNT_SID,
            ),
            service_env(servers, {}),
            port=carrier_port,
        )
        http_port = free_port()
        env = _dialer_env(servers, http_port, args)
        env.update(
            {
                "DIALER_PROVIDER": "twilio",
                "DIALER_PUBLIC_URL": f"http://127.0.0.1:{http_port}",
                "TWILIO_ACCOUNT_SID": TWILIO_ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN,
                "TWILIO_FROM_NUMBER": TWILIO_FROM_NUMBER,
                "TWILIO_API_URL": f"http://127.0.0.1:{carrier_port}",
            }
        )
        followed = uvloop.run(
            _follow(
                group,
                servers,
                env,
                http_port,
                args.carrier_calls,
                {"fake carrier": carrier.pid},
                args.timeout,
                profile,
            )
        )
        _report_exit(group, followed)
    return _analyse(followed, seeded)


@dataclass(frozen=True)
class Baseline:
    records: int
    seconds: float  # first fetched batch -> last batch acknowledged
    value_bytes: int
    cpu: CpuUse | None

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def _event_value(call: Call) -> bytes:
    """An `attempt_ended` event of the call, as the dialer publishes it."""
    return (
        call_event(
            call,
            CallEventType.ATTEMPT_ENDED,
            datetime.now(UTC),
            attempt=call.attempt,
            max_attempts=1,
            status="completed",
            outcome="completed",
            error=None,
            duration_seconds=0.0,
        )
        .model_dump_json()
        .encode()
    )


async def _consume_publish(
    servers: Servers, records: int, value: bytes, give_up_after: float
) -> Baseline:
    """Fetches the due records in batches and publishes one event per record (acks=all),
    committing each batch once the broker has its events."""
    consumer = AIOKafkaConsumer(
        CALLS_DUE,
        bootstrap_servers=servers.kafka,
        group_id="bench-baseline",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=2_000,
        heartbeat_interval_ms=300,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=servers.kafka, acks="all", linger_ms=0, partitioner=KeyPartitioner()
    )
    await producer.start()
    await consumer.start()
    try:
        pids = {"bench": os.getpid(), "redis": servers.redis.pid, "broker": servers.broker.pid}
        done = 0
        first: float | None = None
        window: CpuWindow | None = None
        deadline = time.monotonic() + give_up_after
        while done < records and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=BATCH_MAX_RECORDS)
            if not batch:
                continue
            if first is None:
                first = time.monotonic()
                window = CpuWindow.open(pids, first)
            pending = [
                await producer.send(CALLS_EVENTS, value, key=record.key)
                for partition_records in batch.values()
                for record in partition_records
            ]
            await asyncio.gather(*pending)
            await consumer.commit()
            done += len(pending)
        last = time.monotonic()
        cpu = window.close(last) if window is not None else None
        return Baseline(done, last - first if first is not None else 0.0, len(value), cpu)
    finally:
        await consumer.stop()
        await producer.stop()


def _baseline(args: argparse.Namespace) -> Baseline:
    with started_processes("dialer-baseline") as group:
        servers = start_servers(group)
        seeded = _prepare(servers, args.calls, args.campaigns)
        value = _event_value(seeded.calls[0])
        return uvloop.run(_consume_publish(servers, args.calls, value, args.timeout))


# --- printing ---------------------------------------------------------------------------------


def _run_line(run: DialerRun) -> str:
    p = run.latency_ms
    return (
        f"{run.rate:,.0f} attempts/s (10-90% {run.steady_rate:,.0f}) over {run.span:.2f} s; "
        f"wall {run.wall:.2f} s from the dialer's start ({run.to_first:.2f} s to its first "
        f"event); latency p50 {percentile(p, 0.5):.0f} ms, p99 {percentile(p, 0.99):.0f} ms, "
        f"max {percentile(p, 1.0):.0f} ms"
    )


def _check_line(run: DialerRun) -> str:
    duplicated = sum(run.duplicates.values()) - len(run.duplicates)
    line = (
        f"ended {run.ended_calls:,} of {run.calls:,} calls"
        + (f", {run.missing:,} MISSING" if run.missing else "")
        + f"; {len(run.duplicates):,} ended more than once ({duplicated:,} extra events)"
        + f"; calls started twice {run.started_duplicates:,}, answered twice "
        + f"{run.answered_duplicates:,}; outcomes "
        + ", ".join(f"{o} {n:,}" for o, n in run.outcomes.most_common())
        + "; events "
        + ", ".join(f"{t} {n:,}" for t, n in sorted(run.types.items()))
    )
    if run.duplicates:
        line += "\n      ended more than once: " + ", ".join(
            f"{call_id} ×{n}" for call_id, n in list(run.duplicates.items())[:20]
        )
    if not run.all_ended:
        line += "\n      NOT every call ended" + (
            "" if run.dialer_alive else " (the dialer exited; see its log)"
        )
    return line


def _cpu_ms_per_attempt(run: DialerRun) -> float | None:
    """The dialer's CPU time per attempt ended, over the window its CPU use was measured in
    (from its first event seen to its last `attempt_ended` seen)."""
    if run.cpu is None or not run.ended_calls or "dialer" not in run.cpu.per_process:
        return None
    return run.cpu.per_process["dialer"] * run.cpu.seconds / run.ended_calls * 1000


def _cpu_line(run: DialerRun) -> str:
    assert run.cpu is not None
    per_attempt = _cpu_ms_per_attempt(run)
    line = run.cpu.line()
    if per_attempt is not None:
        line += f"\n    dialer CPU per attempt {per_attempt:.3f} ms"
    return line


def _median_run(runs: list[DialerRun]) -> DialerRun:
    return sorted(runs, key=lambda r: r.rate)[(len(runs) - 1) // 2]


def _row(name: str, runs: list[DialerRun], ceiling: float) -> list[str]:
    run = _median_run(runs)
    rate = statistics.median(r.rate for r in runs)
    per_attempt = [ms for ms in (_cpu_ms_per_attempt(r) for r in runs) if ms is not None]
    return [
        name,
        f"{rate:,.0f}",
        f"{statistics.median(per_attempt):.3f}" if per_attempt else "",
        f"{statistics.median(r.steady_rate for r in runs):,.0f}",
        f"{percentile(run.latency_ms, 0.5):.0f}",
        f"{percentile(run.latency_ms, 0.99):.0f}",
        f"{statistics.median(r.wall for r in runs):.2f}",
        f"{run.calls:,}",
        f"{rate / ceiling:.1%}" if ceiling else "",
    ]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    print(f"dialer: {DESCRIPTION}")
    print(
        f"  {args.calls:,} calls (sandbox, raw aiokafka) and {args.carrier_calls:,} (fake "
        f"Twilio) over {args.campaigns} campaigns; {args.rounds} round(s), medians printed; "
        f"KAFKA_BATCH_MAX_RECORDS {BATCH_MAX_RECORDS}, DIALER_MAX_IN_FLIGHT "
        f"{args.max_in_flight or 'default'}"
    )
    print(f"  before: {load_line()}", flush=True)
    baselines: list[Baseline] = []
    sandbox: list[DialerRun] = []
    twilio: list[DialerRun] = []
    for round_number in range(1, args.rounds + 1):
        first = round_number == 1
        print(f"  round {round_number}: raw aiokafka consume→publish", flush=True)
        baseline = _baseline(args)
        baselines.append(baseline)
        print(f"    {baseline.rate:,.0f} records/s over {baseline.seconds:.2f} s", flush=True)
        if baseline.cpu is not None:
            print(f"    {baseline.cpu.line()}")
        print(f"  round {round_number}: dialer, sandbox", flush=True)
        run = _sandbox(args, args.profile and first)
        sandbox.append(run)
        print(f"    {_run_line(run)}\n    {_check_line(run)}", flush=True)
        if run.cpu is not None:
            print(f"    {_cpu_line(run)}")
        if args.carrier_calls > 0:
            print(f"  round {round_number}: dialer, fake Twilio", flush=True)
            run = _twilio(args, args.profile and first)
            twilio.append(run)
            print(f"    {_run_line(run)}\n    {_check_line(run)}", flush=True)
            if run.cpu is not None:
                print(f"    {_cpu_line(run)}")

    ceiling = statistics.median(b.rate for b in baselines)
    ceiling_seconds = statistics.median(b.seconds for b in baselines)
    print()
    print(
        "Claim to attempt_ended, one dialer process (DIALER_SANDBOX_RING_MS=0, "
        "DIALER_SANDBOX_TALK_MS=0; the fake carrier answers at once)"
    )
    rows = [_row("dialer, sandbox", sandbox, ceiling)]
    if twilio:
        rows.append(_row("dialer, fake Twilio", twilio, ceiling))
    rows.append(
        [
            "raw aiokafka consume→publish",
            f"{ceiling:,.0f}",
            "",
            "",
            "",
            "",
            f"{ceiling_seconds:.2f}",
            f"{args.calls:,}",
            "100.0%",
        ]
    )
    print(
        table(
            [
                "",
                "attempts/s",
                "CPU ms/attempt",
                "10-90%/s",
                "p50 ms",
                "p99 ms",
                "wall s",
                "calls",
                "of raw",
            ],
            rows,
        )
    )
    print(
        f"  raw aiokafka: {BATCH_MAX_RECORDS} records per fetch, one {baselines[0].value_bytes} B "
        f"event per record (acks=all, linger 0), a commit per batch; the dialer publishes "
        f"three events per attempt. wall s: the dialer's from process start to the last "
        f"attempt_ended seen; raw aiokafka's from its first fetch to its last acknowledgement"
    )
    sandbox_rate = statistics.median(r.rate for r in sandbox)
    complete = all(r.all_ended and not r.duplicates for r in sandbox)
    print(
        f"target: ≥{TARGET_RATE:,.0f} attempts/s with the sandbox: "
        f"{'met' if sandbox_rate >= TARGET_RATE and complete else 'NOT met'} "
        f"({sandbox_rate:,.0f}" + ("" if complete else "; not every call ended exactly once") + ")"
    )
    print(f"  after: {load_line()}")
    for name, runs in (("sandbox", sandbox), ("fake Twilio", twilio)):
        if runs and runs[0].profile:
            print(f"\nprofile of the dialer, {name} (py-spy; this run's figures are perturbed):")
            print(runs[0].profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
