"""The whole system end to end: N calls posted over HTTP to ingest, released by the scheduler,
dialed by the dialer through the sandbox carrier at zero ring and talk time, and told by the
notifier to a local webhook receiver; every service its own process, on a broker and Redis of
the run's own. In the same run, the broker's raw produce → consume round trip is the floor.

- stack: the Tansu broker, a Redis server, `python -m services.{scheduler,dialer,notifier,
  ingest}` (one process each; `DIALER_SANDBOX_RING_MS=0`, `DIALER_SANDBOX_TALK_MS=0`,
  `API_RATE_LIMIT_PER_SECOND=0`, `WEBHOOK_ALLOW_PRIVATE_TARGETS=true`, the product's defaults
  otherwise, plus any `--env`), all waited for until `/readyz` answers 200.
- campaigns: `--campaigns` (1) active campaigns open every day and hour, no initial delay, no
  retries, no recipient-hours rule, `max_concurrent_calls` 10,000 and `calls_per_minute`
  100,000 (the highest each allows); each with one webhook listing only
  `campaign_call.completed`, pointing at the receiver.
- receiver: `python -m bench.pipeline receive`, an aiohttp server (uvloop) in its own process so
  that its CPU is counted apart; it answers 200 at once and keeps, per call id (the event's
  `data.id`), the machine's monotonic time the first `completed` delivery arrived.
- calls: single Make Campaign Call requests (not the batch endpoint), each to a number of its
  own whose last digit the sandbox completes (0-3, 8), spread over the campaigns.

Phases, one after another on the same stack: a warm-up (`--warmup` calls, unmeasured: consumer
groups joined, connections open); the burst, `--calls` posted `--concurrency` at a time;
the steady phase, calls offered at a paced rate of `--steady-fraction` (half) of the burst's
completed calls/s for `--steady-seconds`; then the floor.

Figures per phase: accepted/s (201 answers over the span from the first request sent to the
last answer); completed calls/s (calls completed over the span from the first request sent to
the last completed webhook); latency per call from its request being sent to its completed
webhook arriving (p50/p95/p99); where a sample of the calls spent that time, by their attempt's
own timestamps read back over the API (request -> dial started, dialing, dial ended ->
webhook); CPU milliseconds per call of each process (utime + stime deltas from /proc over the
phase, from the first request to the last webhook), and the whole machine's busy time, so that
work of others on the machine shows.

The floor, on a topic of its own on the same broker, with records of an event's size: an
aiokafka producer as the services' (acks=all, linger 0) and a consumer, one record at a time
(round trip p50/p99) with the services' fetch wait (KAFKA_FETCH_MAX_WAIT_MS: the local
broker answers a waiting fetch only when the wait is over) and with 10 ms; then
`--floor-records` sent at once (records/s from the first send to the last received). A call
crosses the broker four times (requested, due, attempt_ended, completed), so four round trips
at the services' fetch wait are the least a call can take.

Printed, never asserted.

python -m bench pipeline [--calls 20000] [--concurrency 64] [--steady-seconds 20]
    [--steady-fraction 0.5] [--warmup 300] [--campaigns 1] [--floor-records 20000]
    [--env NAME=VALUE ...] [--profile SERVICE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import orjson
import uvloop
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.figures import (
    load_line,
    machine_busy_seconds,
    percentile,
    process_cpu_seconds,
    table,
)
from bench.ingest_make_call import TOKEN, create_campaign
from bench.loadgen import NUMBER_SPACE, body_for, check_numbers
from bench.profiling import finish_profile, start_profile
from bench.servers import (
    Servers,
    Started,
    env_setting,
    python_module,
    service_env,
    start_servers,
    start_service,
    started_processes,
)
from devstack.processes import free_port
from shared.settings import KafkaSettings

DESCRIPTION = "calls over HTTP through all four services to a webhook: rates, latency, CPU"
ENVIRONMENT = "bench"
COMPLETED = "campaign_call.completed"
# The last digits the sandbox carrier completes (services/dialer/domain/sandbox.py).
COMPLETING_DIGITS = (0, 1, 2, 3, 8)
SERVICES = ("ingest", "scheduler", "dialer", "notifier")
# How long the services' consumers' fetches wait for records (their default setting).
SERVICES_FETCH_WAIT_MS: int = KafkaSettings.model_fields["fetch_max_wait_ms"].default
# The floor's round trips are measured with these fetch waits, each on a topic of its own; the
# last topic takes the records sent at once.
FLOOR_FETCH_WAITS_MS = (SERVICES_FETCH_WAIT_MS, 10)
FLOOR_TOPICS = ("bench-pipeline-floor-a", "bench-pipeline-floor-b", "bench-pipeline-floor-bulk")
# The topics a call crosses from its request to its completed webhook, in order.
HOPS = (
    "requested (ingest -> scheduler)",
    "due (scheduler -> dialer)",
    "attempt_ended (dialer -> scheduler)",
    "completed (scheduler -> notifier)",
)
BROKER_HOPS = len(HOPS)
# A completed event's body is about this size; the floor's records are as large.
FLOOR_VALUE_BYTES = 700
# Calls of each phase whose attempt's timestamps are read back, spread over the phase.
STAGE_SAMPLE = 200
# Give up on a phase when no completed webhook arrived for this long.
STALL_SECONDS = 30.0
_AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def completing_index(n: int) -> int:
    """The n-th loadgen number index whose number ends in a digit the sandbox completes;
    distinct n give distinct indices (a bijection onto those indices)."""
    return (n // len(COMPLETING_DIGITS)) * 10 + COMPLETING_DIGITS[n % len(COMPLETING_DIGITS)]


def max_calls() -> int:
    """How many distinct completing numbers there are."""
    return NUMBER_SPACE // 10 * len(COMPLETING_DIGITS)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--calls", type=int, default=20_000, help="calls in the burst")
    parser.add_argument(
        "--concurrency", type=int, default=64, help="burst requests in flight at once"
    )
    parser.add_argument("--steady-seconds", type=float, default=20.0, help="0 skips it")
    parser.add_argument(
        "--steady-fraction",
        type=float,
        default=0.5,
        help="the steady phase's offered rate, as a share of the burst's completed calls/s",
    )
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured calls first")
    parser.add_argument("--campaigns", type=int, default=1, help="calls spread over these")
    parser.add_argument(
        "--floor-records", type=int, default=20_000, help="floor records sent at once (0: none)"
    )
    parser.add_argument(
        "--floor-pings", type=int, default=300, help="floor records sent one by one (0: none)"
    )
    parser.add_argument(
        "--env",
        type=env_setting,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for every service process (repeatable)",
    )
    parser.add_argument(
        "--profile",
        choices=SERVICES,
        help="py-spy this service for --profile-seconds from the burst's start",
    )
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    args.calls = max(1, args.calls)
    args.concurrency = max(1, args.concurrency)
    args.campaigns = max(1, args.campaigns)
    return args


# --- the receiver (its own process) -----------------------------------------------------------


@dataclass
class Completions:
    """What the receiver got: per call id, when its first completed delivery arrived."""

    first: dict[str, float] = field(default_factory=dict)  # time.monotonic() at arrival
    deliveries: int = 0
    other_types: int = 0
    unreadable: int = 0

    def record(self, body: bytes, arrived: float) -> None:
        self.deliveries += 1
        try:
            event = orjson.loads(body)
            kind = event["type"]
            call_id = str(event["data"]["id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.unreadable += 1
            return
        if kind != COMPLETED:
            self.other_types += 1
            return
        self.first.setdefault(call_id, arrived)

    def report(self) -> dict[str, Any]:
        return {
            "ids": list(self.first),
            "times": list(self.first.values()),
            "deliveries": self.deliveries,
            "other_types": self.other_types,
            "unreadable": self.unreadable,
        }


def receiver_app(completions: Completions) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        arrived = time.monotonic()
        completions.record(await request.read(), arrived)
        return web.Response()

    async def count(request: web.Request) -> web.Response:
        return web.Response(text=str(len(completions.first)))

    async def report(request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(completions.report()))

    app = web.Application()
    for method in ("POST", "PUT", "PATCH"):
        app.router.add_route(method, "/hooks", receive)
    app.router.add_get("/bench/count", count)
    app.router.add_get("/bench/report", report)
    return app


async def _serve(port: int) -> None:
    runner = web.AppRunner(receiver_app(Completions()), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    try:
        await asyncio.Event().wait()  # until the benchmark stops this process
    finally:
        await runner.cleanup()


def receive_main(argv: list[str]) -> int:
    """python -m bench.pipeline receive --port P: the webhook receiver."""
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline receive")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvloop.run(_serve(args.port))
    return 0


# --- the stack --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    servers: Servers
    api_base: str
    receiver_base: str
    ops: dict[str, str]  # service -> where its /readyz is
    pids: dict[str, int]  # process -> pid, for the CPU figures


def _start_stack(group: Started, args: argparse.Namespace) -> Stack:
    servers = start_servers(group, FLOOR_TOPICS)
    api_port = free_port()
    receiver_port = free_port()
    extra = {
        "API_HOST": "127.0.0.1",
        "API_PORT": str(api_port),
        "API_TOKENS": f"{TOKEN}:{ENVIRONMENT}",
        "DEV_API_TOKEN": "",
        "API_RATE_LIMIT_PER_SECOND": "0",
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "DIALER_PROVIDER": "sandbox",
        "DIALER_SANDBOX_RING_MS": "0",
        "DIALER_SANDBOX_TALK_MS": "0",
        "DIALER_HTTP_PORT": str(free_port()),
    }
    env = service_env(servers, {**extra, **dict(args.env)})
    receiver = group.start(
        "receiver",
        python_module("bench.pipeline", "receive", "--port", str(receiver_port)),
        env,
        receiver_port,
    )
    pids = {"broker": servers.broker.pid, "redis": servers.redis.pid}
    ops = {}
    for name, setting in (
        ("scheduler", "SCHEDULER_HTTP_PORT"),
        ("dialer", "DIALER_HTTP_PORT"),
        ("notifier", "NOTIFIER_HTTP_PORT"),
    ):
        port = int(env[setting])
        pids[name] = start_service(group, name, env, port).pid
        ops[name] = f"http://127.0.0.1:{port}"
    pids["ingest"] = start_service(group, "ingest", env, api_port).pid
    ops["ingest"] = f"http://127.0.0.1:{api_port}"
    pids["receiver"] = receiver.pid
    pids["bench (posts, polls)"] = os.getpid()
    return Stack(
        servers, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{receiver_port}", ops, pids
    )


async def _wait_ready(
    session: aiohttp.ClientSession, ops: Mapping[str, str], within: float
) -> None:
    deadline = time.monotonic() + within
    for name, base in ops.items():
        while True:
            try:
                async with session.get(f"{base}/readyz") as response:
                    text = await response.text()
                    if response.status == 200:
                        break
            except aiohttp.ClientError as exc:
                text = str(exc)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not ready within {within:g} s: {text[:300]}")
            await asyncio.sleep(0.1)


async def _campaigns(
    session: aiohttp.ClientSession, api_base: str, count: int, hook_url: str
) -> list[str]:
    """`count` always-open active campaigns, each with a webhook of `completed` events."""
    ids = []
    for _ in range(count):
        campaign_id = await create_campaign(api_base)
        body = {
            "name": "bench receiver",
            "webhook_url": hook_url,
            "events": [COMPLETED],
            "include_call_events": False,
        }
        async with session.post(
            f"{api_base}/api/v1/campaigns/{campaign_id}/webhooks", json=body, headers=_AUTH
        ) as response:
            if response.status != 201:
                raise RuntimeError(f"webhook: {response.status} {await response.text()}")
        ids.append(campaign_id)
    return ids


# --- posting ----------------------------------------------------------------------------------


@dataclass
class Posted:
    """The requests of one phase as the bench sent them."""

    sent: dict[str, float] = field(default_factory=dict)  # call id -> monotonic send time
    campaign_of: dict[str, str] = field(default_factory=dict)  # call id -> campaign id
    answer_seconds: list[float] = field(default_factory=list)  # request -> 201
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    first_sent: float = 0.0
    last_answered: float = 0.0
    pacing_lag: float = 0.0  # the most a paced request went out late

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + self.errors


class Poster:
    def __init__(
        self, session: aiohttp.ClientSession, api_base: str, campaign_ids: Sequence[str]
    ) -> None:
        self._session = session
        self._campaigns = [(c, f"{api_base}/api/v1/campaigns/{c}/call") for c in campaign_ids]

    async def post(self, n: int, posted: Posted) -> None:
        """Posts the call to the n-th completing number, to campaign n modulo the campaigns."""
        campaign_id, url = self._campaigns[n % len(self._campaigns)]
        body = body_for(completing_index(n))
        sent = time.monotonic()
        if not posted.first_sent:
            posted.first_sent = sent
        try:
            async with self._session.post(url, data=body, headers=_AUTH) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            posted.errors += 1
            return
        answered = time.monotonic()
        posted.last_answered = max(posted.last_answered, answered)
        posted.statuses[status] += 1
        if status == 201:
            call_id = str(orjson.loads(raw)["campaign_call"]["id"])
            posted.sent[call_id] = sent
            posted.campaign_of[call_id] = campaign_id
            posted.answer_seconds.append(answered - sent)

    async def burst(self, first: int, count: int, concurrency: int) -> Posted:
        """`count` calls from number `first` on, `concurrency` requests in flight."""
        posted = Posted()
        todo = iter(range(first, first + count))

        async def worker() -> None:
            for n in todo:  # one iterator shared by every worker
                await self.post(n, posted)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return posted

    async def paced(self, first: int, rate: float, seconds: float) -> Posted:
        """Calls sent at `rate` a second for `seconds`, each when its turn comes (however many
        are in flight)."""
        posted = Posted()
        count = max(1, round(rate * seconds))
        loop = asyncio.get_running_loop()
        began = loop.time()
        tasks = []
        for i in range(count):
            late = loop.time() - (began + i / rate)
            if late < 0:
                await asyncio.sleep(-late)
            else:
                posted.pacing_lag = max(posted.pacing_lag, late)
            tasks.append(asyncio.create_task(self.post(first + i, posted)))
        await asyncio.gather(*tasks)
        return posted


# --- what the receiver got --------------------------------------------------------------------


async def _receiver_count(session: aiohttp.ClientSession, base: str) -> int:
    async with session.get(f"{base}/bench/count") as response:
        return int(await response.text())


async def _receiver_report(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with session.get(f"{base}/bench/report") as response:
        report: dict[str, Any] = orjson.loads(await response.read())
        return report


async def _await_completions(
    session: aiohttp.ClientSession, base: str, expected: int, stall: float
) -> int:
    """Waits until the receiver has `expected` completed calls in all, or none came for
    `stall` seconds; returns how many it has."""
    seen = -1
    progressed = time.monotonic()
    while True:
        count = await _receiver_count(session, base)
        if count >= expected:
            return count
        if count != seen:
            seen = count
            progressed = time.monotonic()
        elif time.monotonic() - progressed > stall:
            return count
        await asyncio.sleep(0.02)


def latencies(sent: Mapping[str, float], arrived: Mapping[str, float]) -> tuple[list[float], int]:
    """Sorted seconds from each sent call's request to its completed webhook, and how many
    sent calls have none."""
    found = sorted(arrived[call_id] - at for call_id, at in sent.items() if call_id in arrived)
    return found, len(sent) - len(found)


# --- CPU --------------------------------------------------------------------------------------


@dataclass
class CpuSeconds:
    """CPU seconds (user + system) each process used, and the whole machine's busy seconds."""

    per_process: dict[str, float]
    machine: float

    @classmethod
    def now(cls, pids: Mapping[str, int]) -> CpuSeconds:
        return cls(
            {name: process_cpu_seconds(pid) for name, pid in pids.items()},
            machine_busy_seconds(),
        )

    def since(self, before: CpuSeconds) -> CpuSeconds:
        return CpuSeconds(
            {
                name: used - before.per_process.get(name, 0.0)
                for name, used in self.per_process.items()
            },
            self.machine - before.machine,
        )


