"""python -m bench (`make bench`): lists and runs the benchmarks.

python -m bench                 runs every benchmark with its defaults, one after another
python -m bench --list          lists them
python -m bench NAME [ARGS...]  runs one; `python -m bench NAME --help` shows its options

Benchmarks print figures (throughput, latency percentiles, the same figure for a bare baseline
in the same run, and the ratio); they never assert timings. Each starts its own broker and
Redis on free loopback ports and stops every process it started.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from bench import (
    calls_listing,
    dialer,
    ingest_instructions,
    ingest_make_call,
    notifier,
    notifier_instructions,
    pipeline,
    redis_client,
    scheduler_release,
)


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    run: Callable[[list[str] | None], int]


BENCHMARKS = (
    Benchmark("ingest_make_call", ingest_make_call.DESCRIPTION, ingest_make_call.main),
    Benchmark("scheduler_release", scheduler_release.DESCRIPTION, scheduler_release.main),
    Benchmark("dialer", dialer.DESCRIPTION, dialer.main),
    Benchmark("notifier", notifier.DESCRIPTION, notifier.main),
    Benchmark("ingest_instructions", ingest_instructions.DESCRIPTION, ingest_instructions.main),
    Benchmark(
        "notifier_instructions", notifier_instructions.DESCRIPTION, notifier_instructions.main
    ),
    Benchmark("redis_client", redis_client.DESCRIPTION, redis_client.main),
    Benchmark("calls_listing", calls_listing.DESCRIPTION, calls_listing.main),
    Benchmark("pipeline", pipeline.DESCRIPTION, pipeline.main),
)


def main(argv: list[str]) -> int:
    by_name = {b.name: b for b in BENCHMARKS}
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv and argv[0] in ("-l", "--list"):
        for benchmark in BENCHMARKS:
            print(f"{benchmark.name:20} {benchmark.description}")
        return 0
    if argv:
        chosen = by_name.get(argv[0])
        if chosen is None:
            print(f"unknown benchmark {argv[0]!r}; one of: {', '.join(by_name)}", file=sys.stderr)
            return 2
        return chosen.run(argv[1:])
    status = 0
    for benchmark in BENCHMARKS:
        print(f"=== {benchmark.name}", flush=True)
        status = benchmark.run([]) or status
        print(flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
