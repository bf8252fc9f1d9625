"""Webhook delivery: how many signed deliveries one notifier process makes per second to a local
receiver, with N call events waiting in `campaign-calls.events`; against a bare aiohttp client
posting the same bodies, unsigned, to the same receiver in the same run.

Each round gets a broker, Redis and receiver of its own. An agent, `--campaigns` active
campaigns with `--webhooks` webhooks each (own `whsec_` secret, own path, listing
`campaign_call.completed`, or every call event with `--all-call-events`), and N calls spread
over the campaigns are stored through the project's stores as ingest and the scheduler store
them; N `campaign_call.completed` events keyed by call id are published before the notifier
starts (`WEBHOOK_ALLOW_PRIVATE_TARGETS=true`, plus any `--env`). Every event is due at every
webhook of its campaign: N × `--webhooks` deliveries.

- receiver: `python -m bench.notifier receive`, an aiohttp server (uvloop) in its own process,
  listening on one port per webhook (`--ports` folds them onto fewer), so neither a cap per
  endpoint nor one per origin stands in for the notifier's own pace. It answers every request
  200 with an empty body at once and keeps its arrival time (the machine's monotonic clock),
  path, `webhook-*` headers and body.
- notifier: `python -m services.notifier`, one process, draining the N events. Its
  deliveries are the first arrival of each (path, webhook-id); a later one is a duplicate. A
  sample of them (`--verify`) is checked with the `standardwebhooks` package against its
  webhook's secret, and its body's `id` against its `webhook-id`.
- bare aiohttp: in the benchmark's own process, one `ClientSession` with `--bare-connections`
  connections (64) posts the bodies the notifier
  delivered in that round, each to the path it went to, from `--bare-concurrency` tasks; only
  `Content-Type` and `webhook-id` headers: no signing, no Kafka, no Redis, no deliveries log.

Both sides are measured at the receiver: deliveries/s is the distinct deliveries over the span
from the first to the last one received; 10-90% is the middle 80% over its own span. Latency
is one HTTP request's, as each side times it: the notifier's from its deliveries log (the
newest `NOTIFIER_KEEP_ATTEMPTS` first attempts of each webhook), the bare client's from every
request. The events wait in a backlog, so no event-to-delivery latency is printed: it would be
the backlog's length. Wall time runs from starting the notifier process to the last delivery.

Target: the notifier at ≥60% of the bare client's deliveries/s. Printed, never asserted.

python -m bench notifier [--events 20000] [--rounds 1] [--campaigns 10] [--webhooks 1]
    [--env NOTIFIER_X=Y ...] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import statistics
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import uvloop
from aiohttp import web
from standardwebhooks.webhooks import Webhook as SignatureVerifier
from standardwebhooks.webhooks import WebhookVerificationError

from bench.figures import CpuUse, CpuWindow, load_line, percentile, table
from bench.loadgen import number_at
from bench.profiling import finish_profile, start_profile, stop_profile
from bench.seeding import ENVIRONMENT, accept_all, queued_calls, seed_campaigns
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
from shared.bus import BulkSender
from shared.events import CallEvent, CallEventType, call_event
from shared.ids import new_id
from shared.models import Webhook
from shared.redis_client import create_redis
from shared.settings import KafkaSettings, RedisSettings
from shared.store.catalog import CatalogStore
from shared.store.deliveries import DeliveryStore
from shared.topics import CALLS_EVENTS, call_key

DESCRIPTION = "signed webhook deliveries/s of one notifier, vs a bare aiohttp client, same bodies"
TARGET_SHARE = 0.60
# The bare client's connection pool.
DEFAULT_MAX_CONNECTIONS = 64
KEEP_ATTEMPTS_VARIABLE = "NOTIFIER_KEEP_ATTEMPTS"
DEFAULT_KEEP_ATTEMPTS = 1_000
WEBHOOK_TIMEOUT_S = 30
EVENT_TYPE = CallEventType.COMPLETED
HOOKS_PREFIX = "/hooks/"
# With every delivery in, further requests are waited for this long: a duplicate (a retry of
# an attempt whose answer was lost, a replay) would come about then.
QUIET_AFTER_ALL_S = 2.0
POLL_S = 0.1


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench notifier",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=20_000, help="call events published")
    parser.add_argument("--rounds", type=int, default=1, help="figures are the rounds' median")
    parser.add_argument("--campaigns", type=int, default=10)
    parser.add_argument("--webhooks", type=int, default=1, help="webhooks per campaign")
    parser.add_argument(
        "--ports", type=int, default=0, help="receiver ports the webhooks use (0: one each)"
    )
    parser.add_argument(
        "--all-call-events",
        action="store_true",
        help="webhooks take every call event (include_call_events) instead of listing one",
    )
    parser.add_argument("--bare-concurrency", type=int, default=64, help="bare client's tasks")
    parser.add_argument(
        "--bare-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        help="bare client's connection pool",
    )
    parser.add_argument(
        "--verify", type=int, default=1_000, help="notifier deliveries whose signature is checked"
    )
    parser.add_argument(
        "--env",
        type=env_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting for the notifier process (repeatable), e.g. NOTIFIER_MAX_IN_FLIGHT=512",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="give up waiting after")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the notifier in the first round"
    )
    args = parser.parse_args(argv)
    args.events = max(1, args.events)
    args.rounds = max(1, args.rounds)
    args.campaigns = max(1, args.campaigns)
    args.webhooks = max(1, args.webhooks)
    args.bare_concurrency = max(1, args.bare_concurrency)
    args.env = dict(args.env)
    hooks = args.campaigns * args.webhooks
    args.ports = hooks if args.ports <= 0 else min(args.ports, hooks)
    return args


def _connections(args: argparse.Namespace) -> int:
    return max(1, int(args.bare_connections))


# --- the receiver (its own process) -----------------------------------------------------------


@dataclass
class Arrivals:
    """What the receiver got, one entry per request, in arrival order."""

    times: list[float] = field(default_factory=list)  # time.monotonic() at arrival
    paths: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # webhook-id
    stamps: list[str] = field(default_factory=list)  # webhook-timestamp
    signatures: list[str] = field(default_factory=list)  # webhook-signature
    bodies: list[bytes] = field(default_factory=list)

    def clear(self) -> None:
        for values in (self.times, self.paths, self.ids, self.stamps, self.signatures):
            values.clear()
        self.bodies.clear()

    def report(self, with_bodies: bool) -> dict[str, Any]:
        return {
            "times": self.times,
            "paths": self.paths,
            "ids": self.ids,
            "stamps": self.stamps,
            "signatures": self.signatures,
            "bodies": [body.decode() for body in self.bodies] if with_bodies else [],
        }


def receiver_app(arrivals: Arrivals) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        headers = request.headers
        arrivals.times.append(time.monotonic())
        arrivals.paths.append(request.path)
        arrivals.ids.append(headers.get("webhook-id", ""))
        arrivals.stamps.append(headers.get("webhook-timestamp", ""))
        arrivals.signatures.append(headers.get("webhook-signature", ""))
        arrivals.bodies.append(body)
        return web.Response()

    async def count(request: web.Request) -> web.Response:
        return web.Response(text=str(len(arrivals.times)))

    async def report(request: web.Request) -> web.Response:
        with_bodies = request.query.get("bodies") == "1"
        return web.Response(body=orjson.dumps(arrivals.report(with_bodies)))

    async def reset(request: web.Request) -> web.Response:
        arrivals.clear()
        return web.Response()

    app = web.Application(client_max_size=16 * 1024 * 1024)
    for method in ("POST", "PUT", "PATCH"):
        app.router.add_route(method, HOOKS_PREFIX + "{tail:.*}", receive)
    app.router.add_get("/bench/count", count)
    app.router.add_get("/bench/report", report)
    app.router.add_post("/bench/reset", reset)
    return app


async def _serve(ports: Sequence[int]) -> None:
    runner = web.AppRunner(receiver_app(Arrivals()), access_log=None)
    await runner.setup()
    for port in ports:
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    try:
        await asyncio.Event().wait()  # until the benchmark stops this process
    finally:
        await runner.cleanup()


def receive_main(argv: list[str]) -> int:
    """python -m bench.notifier receive --ports P1,P2,...: the webhook receiver."""
    parser = argparse.ArgumentParser(prog="python -m bench.notifier receive")
    parser.add_argument("--ports", required=True, help="comma-separated loopback ports")
    args = parser.parse_args(argv)
    uvloop.run(_serve([int(port) for port in args.ports.split(",")]))
    return 0


# --- seeding ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hook:
    campaign_id: str
    webhook_id: str
    secret: str
    path: str
    url: str


@dataclass(frozen=True)
class Seeded:
    hooks: list[Hook]
    events: list[CallEvent]

    def expected(self) -> set[tuple[str, str]]:
        """(path, webhook-id) of every delivery due."""
        by_campaign: dict[str, list[Hook]] = {}
        for hook in self.hooks:
            by_campaign.setdefault(hook.campaign_id, []).append(hook)
        return {
            (hook.path, event.event_id)
            for event in self.events
            for hook in by_campaign.get(event.campaign_id, [])
        }


def _secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def _seed(
    redis_url: str, args: argparse.Namespace, ports: Sequence[int], concurrency: int = 64
) -> Seeded:
    """An agent, the campaigns and their webhooks, and the calls (accepted as the scheduler
    stores them, so the notifier finds each call's context), with one `completed` event each."""
    redis = create_redis(RedisSettings(url=redis_url, max_connections=concurrency))
    try:
        catalog = CatalogStore(redis)
        now = datetime.now(UTC)
        campaign_ids = await seed_campaigns(catalog, args.campaigns, now)
        hooks: list[Hook] = []
        for number, campaign_id in enumerate(campaign_ids):
            for index in range(args.webhooks):
                port = ports[len(hooks) % len(ports)]
                path = f"{HOOKS_PREFIX}{number}/{index}"
                hook = Hook(
                    campaign_id, new_id(), _secret(), path, f"http://127.0.0.1:{port}{path}"
                )
                await catalog.save_webhook(
                    Webhook(
                        id=hook.webhook_id,
                        campaign_id=campaign_id,
                        environment_id=ENVIRONMENT,
                        name=f"Bench {number}.{index}",
                        webhook_url=hook.url,
                        events=[] if args.all_call_events else [EVENT_TYPE.value],
                        include_call_events=args.all_call_events,
                        webhook_secret=hook.secret,
                        timeout=WEBHOOK_TIMEOUT_S,
                        max_retries=3,
                        created_at=now + timedelta(microseconds=index),
                    )
                )
                hooks.append(hook)
        calls = queued_calls(campaign_ids, args.events, now, number_at)
        await accept_all(redis, calls, concurrency)
        ended_at = datetime.now(UTC)
        events = [
            call_event(
                call,
                EVENT_TYPE,
                ended_at,
                attempt=1,
                max_attempts=1,
                status="completed",
                outcome="completed",
                duration_seconds=42.0,
            )
            for call in calls
        ]
        return Seeded(hooks, events)
    finally:
        await redis.aclose()


async def _publish(kafka: str, events: Sequence[CallEvent]) -> None:
    """The events as the dialer publishes them, keyed by call id, acknowledged by the broker."""
    sender = BulkSender(KafkaSettings(bootstrap_servers=kafka), "bench")
    await sender.start()
    try:
        records = [(call_key(e.call_id), e.model_dump_json().encode()) for e in events]
        for start in range(0, len(records), 5_000):
            await sender.send_all(CALLS_EVENTS, records[start : start + 5_000])
    finally:
        await sender.stop()


def _prepare(servers: Servers, args: argparse.Namespace, ports: Sequence[int]) -> Seeded:
    began = time.monotonic()
    seeded = uvloop.run(_seed(servers.redis_url, args, ports))
    uvloop.run(_publish(servers.kafka, seeded.events))
    print(
        f"    seeded {len(seeded.hooks)} webhooks and {len(seeded.events):,} calls and published "
        f"their events in {time.monotonic() - began:.1f} s (not measured)",
        flush=True,
    )
    return seeded


# --- what the receiver got --------------------------------------------------------------------


@dataclass(frozen=True)
class Delivered:
    """One side's deliveries as the receiver saw them."""

    expected: int
    received: int  # requests, duplicates included
    distinct: int  # expected (path, webhook-id) pairs received at least once
    duplicates: int  # requests beyond the first of their pair
    unexpected: int  # requests for no expected pair
    first: float | None  # monotonic: the first distinct delivery
    last: float | None  # monotonic: the last distinct delivery
    rate: float  # distinct over first -> last
    steady_rate: float  # the middle 80% over its own span
    bodies: list[tuple[str, str, bytes]]  # path, webhook-id, body of each distinct delivery
    sample: list[int]  # indices (into the report) of the distinct deliveries to verify

    @property
    def span(self) -> float:
        return self.last - self.first if self.first is not None and self.last is not None else 0.0

    @property
    def complete(self) -> bool:
        return self.distinct == self.expected


def _delivered(report: Mapping[str, Any], expected: set[tuple[str, str]], sample: int) -> Delivered:
    times: list[float] = report["times"]
    paths: list[str] = report["paths"]
    ids: list[str] = report["ids"]
    bodies: list[str] = report["bodies"]
    seen: set[tuple[str, str]] = set()
    firsts: list[int] = []
    unexpected = 0
    for index, pair in enumerate(zip(paths, ids, strict=True)):
        if pair not in expected:
            unexpected += 1
        elif pair not in seen:
            seen.add(pair)
            firsts.append(index)
    arrived = sorted(times[index] for index in firsts)
    rate = steady = 0.0
    if len(arrived) > 1:
        span = arrived[-1] - arrived[0]
        rate = len(arrived) / span if span > 0 else 0.0
        t10 = arrived[int(0.1 * (len(arrived) - 1))]
        t90 = arrived[int(0.9 * (len(arrived) - 1))]
        steady = 0.8 * len(arrived) / (t90 - t10) if t90 > t10 else 0.0
    step = max(1, len(firsts) // max(1, sample))
    return Delivered(
        expected=len(expected),
        received=len(times),
        distinct=len(firsts),
        duplicates=len(times) - len(firsts) - unexpected,
        unexpected=unexpected,
        first=arrived[0] if arrived else None,
        last=arrived[-1] if arrived else None,
        rate=rate,
        steady_rate=steady,
        bodies=[(paths[i], ids[i], bodies[i].encode()) for i in firsts] if bodies else [],
        sample=firsts[::step][:sample] if sample > 0 else [],
    )


@dataclass(frozen=True)
class Verified:
    checked: int
    failures: list[str]


def _verify(report: Mapping[str, Any], indices: Sequence[int], hooks: Sequence[Hook]) -> Verified:
    """Each sampled delivery's signature with the `standardwebhooks` package and its webhook's
    secret; its body's `id` is its `webhook-id`."""
    verifiers = {hook.path: SignatureVerifier(hook.secret) for hook in hooks}
    failures: list[str] = []
    for index in indices:
        path, webhook_id = report["paths"][index], report["ids"][index]
        headers = {
            "webhook-id": webhook_id,
            "webhook-timestamp": report["stamps"][index],
            "webhook-signature": report["signatures"][index],
        }
        try:
            body = verifiers[path].verify(report["bodies"][index], headers)
        except (WebhookVerificationError, ValueError, KeyError) as exc:
            failures.append(f"{path} {webhook_id}: {type(exc).__name__}: {exc}")
            continue
        if not isinstance(body, dict) or body.get("id") != webhook_id:
            failures.append(f"{path} {webhook_id}: the body's id is not the webhook-id")
    return Verified(len(indices), failures)


async def _receiver_report(session: aiohttp.ClientSession, base: str, bodies: bool) -> Any:
    async with session.get(f"{base}/bench/report", params={"bodies": "1" if bodies else "0"}) as r:
        r.raise_for_status()
        return orjson.loads(await r.read())


async def _receiver_count(session: aiohttp.ClientSession, base: str) -> int:
    async with session.get(f"{base}/bench/count") as response:
        return int(await response.text())


async def _receiver_reset(base: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(f"{base}/bench/reset") as r:
        r.raise_for_status()


# --- the notifier -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Logged:
    """First attempts in the notifier's deliveries logs (the newest of each webhook)."""

    latency_ms: list[float]  # sorted
    failed: int  # entries without a 2xx
    entries: int


async def _logged(redis_url: str, hooks: Sequence[Hook], keep: int) -> Logged:
    redis = create_redis(RedisSettings(url=redis_url))
    try:
        store = DeliveryStore(redis)
        latencies: list[float] = []
        failed = entries = 0
        for hook in hooks:
            for raw in await store.attempts(hook.campaign_id, hook.webhook_id, 0, keep):
                entry = orjson.loads(raw)
                entries += 1
                if not entry.get("success"):
                    failed += 1
                elif entry.get("trigger") == "event" and entry.get("latency_ms") is not None:
                    latencies.append(float(entry["latency_ms"]))
        return Logged(sorted(latencies), failed, entries)
    finally:
        await redis.aclose()


@dataclass(frozen=True)
class NotifierRun:
    delivered: Delivered
    verified: Verified
    logged: Logged
    wall: float  # notifier process start -> last distinct delivery, s
    to_first: float  # notifier process start -> first delivery, s
    alive: bool
    cpu: CpuUse | None
    profile: str


def _notifier_env(servers: Servers, args: argparse.Namespace) -> dict[str, str]:
    return service_env(servers, {"WEBHOOK_ALLOW_PRIVATE_TARGETS": "true", **args.env})


async def _follow(
    group: Started,
    servers: Servers,
    env: Mapping[str, str],
    receiver_base: str,
    receiver_pid: int,
    expected: int,
    give_up_after: float,
    profile: bool,
) -> tuple[Any, float, bool, CpuUse | None, str]:
    """Starts one notifier and watches the receiver's count until every delivery is in (and no
    more came for `QUIET_AFTER_ALL_S`), the time is up, or the notifier died. Returns the
    receiver's report, the start time, whether the notifier lives, its CPU use and profile."""
    async with aiohttp.ClientSession() as session:
        started_at = time.monotonic()
        notifier = start_service(group, "notifier", env)
        pids = {
            "notifier": notifier.pid,
            "receiver": receiver_pid,
            "redis": servers.redis.pid,
            "broker": servers.broker.pid,
            "bench (polls the receiver)": os.getpid(),
        }
        window: CpuWindow | None = None
        cpu: CpuUse | None = None
        spy = None
        count = 0
        last_change = started_at
        deadline = started_at + give_up_after
        while True:
            await asyncio.sleep(POLL_S)
            now = time.monotonic()
            seen = await _receiver_count(session, receiver_base)
            if seen != count:
                count, last_change = seen, now
            if count and window is None:
                window = CpuWindow.open(pids, now)
                if profile:
                    # Cut short below once every delivery is in.
                    spy = start_profile(group, "notifier", notifier.pid, give_up_after)
            if count >= expected and cpu is None and window is not None:
                cpu = window.close(now)
                stop_profile(spy)
            if count >= expected and now - last_change > QUIET_AFTER_ALL_S:
                break
            if now > deadline or not notifier.alive():
                break
        if cpu is None and window is not None:
            cpu = window.close(time.monotonic())
        stop_profile(spy)
        profile_text = await asyncio.to_thread(finish_profile, group, spy)
        alive = notifier.alive()
        report = await _receiver_report(session, receiver_base, bodies=True)
        group.stop(notifier)
        return report, started_at, alive, cpu, profile_text


# --- the bare client --------------------------------------------------------------------------


@dataclass(frozen=True)
class BareRun:
    delivered: Delivered
    latency_ms: list[float]  # sorted, every request
    answers: Counter[str]
    wall: float  # first request sent -> last distinct delivery, s
    cpu: CpuUse | None


async def _post_all(
    items: Sequence[tuple[str, str, bytes]],
    urls: Mapping[str, str],
    connections: int,
    concurrency: int,
    pids: Mapping[str, int],
) -> tuple[list[float], Counter[str], float, CpuUse]:
    """Posts every (path, webhook-id, body) to its URL from `concurrency` tasks over one pool of
    `connections`, the request as the notifier makes it bar the signature."""
    latencies: list[float] = []
    answers: Counter[str] = Counter()
    timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        todo = iter(items)

        async def worker() -> None:
            for path, webhook_id, body in todo:  # one iterator shared by every worker
                headers = {"Content-Type": "application/json", "webhook-id": webhook_id}
                started = time.perf_counter()
                try:
                    async with session.post(
                        urls[path],
                        data=body,
                        headers=headers,
                        timeout=timeout,
                        allow_redirects=False,
                    ) as response:
                        await response.read()
                        answers[str(response.status)] += 1
                except (aiohttp.ClientError, TimeoutError) as exc:
                    answers[type(exc).__name__] += 1
                latencies.append((time.perf_counter() - started) * 1000)

        began = time.monotonic()
        window = CpuWindow.open(pids, began)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu = window.close(time.monotonic())
    return sorted(latencies), answers, began, cpu


async def _bare(
    items: Sequence[tuple[str, str, bytes]],
    urls: Mapping[str, str],
    receiver_base: str,
    receiver_pid: int,
    args: argparse.Namespace,
) -> BareRun:
    pids = {"bench (bare client)": os.getpid(), "receiver": receiver_pid}
    latencies, answers, began, cpu = await _post_all(
        items, urls, _connections(args), args.bare_concurrency, pids
    )
    async with aiohttp.ClientSession() as session:
        report = await _receiver_report(session, receiver_base, bodies=False)
    delivered = _delivered(report, {(path, webhook_id) for path, webhook_id, _ in items}, 0)
    wall = delivered.last - began if delivered.last is not None else 0.0
    return BareRun(delivered, latencies, answers, wall, cpu)


# --- a round ----------------------------------------------------------------------------------


def _round(args: argparse.Namespace, profile: bool) -> tuple[NotifierRun, BareRun | None]:
    with started_processes("notifier") as group:
        servers = start_servers(group)
        ports = [free_port() for _ in range(args.ports)]
        receiver = group.start(
            "receiver",
            python_module("bench.notifier", "receive", "--ports", ",".join(map(str, ports))),
            service_env(servers, {}),
            port=ports[-1],
        )
        receiver_base = f"http://127.0.0.1:{ports[0]}"
        seeded = _prepare(servers, args, ports)
        expected = seeded.expected()
        report, started_at, alive, cpu, profile_text = uvloop.run(
            _follow(
                group,
                servers,
                _notifier_env(servers, args),
                receiver_base,
                receiver.pid,
                len(expected),
                args.timeout,
                profile,
            )
        )
        delivered = _delivered(report, expected, args.verify)
        keep = int(args.env.get(KEEP_ATTEMPTS_VARIABLE, DEFAULT_KEEP_ATTEMPTS))
        logged = uvloop.run(_logged(servers.redis_url, seeded.hooks, keep))
        run = NotifierRun(
            delivered=delivered,
            verified=_verify(report, delivered.sample, seeded.hooks),
            logged=logged,
            wall=delivered.last - started_at if delivered.last is not None else 0.0,
            to_first=delivered.first - started_at if delivered.first is not None else 0.0,
            alive=alive,
            cpu=cpu,
            profile=profile_text,
        )
        print(f"    logs: {group.logs}", flush=True)
        if not alive:
            print("    the notifier exited; the end of its log:\n" + group.log_tail("notifier"))
        _print_notifier(run)
        if not delivered.bodies:
            print("    bare aiohttp: skipped (the notifier delivered nothing to post again)")
            return run, None
        uvloop.run(_receiver_reset(receiver_base))
        urls = {hook.path: hook.url for hook in seeded.hooks}
        print("    bare aiohttp client, the same bodies", flush=True)
        bare = uvloop.run(_bare(delivered.bodies, urls, receiver_base, receiver.pid, args))
        _print_bare(bare)
        return run, bare


# --- printing ---------------------------------------------------------------------------------


def _latency(values: Sequence[float]) -> str:
    if not values:
        return "latency n/a"
    return (
        f"latency p50 {percentile(values, 0.5):.1f} ms, p99 {percentile(values, 0.99):.1f} ms, "
        f"max {percentile(values, 1.0):.1f} ms"
    )


def _check_line(delivered: Delivered) -> str:
    return (
        f"delivered {delivered.distinct:,} of {delivered.expected:,}"
        + (
            f", {delivered.expected - delivered.distinct:,} MISSING"
            if not delivered.complete
            else ""
        )
        + f"; {delivered.received:,} requests, {delivered.duplicates:,} duplicates (same path "
        f"and webhook-id), {delivered.unexpected:,} unexpected"
    )


def _print_notifier(run: NotifierRun) -> None:
    d = run.delivered
    logged = run.logged
    print(
        f"    {d.rate:,.0f} deliveries/s (10-90% {d.steady_rate:,.0f}) over {d.span:.2f} s; "
        f"wall {run.wall:.2f} s from the notifier's start ({run.to_first:.2f} s to its first "
        f"delivery); {_latency(logged.latency_ms)} (deliveries log: {logged.entries:,} "
        f"entries, {logged.failed:,} without a 2xx)\n"
        f"    {_check_line(d)}\n"
        f"    signatures: {run.verified.checked - len(run.verified.failures):,} of "
        f"{run.verified.checked:,} sampled verify (standardwebhooks)",
        flush=True,
    )
    for failure in run.verified.failures[:10]:
        print(f"      BAD {failure}")
    if run.cpu is not None:
        print(f"    {run.cpu.line()}")


def _print_bare(run: BareRun) -> None:
    d = run.delivered
    answers = ", ".join(f"{answer} {n:,}" for answer, n in run.answers.most_common())
    print(
        f"    {d.rate:,.0f} deliveries/s (10-90% {d.steady_rate:,.0f}) over {d.span:.2f} s; "
        f"wall {run.wall:.2f} s from the first request; {_latency(run.latency_ms)}\n"
        f"    {_check_line(d)}; answers {answers}",
        flush=True,
    )
    if run.cpu is not None:
        print(f"    {run.cpu.line()}")


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def _median_by_rate(runs: Sequence[Any]) -> Any:
    return sorted(runs, key=lambda r: r.delivered.rate)[(len(runs) - 1) // 2]


def _complete(run: NotifierRun) -> bool:
    d = run.delivered
    return d.complete and not d.duplicates and not d.unexpected and not run.verified.failures


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    hooks = args.campaigns * args.webhooks
    print(f"notifier: {DESCRIPTION}")
    settings = " ".join(f"{k}={v}" for k, v in sorted(args.env.items())) or "none"
    print(
        f"  {args.events:,} {EVENT_TYPE.value} events over {args.campaigns} campaigns × "
        f"{args.webhooks} webhook(s) ({hooks} webhooks on {args.ports} receiver port(s)): "
        f"{args.events * args.webhooks:,} deliveries; {args.rounds} round(s), medians printed; "
        f"notifier settings: {settings}; bare client: {_connections(args)} connections, "
        f"{args.bare_concurrency} tasks"
    )
    print(f"  before: {load_line()}", flush=True)
    notifier_runs: list[NotifierRun] = []
    bare_runs: list[BareRun] = []
    for round_number in range(1, args.rounds + 1):
        print(f"  round {round_number}: notifier", flush=True)
        run, bare = _round(args, args.profile and round_number == 1)
        notifier_runs.append(run)
        if bare is not None:
            bare_runs.append(bare)

    rate = _median([r.delivered.rate for r in notifier_runs])
    bare_rate = _median([r.delivered.rate for r in bare_runs])
    share = rate / bare_rate if bare_rate else 0.0
    median_run: NotifierRun = _median_by_rate(notifier_runs)
    rows = [
        [
            "notifier, signed",
            f"{rate:,.0f}",
            f"{_median([r.delivered.steady_rate for r in notifier_runs]):,.0f}",
            f"{percentile(median_run.logged.latency_ms, 0.5):.1f}",
            f"{percentile(median_run.logged.latency_ms, 0.99):.1f}",
            f"{_median([r.wall for r in notifier_runs]):.2f}",
            f"{median_run.delivered.distinct:,}",
            f"{share:.1%}" if bare_rate else "n/a",
        ]
    ]
    if bare_runs:
        median_bare: BareRun = _median_by_rate(bare_runs)
        rows.append(
            [
                "bare aiohttp, unsigned",
                f"{bare_rate:,.0f}",
                f"{_median([r.delivered.steady_rate for r in bare_runs]):,.0f}",
                f"{percentile(median_bare.latency_ms, 0.5):.1f}",
                f"{percentile(median_bare.latency_ms, 0.99):.1f}",
                f"{_median([r.wall for r in bare_runs]):.2f}",
                f"{median_bare.delivered.distinct:,}",
                "100.0%",
            ]
        )
    print()
    print("Webhook deliveries to one local receiver (answers 200 at once), as it received them")
    print(
        table(
            ["", "deliveries/s", "10-90%/s", "p50 ms", "p99 ms", "wall s", "deliveries", "of bare"],
            rows,
        )
    )
    print(
        "  notifier: one process consuming the events from Kafka, reading each campaign's "
        "webhooks and the call from Redis, storing the delivery and its attempt, signing "
        "(Standard Webhooks) and posting; latency is its own per request, from its deliveries "
        "log.\n"
        f"  bare aiohttp: one ClientSession in the benchmark's process, {_connections(args)} "
        f"connections, {args.bare_concurrency} tasks, posting the notifier's bodies unsigned "
        "to the same paths of the same receiver; latency per request, client-side.\n"
        "  deliveries/s: distinct (path, webhook-id) first to last received; wall s: the "
        "notifier's from process start, the bare client's from its first request"
    )
    complete = all(_complete(r) for r in notifier_runs)
    met = bool(bare_rate) and share >= TARGET_SHARE and complete
    print(
        f"target: ≥{TARGET_SHARE:.0%} of the bare client: {'met' if met else 'not met'} "
        f"({share:.1%}" + ("" if complete else "; not every delivery made once, signed") + ")"
    )
    print(f"  after: {load_line()}")
    if notifier_runs[0].profile:
        print("\nprofile of the notifier (py-spy; this round's figures are perturbed):")
        print(notifier_runs[0].profile)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["receive"]:
        raise SystemExit(receive_main(sys.argv[2:]))
    raise SystemExit(main(sys.argv[1:]))