# --- one phase --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    name: str
    posted: Posted
    completed_at: dict[str, float]  # the phase's calls' completed webhooks
    cpu: CpuSeconds
    wall: float  # the CPU window: first request -> all completed (or given up)
    stages: Stages
    offered: float | None = None  # the paced rate, calls/s

    @property
    def accepted(self) -> int:
        return len(self.posted.sent)

    @property
    def accepted_per_s(self) -> float:
        span = self.posted.last_answered - self.posted.first_sent
        return self.accepted / span if span > 0 else 0.0

    @property
    def completed(self) -> int:
        return len(self.completed_at)

    @property
    def completion_span(self) -> float:
        """First request sent -> last completed webhook."""
        if not self.completed_at:
            return 0.0
        return max(self.completed_at.values()) - self.posted.first_sent

    @property
    def completed_per_s(self) -> float:
        span = self.completion_span
        return self.completed / span if span > 0 else 0.0

    @property
    def latencies(self) -> list[float]:
        return latencies(self.posted.sent, self.completed_at)[0]

    @property
    def missing(self) -> int:
        return latencies(self.posted.sent, self.completed_at)[1]

    def cpu_per_call_ms(self, name: str) -> float:
        return 1000 * self.cpu.per_process[name] / max(1, self.completed)

    def cores(self, name: str) -> float:
        return self.cpu.per_process[name] / self.wall if self.wall > 0 else 0.0


