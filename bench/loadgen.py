"""HTTP load for the API benchmarks: `wrk` when installed, else a Python client process.

Both post the same Make Campaign Call body to one URL over a fixed number of keep-alive
connections for a fixed time, each request with its own valid US number, and report requests,
latency percentiles and the answers that were not the expected status.

python -m bench.loadgen URL --token T --seconds S --connections C --start I --expect 201
runs the Python generator (the fallback) and prints one `BENCH_RESULT {json}` line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop

from bench.figures import percentile
from bench.servers import Started, python_module

# Numbers are drawn from a bijection of an index onto +1 NPA NXX LLLL: every index below
# NUMBER_SPACE names a different number. All 800 exchanges 200-999 of these area codes are valid
# for phonenumbers (checked by `check_numbers`).
AREA_CODES = (212, 646, 718, 917, 415, 312, 213, 305, 617, 202)
_PER_AREA = 800 * 10_000
NUMBER_SPACE = len(AREA_CODES) * _PER_AREA
# Index ranges: a warm-up and a measured run never share a number; each wrk thread and each
# Python worker has its own stride inside its run's range.
WARMUP_START = 0
MEASURED_START = NUMBER_SPACE // 2
WRK_THREAD_STRIDE = 4_000_000
PYTHON_WORKER_STRIDE = 100_000
RESULT_MARK = "BENCH_RESULT "

# The Make Campaign Call body, about 320 bytes like the bodies of PERFORMANCE.md.
PAYLOAD: dict[str, Any] = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "appointment_at": "2026-03-14T15:30:00Z",
    "clinic": "Midtown Dental, 5th Avenue",
    "language": "en",
}
CONTEXT: dict[str, Any] = {"crm_id": "0042-7731", "source": "bench", "batch": "2026-03-01"}
_BODY_FORMAT = orjson.dumps(
    {
        "to": "%s",
        "payload": PAYLOAD,
        "context": CONTEXT,
        "is_testing": False,
        "allow_duplicates": False,
    }
).decode()


def number_at(index: int) -> str:
    area = AREA_CODES[(index // _PER_AREA) % len(AREA_CODES)]
    exchange = 200 + (index // 10_000) % 800
    return f"+1{area}{exchange:03d}{index % 10_000:04d}"


def body_for(index: int) -> bytes:
    return (_BODY_FORMAT % number_at(index)).encode()


def check_numbers(indices: list[int]) -> None:
    """Every sampled index gives a distinct number that phonenumbers calls valid."""
    from shared.phone import to_e164

    numbers = [number_at(i) for i in indices]
    if len(set(numbers)) != len(set(indices)):
        raise RuntimeError("the number generator repeated a number")
    for number in numbers:
        if to_e164(number) != number:
            raise RuntimeError(f"{number} is not in E.164")


@dataclass(frozen=True)
class LoadResult:
    tool: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    unexpected: int  # answers whose status was not the expected one
    errors: int  # connection errors and timeouts
    statuses: dict[str, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @classmethod
    def from_json(cls, tool: str, raw: dict[str, Any]) -> LoadResult:
        return cls(
            tool=tool,
            requests=int(raw["requests"]),
            seconds=float(raw["seconds"]),
            p50_ms=float(raw["p50_ms"]),
            p99_ms=float(raw["p99_ms"]),
            max_ms=float(raw["max_ms"]),
            unexpected=int(raw["unexpected"]),
            errors=int(raw["errors"]),
            statuses={str(k): int(v) for k, v in raw.get("statuses", {}).items()},
        )


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    token: str
    expect: int = 201


def choose_tool(preference: str) -> str:
    if preference == "wrk" and shutil.which("wrk") is None:
        raise SystemExit("--loadgen wrk: wrk is not installed (apt-get install -y wrk)")
    if preference == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    return preference


# --- wrk --------------------------------------------------------------------------------------


def _lua_script(target: Target, start: int) -> str:
    areas = ", ".join(str(a) for a in AREA_CODES)
    return f"""
local threads = {{}}
local created = 0
function setup(thread)
  thread:set("tid", created)
  created = created + 1
  table.insert(threads, thread)
