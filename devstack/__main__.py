"""python -m devstack (`make run`): the whole system on local defaults.

Starts a Kafka-compatible broker and a Redis unless KAFKA_BOOTSTRAP_SERVERS / REDIS_URL name
existing ones (REDIS_CLUSTER=1: a local Redis Cluster of three masters instead of one Redis),
creates the topics, starts COPIES (default 1) copies of each of the four services and waits;
copy n (from 0) of a service listens on its base port + 10n: ingest on API_PORT (8080), the
scheduler, dialer and notifier on SCHEDULER_/DIALER_/NOTIFIER_HTTP_PORT (8081, 8082, 8083).
Ctrl-C, SIGTERM or the death of the parent process stops everything it started.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from devstack.cluster import LocalCluster
from devstack.processes import (
    SERVICES,
    Managed,
    broker_command,
    die_with_parent,
    free_port,
    port_is_open,
    redis_command,
    service_command,
    wait_for_port,
)
from shared.bus import ensure_topics
from shared.settings import KafkaSettings

ROOT = Path(__file__).resolve().parent.parent
# The setting and default port of each consumer service's HTTP side.
HTTP_PORTS = {
    "scheduler": ("SCHEDULER_HTTP_PORT", 8081),
    "dialer": ("DIALER_HTTP_PORT", 8082),
    "notifier": ("NOTIFIER_HTTP_PORT", 8083),
}
LOGS = ROOT / ".run" / "logs"
CLUSTER_FOLDER = ROOT / ".run" / "redis-cluster"
_START_ATTEMPTS = 3


class _Stop(Exception):
    pass


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _pick_port(preferred: int) -> int:
    return preferred if not port_is_open("127.0.0.1", preferred) else free_port()


def _start_server(
    name: str,
    command: Callable[[int], list[str]],
    preferred: int,
    env: dict[str, str],
    started: list[Managed],
) -> int:
    """Starts a server on its usual port if that is free, else on any free port, and again on
    another if something took the port between the check and the start; returns the port."""
    port = _pick_port(preferred)
    for attempt in range(_START_ATTEMPTS):
        server = Managed(name, command(port), env, LOGS / f"{name}.log").start()
        assert server.process is not None
        try:
            wait_for_port("127.0.0.1", port, 30, server.process)
        except RuntimeError:
            server.stop()
            if attempt == _START_ATTEMPTS - 1:
                raise
            port = free_port()
            continue
        started.append(server)
        return port
    raise AssertionError("unreachable")


def _copies(env: dict[str, str]) -> int:
    try:
        copies = int(env.get("COPIES", "1"))
    except ValueError:
        copies = 0
    if copies < 1:
        raise SystemExit(f"COPIES must be a whole number of at least 1, not {env['COPIES']!r}")
    return copies


def _start_cluster() -> LocalCluster:
    # A fresh folder: a node started on a previous run's cluster config would rejoin that.
    shutil.rmtree(CLUSTER_FOLDER, ignore_errors=True)
    return LocalCluster.start(folder=CLUSTER_FOLDER)


def main() -> int:
    die_with_parent()
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    started: list[Managed] = []
    cluster: LocalCluster | None = None
    env = dict(os.environ)
    copies = _copies(env)
    env.setdefault("DEV_API_TOKEN", "dev-token")
    env.setdefault("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    env.setdefault("DIALER_SANDBOX_RING_MS", "2000")
    env.setdefault("DIALER_SANDBOX_TALK_MS", "5000")
    # The local broker holds a new consumer's join for half the session timeout.
    env.setdefault("KAFKA_SESSION_TIMEOUT_MS", "3000")
    env.setdefault("KAFKA_HEARTBEAT_INTERVAL_MS", "500")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    try:
        if "KAFKA_BOOTSTRAP_SERVERS" not in env:
            port = _start_server("broker", broker_command, 9092, env, started)
            env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{port}"
        redis_note = ""
        if "REDIS_URL" not in env and env.get("REDIS_CLUSTER", "") not in ("", "0"):
            cluster = _start_cluster()
            started.extend(node.process for node in cluster.nodes if node.process is not None)
            env["REDIS_URL"] = cluster.url
            redis_note = "  (a cluster: " + ", ".join(n.address for n in cluster.nodes) + ")"
        if "REDIS_URL" not in env:
            port = _start_server("redis", redis_command, 6380, env, started)
            env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        asyncio.run(ensure_topics(KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"])))
        api_host = env.get("API_HOST", "127.0.0.1")
        # Copy n of every service listens on its base port + 10n: the bases (8080-8083) are
        # apart by less than 10, so no two copies' ports meet.
        api_ports = [int(env.get("API_PORT", "8080")) + 10 * n for n in range(copies)]
        # The scheduler, dialer and notifier serve /healthz, /readyz and /metrics there (the
        # dialer its carrier callbacks too); ingest serves them on its API port.
        http_ports = {
            name: [int(env.get(setting, str(base))) + 10 * n for n in range(copies)]
            for name, (setting, base) in HTTP_PORTS.items()
        }
        checked = [(api_ports, "API_PORT")] + [
            (http_ports[name], setting) for name, (setting, _) in HTTP_PORTS.items()
        ]
        planned = [port for ports, _ in checked for port in ports]
        if len(set(planned)) < len(planned):
            print(
                "two services would share a port: set API_PORT and the *_HTTP_PORT settings apart",
                flush=True,
            )
            return 1
        for ports, setting in checked:
            taken = [port for port in ports if port_is_open(api_host, port)]
            if taken:
                print(f"port {taken[0]} is taken; set {setting} to move it", flush=True)
                return 1
        ingests: list[tuple[int, Managed]] = []
        for name in SERVICES:
            for n in range(1, copies + 1):
                copy_env = {**env, "SERVICE_INSTANCE": f"{name}-{n}"}
                if name == "ingest":
                    copy_env["API_PORT"] = str(api_ports[n - 1])
                if name in HTTP_PORTS:
                    copy_env[HTTP_PORTS[name][0]] = str(http_ports[name][n - 1])
                log = LOGS / f"{name}-{n}.log"
                service = Managed(f"{name}-{n}", service_command(name), copy_env, log, ROOT)
                started.append(service.start())
                if name == "ingest":
                    ingests.append((api_ports[n - 1], service))
        for port, ingest in ingests:
            assert ingest.process is not None
            wait_for_port(api_host, port, 60, ingest.process)
        apis = "".join(
            f"  API          http://127.0.0.1:{port}/api/v1  (ingest-{n}; health: /healthz)\n"
            for n, (port, _) in enumerate(ingests, start=1)
        )
        apis += "".join(
            f"  metrics      http://{api_host}:{port}/metrics  (ingest-{n})\n"
            for n, (port, _) in enumerate(ingests, start=1)
        )
        apis += "".join(
            f"  metrics      http://{api_host}:{port}/metrics  ({name}-{n}; /healthz, /readyz)\n"
            for name, ports in http_ports.items()
            for n, port in enumerate(ports, start=1)
        )
        print(
            "\ncampaign-calls is running"
            + (f" ({copies} copies of each service)" if copies > 1 else "")
            + "\n"
            + apis
            + f"  API token    {env['DEV_API_TOKEN']}  (Authorization: Bearer ...)\n"
            f"  Kafka        {env['KAFKA_BOOTSTRAP_SERVERS']}\n"
            f"  Redis        {env['REDIS_URL']}{redis_note}\n"
            f"  logs         {LOGS}\n"
            "Ctrl-C stops everything.\n",
            flush=True,
        )
        while True:
            for proc in started:
                if not proc.alive():
                    print(f"{proc.name} exited; stopping everything (see {LOGS})", flush=True)
                    return 1
            time.sleep(0.5)
    except _Stop:
        print("\nstopping...", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Services first (they drain into the broker and Redis), then the infrastructure.
        for proc in reversed(started):
            proc.stop()
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    sys.exit(main())