async def _phase(
    name: str,
    session: aiohttp.ClientSession,
    stack: Stack,
    expected_before: int,
    post: Callable[[], Awaitable[Posted]],
    offered: float | None = None,
) -> Phase:
    """Runs `post()`, waits for its calls' webhooks and measures."""
    before = CpuSeconds.now(stack.pids)
    began = time.monotonic()
    posted: Posted = await post()
    await _await_completions(
        session, stack.receiver_base, expected_before + len(posted.sent), STALL_SECONDS
    )
    ended = time.monotonic()
    cpu = CpuSeconds.now(stack.pids).since(before)
    report = await _receiver_report(session, stack.receiver_base)
    arrived = dict(zip(report["ids"], report["times"], strict=True))
    mine = {call_id: arrived[call_id] for call_id in posted.sent if call_id in arrived}
    stages = await _stages(session, stack.api_base, posted, mine, STAGE_SAMPLE)
    return Phase(name, posted, mine, cpu, ended - began, stages, offered)


@dataclass(frozen=True)
class Stages:
    """Where a sample of a phase's calls spent their time, by the attempt's own timestamps
    (read back over the API): sorted seconds of each stage."""

    to_dial: list[float]  # request sent -> the dialer started the attempt
    dialing: list[float]  # started -> the carrier ended it
    to_webhook: list[float]  # ended -> the completed webhook arrived


