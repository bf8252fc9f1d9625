"""Make Campaign Call under load: one ingest process (real Redis and broker) against a bare
aiohttp handler that parses the same JSON and answers 201, driven the same way in one run.

Target (the issue's): the real endpoint reaches at least 35% of the bare handler's throughput,
with p99 under 50 ms. Printed, never asserted.

python -m bench ingest_make_call [--seconds 15] [--connections 64] [--loadgen auto|wrk|python]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from typing import Any

import aiohttp

from bench.figures import CpuUse, CpuWindow, load_line, table
from bench.loadgen import (
    MEASURED_START,
    NUMBER_SPACE,
    WARMUP_START,
    WRK_THREAD_STRIDE,
    LoadResult,
    Target,
    check_numbers,
    choose_tool,
    start_load,
)
from bench.profiling import finish_profile, start_profile
from bench.servers import (
    Servers,
    Started,
    python_module,
    read_topic,
    service_env,
    start_servers,
    start_service,
    started_processes,
)
from devstack.processes import free_port
from shared import keys
from shared.topics import CALLS_REQUESTED
from tests.support import ALWAYS_OPEN

DESCRIPTION = "POST .../call on one ingest process vs a bare aiohttp 201 handler"
TOKEN = "bench-token"
ENVIRONMENT = "bench"
TARGET_RATIO = 0.35
TARGET_P99_MS = 50.0
# Numbers each measured round may use: wrk's two threads take one stride each.
_ROUND_SPAN = 2 * WRK_THREAD_STRIDE
MAX_ROUNDS = (NUMBER_SPACE - MEASURED_START) // _ROUND_SPAN


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench ingest_make_call",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="each measured run")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured run before")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--rounds", type=int, default=1, help=f"measured runs per side, alternating (≤{MAX_ROUNDS})"
    )
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the ingest process in its last round"
    )
    args = parser.parse_args(argv)
    args.rounds = max(1, min(args.rounds, MAX_ROUNDS))
    return args


async def create_campaign(base_url: str) -> str:
    """An agent and an always-open active campaign whose limits never bind."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    api = f"{base_url}/api/v1"
    async with aiohttp.ClientSession(headers=headers) as session:

        async def post(method: str, path: str, body: dict[str, Any], expect: int) -> Any:
            async with session.request(method, f"{api}{path}", json=body) as response:
                answer = await response.json(content_type=None)
                if response.status != expect:
                    raise RuntimeError(f"{method} {path}: {response.status} {answer}")
                return answer["data"]

        agent = await post("POST", "/agents", {"name": "Bench", "prompt": "Hello"}, 201)
        campaign = await post(
            "POST",
            "/campaigns",
            {
                **ALWAYS_OPEN,
                "name": "Bench",
                "agent_id": agent["id"],
                "max_concurrent_calls": 10_000,
                "calls_per_minute": 100_000,
            },
            201,
        )
        await post("PATCH", f"/campaigns/{campaign['id']}/status", {"status": "active"}, 200)
        return str(campaign["id"])


def _run(
    group: Started,
    tool: str,
    target: Target,
    pids: dict[str, int],
    seconds: float,
    connections: int,
    start: int,
    label: str,
    profile_pid: int | None = None,
) -> tuple[LoadResult, CpuUse, str]:
    load = start_load(group, tool, target, seconds, connections, start, label)
    window = CpuWindow.open({**pids, "load generator": load.pid}, time.monotonic())
    profile = (
        start_profile(group, f"{target.name}-{label}", profile_pid, seconds - 1)
        if profile_pid is not None
        else None
    )
    # Sampled just before the generator ends: /proc forgets a process once it has exited.
    time.sleep(max(0.0, load.ends_at - 0.25 - time.monotonic()))
    cpu = window.close(time.monotonic())
    result = load.result()
    return result, cpu, finish_profile(group, profile)


def _row(name: str, result: LoadResult) -> list[str]:
    return [
        name,
        f"{result.rps:,.0f}",
        f"{result.p50_ms:.2f}",
        f"{result.p99_ms:.2f}",
        f"{result.max_ms:.1f}",
        f"{result.requests:,}",
        str(result.unexpected),
        str(result.errors),
    ]


