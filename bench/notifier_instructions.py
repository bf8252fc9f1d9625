"""Webhook delivery, counted in instructions: what one signed delivery costs the notifier
process against what one unsigned POST of the same body costs a bare aiohttp client, by
valgrind's callgrind.

Unlike deliveries/s, these figures barely move with whatever else the machine does, so they
show what a change to the delivery path's CPU work is worth. Each side is started twice under
callgrind, each time with a broker, Redis and receiver of its own: once making `--events`
deliveries (events published before it starts, one webhook per campaign, as `bench notifier`
seeds them), once making none and left running as long; the difference over `--events` is
one delivery's cost. The notifier's includes consuming the event from Kafka, reading the
webhooks and the call, storing the delivery, signing, posting and recording the attempt; the
bare client's only the POST (64 tasks on a pool of 64 connections).

Under callgrind a process runs some 50 times slower while Redis, the broker and the receiver
do not, so replies come back sooner relative to the work: fewer commands share a round trip
than at full speed, and the I/O part is counted on the high side.

python -m bench notifier_instructions [--events 2000] [--campaigns 10]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import signal
import sys
import time
from collections.abc import Sequence

import aiohttp
import uvloop

from bench.figures import table
from bench.notifier import (
    TARGET_SHARE,
    WEBHOOK_TIMEOUT_S,
    _publish,
    _receiver_count,
    _seed,
)
from bench.servers import Started, python_module, service_env, start_servers, started_processes
from devstack.processes import Managed, free_port

DESCRIPTION = "instructions per signed webhook delivery, notifier vs a bare aiohttp client"
_CONNECTIONS = 64
_POLL_S = 0.5
_GIVE_UP_S = 1_800.0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench notifier_instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=2_000, help="deliveries counted")
    parser.add_argument("--campaigns", type=int, default=10)
    args = parser.parse_args(argv)
    # What `bench.notifier._seed` reads.
    args.webhooks = 1
    args.all_call_events = False
    return args


def _collected(group: Started, name: str) -> int:
    found = re.search(r"Collected : (\d+)", group.log_tail(name))
    if found is None:
        raise RuntimeError(f"{name}: no callgrind total in its log\n{group.log_tail(name)}")
    return int(found.group(1))


def _callgrind(target: Sequence[str]) -> list[str]:
    return ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *target]


async def _wait_for_count(base: str, expected: int, alive: Managed) -> float:
    """Seconds until the receiver has `expected` requests."""
    began = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while await _receiver_count(session, base) < expected:
            if time.monotonic() - began > _GIVE_UP_S or not alive.alive():
                raise RuntimeError(f"gave up waiting for {expected} requests at {base}")
            await asyncio.sleep(_POLL_S)
    return time.monotonic() - began


async def _ready(url: str, alive: Managed, deadline_s: float = 600.0) -> None:
    """Waits for a service under callgrind to answer its readiness check."""
    began = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() - began > deadline_s or not alive.alive():
                raise RuntimeError(f"{url} never answered 200")
            await asyncio.sleep(_POLL_S)


def _notifier_run(args: argparse.Namespace, events: int, hold_s: float | None) -> tuple[int, float]:
    """(instructions, seconds from start to the last delivery) of one notifier under
    callgrind making `events` deliveries; with none it is left running `hold_s`."""
    with started_processes("notifier-instr") as group:
        servers = start_servers(group)
        ports = [free_port()]
        group.start(
            "receiver",
            python_module("bench.notifier", "receive", "--ports", str(ports[0])),
            service_env(servers, {}),
            port=ports[0],
        )
        base = f"http://127.0.0.1:{ports[0]}"
        seeding = argparse.Namespace(**{**vars(args), "events": events})
        seeded = uvloop.run(_seed(servers.redis_url, seeding, ports))
        if events:
            uvloop.run(_publish(servers.kafka, seeded.events))
        ops_port = free_port()
        env = service_env(
            servers,
            {
                "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
                "NOTIFIER_HTTP_PORT": str(ops_port),
                # Little work while idle (fewer empty fetches, the queue looked at seldom:
                # the consumer wakes the workers itself): the idle run's count is taken off
                # the busy run's, which has idle stretches of its own.
                "KAFKA_FETCH_MAX_WAIT_MS": "500",
                "NOTIFIER_POLL_MS": "10000",
            },
        )
        name = f"notifier-{events}"
        notifier = group.start(name, _callgrind(python_module("services.notifier")), env)
        began = time.monotonic()
        if events:
            uvloop.run(_wait_for_count(base, len(seeded.expected()), notifier))
        else:
            uvloop.run(_ready(f"http://127.0.0.1:{ops_port}/readyz", notifier))
            time.sleep(max(0.0, (hold_s or 0.0) - (time.monotonic() - began)))
        took = time.monotonic() - began
        assert notifier.process is not None
        notifier.process.send_signal(signal.SIGINT)
        notifier.process.wait(timeout=600)
        return _collected(group, name), took


def _bare_run(events: int, hold_s: float | None) -> tuple[int, float]:
    """(instructions, seconds) of the bare client under callgrind posting `events` bodies."""
    with started_processes("bare-instr") as group:
        servers = start_servers(group)
        port = free_port()
        group.start(
            "receiver",
            python_module("bench.notifier", "receive", "--ports", str(port)),
            service_env(servers, {}),
            port=port,
        )
        url = f"http://127.0.0.1:{port}/hooks/0/0"
        name = f"bare-{events}"
        command = python_module(
            "bench.notifier_instructions", "post", url, str(events), str(hold_s or 0.0)
        )
        process = group.start(name, _callgrind(command), service_env(servers, {}))
        began = time.monotonic()
        assert process.process is not None
        process.process.wait(timeout=_GIVE_UP_S)
        return _collected(group, name), time.monotonic() - began


async def _post(url: str, count: int, hold_s: float) -> None:
    """The bare client: `count` POSTs of a delivery-sized body, then idles `hold_s`."""
    body = b'{"type":"campaign_call.completed","data":{"id":"' + b"x" * 600 + b'"}}'
    timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=_CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        todo = iter(range(count))

        async def worker() -> None:
            for index in todo:
                headers = {"Content-Type": "application/json", "webhook-id": f"msg_{index}"}
                async with session.post(
                    url, data=body, headers=headers, timeout=timeout, allow_redirects=False
                ) as response:
                    await response.read()

        await asyncio.gather(*(worker() for _ in range(_CONNECTIONS)))
    await asyncio.sleep(hold_s)


def post_main(argv: list[str]) -> int:
    """python -m bench.notifier_instructions post URL COUNT HOLD_S: the bare client."""
    url, count, hold = argv
    uvloop.run(_post(url, int(count), float(hold)))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    print(f"notifier_instructions: {DESCRIPTION}")
    if shutil.which("valgrind") is None:
        print("  skipped: valgrind is not installed (Debian: apt-get install valgrind)")
        return 0
    print(f"  {args.events:,} deliveries to {args.campaigns} webhooks, against a run with none")
    rows = []
    per_delivery: dict[str, float] = {}
    notifier_with, took = _notifier_run(args, args.events, None)
    notifier_without, _ = _notifier_run(args, 0, took)
    bare_with, bare_took = _bare_run(args.events, None)
    bare_without, _ = _bare_run(0, bare_took)
    for side, with_events, without, span in (
        ("notifier (signed)", notifier_with, notifier_without, took),
        ("bare aiohttp", bare_with, bare_without, bare_took),
    ):
        per_delivery[side] = (with_events - without) / args.events
        rows.append(
            [side, f"{per_delivery[side]:,.0f}", f"{with_events:,}", f"{without:,}", f"{span:.0f}"]
        )
    print()
    print(table(["", "instr/delivery", "with deliveries", "with none", "run s"], rows))
    share = per_delivery["bare aiohttp"] / per_delivery["notifier (signed)"]
    print(
        f"\nratio bare/notifier: {share:.1%} (the share of the bare client's rate the notifier "
        f"would reach on CPU alone; target ≥{TARGET_SHARE:.0%})"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "post":
        sys.exit(post_main(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