def split_stages(
    sent_wall: float, started_wall: float, ended_wall: float, arrived_wall: float
) -> tuple[float, float, float]:
    return started_wall - sent_wall, ended_wall - started_wall, arrived_wall - ended_wall


async def _stages(
    session: aiohttp.ClientSession,
    api_base: str,
    posted: Posted,
    arrived: Mapping[str, float],
    sample: int,
) -> Stages:
    # CLOCK_MONOTONIC is the machine's: the receiver's arrival times convert as the bench's do.
    to_wall = time.time() - time.monotonic()
    done = sorted(arrived, key=lambda call_id: posted.sent[call_id])
    step = max(1, len(done) // max(1, sample))
    parts: list[tuple[float, float, float]] = []
    for call_id in done[::step]:
        path = f"/api/v1/campaigns/{posted.campaign_of[call_id]}/calls/{call_id}"
        async with session.get(f"{api_base}{path}", headers=_AUTH) as response:
            if response.status != 200:
                continue
            answer = orjson.loads(await response.read())
        view = answer.get("data", answer)
        attempts = view.get("attempts") or []
        if not attempts or not attempts[0].get("started_at") or not attempts[0].get("ended_at"):
            continue
        started = datetime.fromisoformat(attempts[0]["started_at"]).timestamp()
        ended = datetime.fromisoformat(attempts[0]["ended_at"]).timestamp()
        parts.append(
            split_stages(posted.sent[call_id] + to_wall, started, ended, arrived[call_id] + to_wall)
        )
    return Stages(
        sorted(p[0] for p in parts), sorted(p[1] for p in parts), sorted(p[2] for p in parts)
    )


# --- the floor --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Floor:
    # Sorted round trips (seconds), one record at a time, by the consumer's fetch wait (ms).
    pings: dict[int, list[float]]
    records: int
    seconds: float  # first send -> last received, all sent at once

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def _floor_consumer(kafka: str, topic: str, fetch_wait_ms: int) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka,
        group_id=f"bench-floor-{uuid.uuid4().hex}",
        # Each topic is the floor's own and empty: every record read is one sent here.
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=2_000,
        heartbeat_interval_ms=300,
        fetch_max_wait_ms=fetch_wait_ms,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )


