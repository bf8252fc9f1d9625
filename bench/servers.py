"""A benchmark's own broker, Redis and service processes, on free loopback ports.

Everything started goes into one `Started` group, stopped in reverse order when the benchmark
ends (normally, by an exception or Ctrl-C); each child also dies with its parent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from devstack.processes import (
    Managed,
    broker_command,
    free_port,
    redis_command,
    service_command,
    wait_for_port,
)
from shared.bus import ensure_topics
from shared.settings import KafkaSettings

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Started:
    """The processes one benchmark started, and where their output goes."""

    logs: Path
    processes: list[Managed] = field(default_factory=list)

    def start(
        self,
        name: str,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        port: int | None = None,
    ) -> Managed:
        """Starts a child with its output in `logs/<name>.log`; waits for `port` if given."""
        process = Managed(name, command, env, self.logs / f"{name}.log", ROOT).start()
        self.processes.append(process)
        if port is not None:
            assert process.process is not None
            wait_for_port("127.0.0.1", port, 60, process.process)
        return process

    def stop(self, process: Managed) -> None:
        process.stop()
        if process in self.processes:
            self.processes.remove(process)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


@contextmanager
def started_processes(prefix: str) -> Iterator[Started]:
    logs = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))
    group = Started(logs)
    try:
        yield group
    finally:
        group.stop_all()


@dataclass(frozen=True)
class Servers:
    kafka: str
    redis_url: str
    broker: Managed
    redis: Managed


def start_servers(group: Started, topics: Sequence[str] = ()) -> Servers:
    """A broker (with the system's topics, plus `topics`) and a Redis of the benchmark's own."""
    kafka_port = free_port()
    broker = group.start("broker", broker_command(kafka_port), port=kafka_port)
    redis_port = free_port()
    redis = group.start("redis", redis_command(redis_port), port=redis_port)
    kafka = f"127.0.0.1:{kafka_port}"
    settings = KafkaSettings(bootstrap_servers=kafka)
    asyncio.run(ensure_topics(settings))
    if topics:
        asyncio.run(ensure_topics(settings, topics))
    return Servers(kafka, f"redis://127.0.0.1:{redis_port}/0", broker, redis)


def service_env(servers: Servers, extra: Mapping[str, str]) -> dict[str, str]:
    """The environment a service process gets: the benchmark's broker and Redis, plus `extra`."""
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": servers.kafka,
            "REDIS_URL": servers.redis_url,
            "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
            # The local broker holds a new consumer's join for half the session timeout.
            "KAFKA_SESSION_TIMEOUT_MS": "2000",
            "KAFKA_HEARTBEAT_INTERVAL_MS": "300",
            # Health, readiness and metrics on ports of their own: nothing else is disturbed.
            "SCHEDULER_HTTP_PORT": str(free_port()),
            "NOTIFIER_HTTP_PORT": str(free_port()),
        }
    )
    env.update(extra)
    return env


def start_service(
    group: Started, name: str, env: Mapping[str, str], port: int | None = None
) -> Managed:
    return group.start(name, service_command(name), env, port)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


@dataclass(frozen=True)
class TopicContents:
    messages: int
    distinct_keys: int


async def read_topic(kafka: str, topic: str, expected: int, within: float) -> TopicContents:
    """Counts a topic's messages by reading it from the start until nothing new comes (1 s
    once `expected` are seen, else 5 s). The local broker's end offsets run short of what a
    consumer reads, so they are no count."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka,
        group_id=f"bench-count-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    messages = 0
    keys: set[bytes | None] = set()
    await consumer.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        quiet_since = loop.time()
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=300, max_records=10_000)
            for records in batch.values():
                messages += len(records)
                keys.update(record.key for record in records)
            if batch:
                quiet_since = loop.time()
            elif loop.time() - quiet_since > (1.0 if messages >= expected else 5.0):
                break
    finally:
        await consumer.stop()
    return TopicContents(messages, len(keys))


def env_setting(text: str) -> tuple[str, str]:
    """`--env NAME=VALUE`: a setting for the service processes a benchmark starts."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name, value
