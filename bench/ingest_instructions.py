"""Make Campaign Call, counted in instructions: what one request costs the ingest process
against what it costs the bare aiohttp handler, by valgrind's callgrind.

Unlike req/s, these figures barely move between runs whatever else the machine does (within
about 1%: how replies batch still varies a little), so they show what a change to the call
path's CPU work is worth. Each side is started twice under
callgrind: once answering `--requests` calls (64 at a time, from a client outside the counted
process), once answering none; the difference over `--requests` is one request's cost.

Under callgrind the service runs some 50 times slower while Redis and the broker do not, so
their replies come back sooner relative to the work: fewer commands and records share a
round trip than at full speed, and the I/O part is counted on the high side.

With `--metrics off` the service runs without its request metrics and access lines
(`bench.ingest_unmetered`): against a run with them on, what they cost a request.

python -m bench ingest_instructions [--requests 2000] [--metrics on|off]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import signal

import aiohttp

from bench.figures import table
from bench.ingest_make_call import ENVIRONMENT, TARGET_RATIO, TOKEN, create_campaign
from bench.loadgen import body_for
from bench.servers import (
    Servers,
    Started,
    python_module,
    service_env,
    start_servers,
    started_processes,
)
from devstack.processes import free_port, wait_for_port

DESCRIPTION = "instructions per POST .../call, ingest vs the bare handler (callgrind)"
_CONNECTIONS = 64
_RUN_SPAN = 200_000  # number indexes each counted run may use, so no run repeats another's


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench ingest_instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=2_000, help=f"≤{_RUN_SPAN}")
    parser.add_argument(
        "--metrics",
        choices=("on", "off"),
        default="on",
        help="off: the service without its request metrics and access lines",
    )
    args = parser.parse_args(argv)
    args.requests = max(1, min(args.requests, _RUN_SPAN))
    return args


async def _drive(base_url: str, campaign_id: str, first: int, requests: int) -> int:
    """Sends `requests` calls to distinct numbers; returns how many were not answered 201."""
    url = f"{base_url}/api/v1/campaigns/{campaign_id}/call"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    numbers = iter(range(first, first + requests))
    unexpected = 0
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            nonlocal unexpected
            for number in numbers:
                async with session.post(url, data=body_for(number), headers=headers) as response:
                    await response.read()
                    unexpected += response.status != 201

        await asyncio.gather(*(worker() for _ in range(_CONNECTIONS)))
    return unexpected


def _count(
    group: Started, servers: Servers, bare: bool, first: int, requests: int, metrics: bool
) -> tuple[int, int]:
    """(instructions the process executed, answers other than 201) for one counted run."""
    port = free_port()
    name = f"{'bare' if bare else 'ingest'}-{first}-{requests}"
    target = (
        python_module("bench.bare_app", "--port", str(port), "--token", TOKEN)
        if bare
        else python_module("services.ingest" if metrics else "bench.ingest_unmetered")
    )
    env = service_env(
        servers,
        {"API_PORT": str(port), "API_TOKENS": f"{TOKEN}:{ENVIRONMENT}", "DEV_API_TOKEN": ""},
    )
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *target]
    process = group.start(name, command, env)
    assert process.process is not None
    wait_for_port("127.0.0.1", port, 300, process.process)
    base_url = f"http://127.0.0.1:{port}"
    campaign_id = "any" if bare else asyncio.run(create_campaign(base_url))
    unexpected = asyncio.run(_drive(base_url, campaign_id, first, requests)) if requests else 0
    process.process.send_signal(signal.SIGINT)
    process.process.wait(timeout=300)
    group.stop(process)
    found = re.search(r"Collected : (\d+)", group.log_tail(name))
    if found is None:
        raise RuntimeError(f"{name}: no callgrind total in its log\n{group.log_tail(name)}")
    return int(found.group(1)), unexpected


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    print(f"ingest_instructions: {DESCRIPTION}")
    if shutil.which("valgrind") is None:
        print("  skipped: valgrind is not installed (Debian: apt-get install valgrind)")
        return 0
    print(
        f"  {args.requests:,} requests, {_CONNECTIONS} at a time, against a run with none; "
        f"request metrics and access lines {args.metrics}"
    )
    with started_processes("instructions") as group:
        servers = start_servers(group)
        rows = []
        per_request: dict[bool, float] = {}
        for run, bare in enumerate((False, True)):
            metered = args.metrics == "on"
            with_requests, unexpected = _count(
                group, servers, bare, 2 * run * _RUN_SPAN, args.requests, metered
            )
            without, _ = _count(group, servers, bare, (2 * run + 1) * _RUN_SPAN, 0, metered)
            per_request[bare] = (with_requests - without) / args.requests
            rows.append(
                [
                    "bare aiohttp" if bare else f"ingest (metrics {args.metrics})",
                    f"{per_request[bare]:,.0f}",
                    f"{with_requests:,}",
                    f"{without:,}",
                    str(unexpected),
                ]
            )
    print()
    print(table(["", "instr/request", "with requests", "with none", "non-201"], rows))
    ratio = per_request[True] / per_request[False]
    print(
        f"\nratio bare/real: {ratio:.1%} (the share of the bare handler's rate the real "
        f"endpoint would reach on CPU alone; target ≥{TARGET_RATIO:.0%}: "
        f"{'met' if ratio >= TARGET_RATIO else 'NOT met'})"
    )
    return 0