async def _joined(consumer: AIOKafkaConsumer) -> None:
    deadline = time.monotonic() + 60
    while not consumer.assignment():
        if time.monotonic() > deadline:
            raise TimeoutError("the floor's consumer got no partitions within 60 s")
        await consumer.getmany(timeout_ms=100)


async def _pings(
    producer: AIOKafkaProducer, kafka: str, topic: str, fetch_wait_ms: int, count: int
) -> list[float]:
    """Sorted round trips of `count` records sent one at a time, each awaited back."""
    consumer = _floor_consumer(kafka, topic, fetch_wait_ms)
    await consumer.start()
    try:
        await _joined(consumer)
        padding = b"x" * (FLOOR_VALUE_BYTES - 8)
        round_trips = []
        for i in range(count):
            sent = time.monotonic()
            await producer.send_and_wait(topic, struct.pack("d", sent) + padding, key=b"%d" % i)
            got = False
            while not got:
                batch = await consumer.getmany(timeout_ms=5_000)
                if not batch:
                    raise TimeoutError("a floor record did not come back within 5 s")
                got = any(
                    record.value is not None and struct.unpack("d", record.value[:8])[0] == sent
                    for records in batch.values()
                    for record in records
                )
            round_trips.append(time.monotonic() - sent)
        return sorted(round_trips)
    finally:
        await consumer.stop()


