"""The Redis client's cost per script call, on one Redis server and on a three-master Redis
Cluster, side by side, with plain redis-py on the one server as the baseline.

One client process, `--concurrency` (64) callers each calling the same kind of script over and
over: 3 keys of one hash tag and 16 arguments, tags spread so that on the cluster every node
takes a share. For each client and server it prints calls per second and the client process's
CPU per call (`time.process_time`, so the servers' own work is not counted), the median of
`--rounds`; then the cluster's CPU per call as a multiple of the one server's for the project's
client (the target: within 2×). (redis-py 8.1's own asyncio cluster client is left out: with
64 concurrent callers it fails at once, writing to a connection it has already closed.)

Printed, never asserted. Starts its own redis-server and cluster on free loopback ports.

python -m bench redis_client [--seconds 4] [--rounds 3] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import uvloop
from redis.asyncio import Redis

from bench.figures import load_line, table
from bench.servers import started_processes
from devstack.cluster import LocalCluster
from devstack.processes import free_port, redis_command
from shared.redis_client import create_redis
from shared.settings import RedisSettings

DESCRIPTION = "client CPU per script call, one Redis vs a 3-master cluster, vs plain redis-py"

# Three keys, sixteen arguments: the shape of the system's busiest scripts.
SCRIPT = """
redis.call('HSET', KEYS[1], 'a', ARGV[1], 'b', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return redis.call('HINCRBY', KEYS[3], 'n', 1)
"""
ARGS = [f"value-{i:02d}" for i in range(16)]
ARGS[2] = "1700000000000"
TAGS = 4096


@dataclass(frozen=True)
class Figure:
    calls_per_second: float
    cpu_us_per_call: float


async def _measure(
    call: Callable[[int], Awaitable[Any]], concurrency: int, seconds: float
) -> Figure:
    stop = False
    done = 0

    async def caller(start: int) -> None:
        nonlocal done
        n = start
        while not stop:
            await call(n)
            n += concurrency
            done += 1

    tasks = [asyncio.ensure_future(caller(i)) for i in range(concurrency)]
    await asyncio.sleep(0.5)  # warm: connections open, scripts loaded
    done = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.sleep(seconds)
    count, wall, cpu = done, time.perf_counter() - wall0, time.process_time() - cpu0
    stop = True
    await asyncio.gather(*tasks)
    return Figure(count / wall, cpu / count * 1e6)


def _client(kind: str, url: str) -> Redis:
    if kind == "project":
        return create_redis(RedisSettings(url=url, max_connections=64))
    return Redis.from_url(url, decode_responses=True, max_connections=64)


async def _round(kind: str, url: str, concurrency: int, seconds: float) -> Figure:
    redis = _client(kind, url)
    script = redis.register_script(SCRIPT)

    async def call(n: int) -> Any:
        tag = f"{{bench:{n % TAGS}}}"
        return await script(keys=[f"{tag}:h", f"{tag}:z", f"{tag}:s"], args=ARGS)

    try:
        return await _measure(call, concurrency, seconds)
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench redis_client", description=__doc__)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    options = parser.parse_args(argv)

    with started_processes("redis-client") as group:
        port = free_port()
        group.start("redis", redis_command(port), port=port)
        single = f"redis://127.0.0.1:{port}/0"
        cluster = LocalCluster.start(folder=group.logs / "cluster")
        try:
            runs = [
                ("project", "one server", single),
                ("redis-py", "one server", single),
                ("project", "cluster", cluster.url),
            ]
            results: dict[tuple[str, str], list[Figure]] = {}
            print(load_line(), flush=True)
            for round_index in range(options.rounds):
                for kind, name, url in runs if round_index % 2 == 0 else runs[::-1]:
                    figure = uvloop.run(_round(kind, url, options.concurrency, options.seconds))
                    results.setdefault((kind, name), []).append(figure)
                    print(
                        f"round {round_index + 1}: {kind:8} on {name:10} "
                        f"{figure.calls_per_second:9,.0f} calls/s "
                        f"{figure.cpu_us_per_call:7.1f} µs CPU/call",
                        flush=True,
                    )
        finally:
            cluster.close()

    def median(kind: str, name: str) -> Figure:
        figures = results[(kind, name)]
        return Figure(
            statistics.median(f.calls_per_second for f in figures),
            statistics.median(f.cpu_us_per_call for f in figures),
        )

    rows = [
        [kind, name, f"{figure.calls_per_second:,.0f}", f"{figure.cpu_us_per_call:.1f}"]
        for kind, name, _ in runs
        for figure in [median(kind, name)]
    ]
    print()
    print(
        f"medians of {options.rounds} rounds, {options.concurrency} concurrent callers, "
        "3 keys + 16 arguments per call:"
    )
    print(
        table(
            ["client", "server", "calls/s", "client µs CPU/call"],
            rows,
        )
    )
    one = median("project", "one server")
    many = median("project", "cluster")
    plain = median("redis-py", "one server")
    ratio = many.cpu_us_per_call / one.cpu_us_per_call
    print(
        f"project client, cluster vs one server: {ratio:.2f}× the CPU per call "
        f"(target: within 2×, {'met' if ratio <= 2 else 'NOT met'}); "
        f"plain redis-py on one server: {plain.cpu_us_per_call / one.cpu_us_per_call:.1f}× "
        "the project client's"
    )
    return 0