end

local areas = {{{areas}}}
local body_format = [[{_BODY_FORMAT}]]
function init(args)
  n = 0
  unexpected = 0
  base = {start} + tid * {WRK_THREAD_STRIDE}
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer {target.token}"
end

function request()
  local i = base + n
  n = n + 1
  local area = areas[math.floor(i / {_PER_AREA}) % #areas + 1]
  local exchange = 200 + math.floor(i / 10000) % 800
  local to = string.format("+1%d%03d%04d", area, exchange, i % 10000)
  return wrk.format(nil, nil, nil, string.format(body_format, to))
end

function response(status, headers, body)
  if status ~= {target.expect} then
    unexpected = unexpected + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("unexpected")
  end
  local e = summary.errors
  io.write(string.format(
    '{RESULT_MARK}{{"requests": %d, "seconds": %.6f, "p50_ms": %.3f, "p99_ms": %.3f, ' ..
    '"max_ms": %.3f, "unexpected": %d, "errors": %d}}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3, bad,
    e.connect + e.read + e.write + e.timeout))
end
"""


def _wrk_command(target: Target, script: Path, seconds: float, connections: int) -> list[str]:
    # Two threads as in PERFORMANCE.md; the 2 s timeout is far above any p99 we aim for.
    return [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "2s",
        "-s",
        str(script),
        target.url,
    ]


# --- driving ----------------------------------------------------------------------------------


def start_load(
    group: Started,
    tool: str,
    target: Target,
    seconds: float,
    connections: int,
    start: int,
    label: str,
) -> Load:
    """Starts the load generator as its own process; `Load.result()` waits for its figures."""
    name = f"load-{target.name}-{label}"
    if tool == "wrk":
        script = group.logs / f"{name}.lua"
        script.write_text(_lua_script(target, start))
        command = _wrk_command(target, script, seconds, connections)
    else:
        command = python_module(
            "bench.loadgen",
            target.url,
            "--token",
            target.token,
            "--seconds",
            str(seconds),
            "--connections",
            str(connections),
            "--start",
            str(start),
            "--expect",
            str(target.expect),
        )
    return Load(group, name, tool, group.start(name, command).pid, time.monotonic() + seconds)


@dataclass
class Load:
    group: Started
    name: str
    tool: str
    pid: int
    ends_at: float

    def result(self) -> LoadResult:
        process = next(p for p in self.group.processes if p.name == self.name)
        assert process.process is not None
        process.process.wait(timeout=max(0.0, self.ends_at - time.monotonic()) + 60)
        self.group.stop(process)
        output = self.group.log_tail(self.name, 20_000)
        for line in output.splitlines():
            if line.startswith(RESULT_MARK):
                return LoadResult.from_json(self.tool, json.loads(line[len(RESULT_MARK) :]))
        raise RuntimeError(f"{self.name} printed no result:\n{output}")


# --- the Python generator (fallback) ----------------------------------------------------------


async def _generate(
    url: str, token: str, seconds: float, connections: int, start: int, expect: int
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    errors = 0
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        began = time.perf_counter()
        deadline = began + seconds

        async def worker(slot: int) -> None:
            nonlocal errors
            index = start + slot * PYTHON_WORKER_STRIDE
            while time.perf_counter() < deadline:
                body = body_for(index)
                index += 1
                sent = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError):
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - sent)
                statuses[str(status)] += 1

        await asyncio.gather(*(worker(slot) for slot in range(connections)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] if latencies else 0.0) * 1000,
        "unexpected": sum(n for s, n in statuses.items() if s != str(expect)),
        "errors": errors,
        "statuses": dict(statuses),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Python HTTP load generator (wrk fallback)")
    parser.add_argument("url")
    parser.add_argument("--token", required=True)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--start", type=int, default=MEASURED_START)
    parser.add_argument("--expect", type=int, default=201)
    args = parser.parse_args()
    result = uvloop.run(
        _generate(args.url, args.token, args.seconds, args.connections, args.start, args.expect)
    )
    print(RESULT_MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