async def _bulk(producer: AIOKafkaProducer, kafka: str, topic: str, records: int) -> Floor:
    """`records` sent at once (the producer batches them) and read back: records/s."""
    consumer = _floor_consumer(kafka, topic, SERVICES_FETCH_WAIT_MS)
    await consumer.start()
    try:
        await _joined(consumer)
        value = b"x" * FLOOR_VALUE_BYTES
        first = time.monotonic()
        sends = [await producer.send(topic, value, key=b"%d" % i) for i in range(records)]
        received = 0
        last = first
        deadline = first + 120
        while received < records and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            received += sum(len(partition_records) for partition_records in batch.values())
            if batch:
                last = time.monotonic()
        await asyncio.gather(*sends)
        return Floor({}, received, last - first)
    finally:
        await consumer.stop()


async def _floor(kafka: str, pings: int, records: int) -> Floor:
    """Round trips through the broker: a producer as the services' (acks=all, linger 0) and a
    consumer, in this process. One record at a time with the services' fetch wait and with a
    short one (the local broker answers a waiting fetch only when its wait is over, so the
    wait, not the broker's work, sets the former); then `records` at once."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all", linger_ms=0)
    await producer.start()
    try:
        found = {}
        if pings:
            for wait_ms, topic in zip(FLOOR_FETCH_WAITS_MS, FLOOR_TOPICS, strict=False):
                found[wait_ms] = await _pings(producer, kafka, topic, wait_ms, pings)
        bulk = await _bulk(producer, kafka, FLOOR_TOPICS[-1], records) if records else None
        return Floor(found, bulk.records if bulk else 0, bulk.seconds if bulk else 0.0)
    finally:
        await producer.stop()


# --- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    warmup: Phase | None
    burst: Phase
    steady: Phase | None
    floor: Floor | None
    receiver: dict[str, Any]  # its counters at the end
    profile: str


async def _measure(group: Started, stack: Stack, args: argparse.Namespace) -> Run:
    connector = aiohttp.TCPConnector(limit=max(args.concurrency, 512), limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await _wait_ready(session, stack.ops, 90)
        hook_url = f"{stack.receiver_base}/hooks"
        campaign_ids = await _campaigns(session, stack.api_base, args.campaigns, hook_url)
        poster = Poster(session, stack.api_base, campaign_ids)
        done = 0  # completed calls the receiver has so far
        number = 0  # the next completing number
        warmup = None
        if args.warmup > 0:
            print(f"  warm-up: {args.warmup:,} calls", flush=True)
            first, number = number, number + args.warmup
            warmup = await _phase(
                "warm-up", session, stack, done, lambda: poster.burst(first, args.warmup, 16)
            )
            done += warmup.completed
        print(f"  burst: {args.calls:,} calls, {args.concurrency} in flight", flush=True)
        profile = None
        if args.profile:
            pid = stack.pids[args.profile]
            profile = start_profile(group, f"{args.profile}-burst", pid, args.profile_seconds)
        first, number = number, number + args.calls
        burst = await _phase(
            "burst",
            session,
            stack,
            done,
            lambda: poster.burst(first, args.calls, args.concurrency),
        )
        done += burst.completed
        profiled = finish_profile(group, profile)
        steady = None
        rate = burst.completed_per_s * args.steady_fraction
        if args.steady_seconds > 0 and rate > 0:
            print(
                f"  steady: {rate:,.0f} calls/s offered for {args.steady_seconds:g} s",
                flush=True,
            )
            first = number
            number += max(1, round(rate * args.steady_seconds))
            steady = await _phase(
                "steady",
                session,
                stack,
                done,
                lambda: poster.paced(first, rate, args.steady_seconds),
                offered=rate,
            )
            done += steady.completed
        receiver = await _receiver_report(session, stack.receiver_base)
        receiver["completed"] = len(receiver.pop("ids"))
        receiver.pop("times")
    floor = None
    if args.floor_records > 0 or args.floor_pings > 0:
        print("  floor: raw produce -> consume on the same broker", flush=True)
        floor = await _floor(stack.servers.kafka, args.floor_pings, args.floor_records)
    return Run(warmup, burst, steady, floor, receiver, profiled)


# --- printing ---------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:,.1f}"


def _phase_row(phase: Phase) -> list[str]:
    found = phase.latencies
    non_201 = phase.posted.requests - phase.accepted
    return [
        phase.name,
        f"{phase.posted.requests:,}",
        f"{phase.offered:,.0f}" if phase.offered is not None else "-",
        f"{phase.accepted_per_s:,.0f}",
        f"{phase.completed_per_s:,.0f}",
        f"{phase.completion_span:.2f}",
        _ms(percentile(found, 0.50)),
        _ms(percentile(found, 0.95)),
        _ms(percentile(found, 0.99)),
        _ms(found[-1] if found else 0.0),
        _ms(percentile(sorted(phase.posted.answer_seconds), 0.50)),
        _ms(percentile(sorted(phase.posted.answer_seconds), 0.99)),
        str(non_201),
        str(phase.missing),
    ]


def _cpu_rows(phases: Sequence[Phase]) -> list[list[str]]:
    rows = []
    names = list(phases[0].cpu.per_process)
    for name in names:
        row = [name]
        for phase in phases:
            row += [f"{phase.cpu_per_call_ms(name):.3f}", f"{phase.cores(name):.2f}"]
        rows.append(row)
    total = ["all of the above"]
    machine = ["whole machine (busy)"]
    for phase in phases:
        ours = sum(phase.cpu.per_process.values())
        total += [
            f"{1000 * ours / max(1, phase.completed):.3f}",
            f"{ours / phase.wall if phase.wall else 0.0:.2f}",
        ]
        machine += [
            f"{1000 * phase.cpu.machine / max(1, phase.completed):.3f}",
            f"{phase.cpu.machine / phase.wall if phase.wall else 0.0:.2f}",
        ]
    return [*rows, total, machine]


def _report_floor(run: Run, floor: Floor) -> None:
    print()
    print(f"floor (raw aiokafka on the same broker, {FLOOR_VALUE_BYTES} B records, acks=all):")
    for wait_ms, pings in floor.pings.items():
        note = " (the services' consumers' wait)" if wait_ms == SERVICES_FETCH_WAIT_MS else ""
        print(
            f"  produce -> consume round trip, one record at a time, fetch wait {wait_ms} ms"
            f"{note}: p50 {_ms(percentile(pings, 0.50))} ms, p99 "
            f"{_ms(percentile(pings, 0.99))} ms ({len(pings)} records)"
        )
    if floor.records:
        print(f"  {floor.records:,} records sent at once: {floor.rate:,.0f} records/s")
    if floor.rate:
        print(
            f"ratio: burst completed/s {run.burst.completed_per_s:,.0f} is "
            f"{run.burst.completed_per_s / floor.rate:.1%} of the floor's records/s"
        )
    hop = percentile(floor.pings.get(SERVICES_FETCH_WAIT_MS, []), 0.50)
    if hop > 0:
        least = BROKER_HOPS * hop
        line = (
            f"ratio: a call crosses the broker {BROKER_HOPS} times ({', '.join(HOPS)}): "
            f"{BROKER_HOPS} × the floor's p50 at the services' fetch wait = {_ms(least)} ms; "
            f"burst p50 is {percentile(run.burst.latencies, 0.50) / least:,.1f}x that"
        )
        if run.steady is not None:
            line += f", steady p50 {percentile(run.steady.latencies, 0.50) / least:,.2f}x"
        print(line)


def _report(run: Run, args: argparse.Namespace) -> None:
    phases = [p for p in (run.burst, run.steady) if p is not None]
    print()
    print(
        table(
            [
                "phase",
                "requests",
                "offered/s",
                "accepted/s",
                "completed/s",
                "span s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "max ms",
                "201 p50 ms",
                "201 p99 ms",
                "non-201",
                "missing",
            ],
            [_phase_row(p) for p in phases],
        )
    )
    print(
        "  latency: request sent -> completed webhook arrived; accepted/s: 201s from the first "
        "request to the last answer;\n  completed/s: completed calls from the first request to "
        "the last completed webhook; 201: request -> answer"
    )
    for phase in phases:
        problems = [f"{s}: {n}" for s, n in sorted(phase.posted.statuses.items()) if s != 201]
        if phase.posted.errors:
            problems.append(f"connection errors: {phase.posted.errors}")
        if problems:
            print(f"  {phase.name}: answers other than 201: {', '.join(problems)}")
        if phase.posted.pacing_lag > 0.05:
            print(
                f"  {phase.name}: a paced request went out up to {_ms(phase.posted.pacing_lag)} ms "
                "late (the bench could not keep the pace)"
            )
    for phase in phases:
        stages = phase.stages
        if stages.to_dial:
            print(
                f"  {phase.name}, where the time went ({len(stages.to_dial)} calls sampled, "
                "p50 / p95 ms): request -> dial started "
                f"{_ms(percentile(stages.to_dial, 0.5))} / {_ms(percentile(stages.to_dial, 0.95))}"
                f"; dialing {_ms(percentile(stages.dialing, 0.5))} / "
                f"{_ms(percentile(stages.dialing, 0.95))}; dial ended -> completed webhook "
                f"{_ms(percentile(stages.to_webhook, 0.5))} / "
                f"{_ms(percentile(stages.to_webhook, 0.95))}"
            )
    print()
    header = ["process"]
    for phase in phases:
        header += [f"{phase.name} CPU ms/call", f"{phase.name} cores"]
    print(table(header, _cpu_rows(phases)))
    print(
        "  CPU ms per completed call (utime + stime from /proc over the phase); cores: the "
        "average over the phase's wall time"
    )
    services = {name: run.burst.cores(name) for name in SERVICES}
    busiest = max(services, key=lambda name: services[name])
    costliest = max(SERVICES, key=run.burst.cpu_per_call_ms)
    print(
        f"  burst: busiest service {busiest} ({services[busiest]:.2f} of a core); most CPU per "
        f"call {costliest} ({run.burst.cpu_per_call_ms(costliest):.3f} ms); the machine was "
        f"{run.burst.cpu.machine / run.burst.wall:.2f} of {os.cpu_count()} cores busy, "
        f"{max(0.0, run.burst.cpu.machine - sum(run.burst.cpu.per_process.values())):.1f} "
        "CPU s of it not this run's"
    )
    ceiling = args.campaigns * 100_000 / 60
    if run.burst.completed_per_s > 0.9 * ceiling:
        print(
            f"  WARNING: completed/s is near the campaigns' dial-rate limit ({ceiling:,.0f}/s "
            f"for {args.campaigns} campaign(s) at calls_per_minute 100,000): use more --campaigns"
        )
    if run.floor is not None:
        _report_floor(run, run.floor)
    receiver = run.receiver
    duplicates = (
        receiver["deliveries"]
        - receiver["other_types"]
        - receiver["unreadable"]
        - receiver["completed"]
    )
    print(
        f"receiver: {receiver['deliveries']:,} deliveries: {receiver['completed']:,} calls "
        f"completed, {duplicates} repeated deliveries, {receiver['other_types']} of other "
        f"events, {receiver['unreadable']} unreadable"
    )
    if run.profile:
        print(f"\nprofile of {args.profile} during the burst (py-spy; figures perturbed):")
        print(run.profile)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    # The numbers are a bijection by construction; a sample is checked against phonenumbers.
    check_numbers([completing_index(n) for n in range(0, max_calls(), 20_011)])
    print(f"pipeline: {DESCRIPTION}")
    print(
        f"  {args.calls:,} calls posted singly, {args.concurrency} in flight; steady at "
        f"{args.steady_fraction:g} of the burst's completed/s for {args.steady_seconds:g} s; "
        f"{args.campaigns} campaign(s); sandbox ring 0 ms, talk 0 ms"
        + (f"; --env {' '.join(f'{k}={v}' for k, v in args.env)}" if args.env else "")
    )
    print(f"  before: {load_line()}", flush=True)
    with started_processes("pipeline") as group:
        stack = _start_stack(group, args)
        try:
            run = uvloop.run(_measure(group, stack, args))
        except BaseException:
            print(f"  logs: {group.logs}", file=sys.stderr)
            raise
        print(f"  logs: {group.logs}")
        _report(run, args)
        print(f"  after: {load_line()}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["receive"]:
        raise SystemExit(receive_main(sys.argv[2:]))
    raise SystemExit(main())