def _stored_calls(servers: Servers, campaign_id: str) -> int:
    import redis

    client = redis.Redis.from_url(servers.redis_url)
    try:
        return int(client.zcard(keys.campaign_calls(campaign_id)))
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    tool = choose_tool(args.loadgen)
    # The generator is a bijection by construction; a sample is checked against phonenumbers.
    sample = random.Random(7).sample(range(NUMBER_SPACE), 2000)
    check_numbers([*sample, WARMUP_START, MEASURED_START, NUMBER_SPACE - 1])
    print(f"ingest_make_call: {DESCRIPTION}")
    print(
        f"  {args.connections} connections, {args.seconds:g} s measured per run "
        f"(after a {args.warmup:g} s warm-up), {args.rounds} round(s), load generator: "
        + (
            "wrk -t2"
            if tool == "wrk"
            else f"Python aiohttp client, {args.connections} workers in one process"
            + (" (wrk is not installed)" if args.loadgen == "auto" else "")
        )
    )
    print(f"  before: {load_line()}", flush=True)
    with started_processes("ingest") as group:
        servers = start_servers(group)
        api_port = free_port()
        env = service_env(
            servers,
            {
                "API_HOST": "127.0.0.1",
                "API_PORT": str(api_port),
                "API_TOKENS": f"{TOKEN}:{ENVIRONMENT}",
                "DEV_API_TOKEN": "",
                "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            },
        )
        ingest = start_service(group, "ingest", env, api_port)
        bare_port = free_port()
        bare = group.start(
            "bare",
            python_module("bench.bare_app", "--port", str(bare_port), "--token", TOKEN),
            env,
            bare_port,
        )
        campaign_id = asyncio.run(create_campaign(f"http://127.0.0.1:{api_port}"))
        path = f"/api/v1/campaigns/{campaign_id}/call"
        real = Target("ingest", f"http://127.0.0.1:{api_port}{path}", TOKEN)
        baseline = Target("bare", f"http://127.0.0.1:{bare_port}{path}", TOKEN)
        infra = {"redis": servers.redis.pid, "broker": servers.broker.pid}
        sides = [(real, {"ingest": ingest.pid, **infra}), (baseline, {"bare": bare.pid, **infra})]

        answered_201 = 0
        for target, pids in sides:
            warm, _, _ = _run(
                group, tool, target, pids, args.warmup, args.connections, WARMUP_START, "warmup"
            )
            if target is real:
                answered_201 += warm.requests - warm.unexpected
        results: dict[str, list[LoadResult]] = {"ingest": [], "bare": []}
        cpu: dict[str, list[CpuUse]] = {"ingest": [], "bare": []}
        profiles: list[str] = []
        for round_no in range(args.rounds):
            start = MEASURED_START + round_no * _ROUND_SPAN
            last = round_no == args.rounds - 1
            for target, pids in sides:
                profile_pid = ingest.pid if args.profile and last and target is real else None
                result, used, profile = _run(
                    group,
                    tool,
                    target,
                    pids,
                    args.seconds,
                    args.connections,
                    start,
                    f"round{round_no}",
                    profile_pid,
                )
                results[target.name].append(result)
                cpu[target.name].append(used)
                if profile:
                    profiles.append(profile)
                if target is real:
                    answered_201 += result.requests - result.unexpected
        # Requests still in flight when the generator stopped are answered after it: let them.
        time.sleep(2)
        stored = _stored_calls(servers, campaign_id)
        published = asyncio.run(read_topic(servers.kafka, CALLS_REQUESTED, stored, 60)).messages
        print(f"  logs: {group.logs}")

    header = ["", "req/s", "p50 ms", "p99 ms", "max ms", "requests", "non-201", "errors"]
    rows = []
    for round_no in range(args.rounds):
        suffix = f" #{round_no + 1}" if args.rounds > 1 else ""
        rows.append(_row(f"ingest (real){suffix}", results["ingest"][round_no]))
        rows.append(_row(f"bare aiohttp{suffix}", results["bare"][round_no]))
    print()
    print(table(header, rows))
    real_rps = statistics.median(r.rps for r in results["ingest"])
    bare_rps = statistics.median(r.rps for r in results["bare"])
    real_p99 = statistics.median(r.p99_ms for r in results["ingest"])
    bare_p99 = statistics.median(r.p99_ms for r in results["bare"])
    ratio = real_rps / bare_rps if bare_rps else 0.0
    print()
    print(
        f"ratio real/bare: throughput {ratio:.1%} ({real_rps:,.0f} / {bare_rps:,.0f} req/s), "
        f"p99 {real_p99:.2f} ms vs {bare_p99:.2f} ms ({real_p99 / max(bare_p99, 1e-9):.1f}x)"
    )
    met_ratio = ratio >= TARGET_RATIO
    met_p99 = real_p99 < TARGET_P99_MS
    print(
        f"target: ≥{TARGET_RATIO:.0%} of bare throughput: {'met' if met_ratio else 'NOT met'}; "
        f"p99 < {TARGET_P99_MS:g} ms: {'met' if met_p99 else 'NOT met'}"
    )
    for name in ("ingest", "bare"):
        for used in cpu[name]:
            print(f"  during {name}: {used.line()}")
            server = used.per_process[name]
            if server < 0.75 and used.per_process["load generator"] > server:
                print(
                    f"  WARNING: the load generator used more CPU than {name} did: it, not "
                    "the server, set this figure; the ratio is not a measure of the server"
                )
    print(
        f"cross-check: 201 answers counted by the load generator {answered_201:,}; calls stored "
        f"in Redis {stored:,}; messages on {CALLS_REQUESTED} {published:,}"
    )
    print(f"  after: {load_line()}")
    for profile in profiles:
        print("\nprofile of the ingest process (py-spy; this run's figures are perturbed):")
        print(profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
