"""python -m devstack (`make run`): the whole system on local defaults.

Starts a Kafka-compatible broker and a Redis unless KAFKA_BOOTSTRAP_SERVERS / REDIS_URL name
existing ones, creates the topics, starts the four services and waits. Ctrl-C, SIGTERM or the
death of the parent process stops everything it started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

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
LOGS = ROOT / ".run" / "logs"


class _Stop(Exception):
    pass


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _pick_port(preferred: int) -> int:
    return preferred if not port_is_open("127.0.0.1", preferred) else free_port()


def main() -> int:
    die_with_parent()
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    started: list[Managed] = []
    env = dict(os.environ)
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
            port = _pick_port(9092)
            broker = Managed("broker", broker_command(port), env, LOGS / "broker.log").start()
            started.append(broker)
            assert broker.process is not None
            wait_for_port("127.0.0.1", port, 30, broker.process)
            env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{port}"
        if "REDIS_URL" not in env:
            port = _pick_port(6380)
            redis = Managed("redis", redis_command(port), env, LOGS / "redis.log").start()
            started.append(redis)
            assert redis.process is not None
            wait_for_port("127.0.0.1", port, 30, redis.process)
            env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        asyncio.run(ensure_topics(KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"])))
        api_port = int(env.get("API_PORT", "8080"))
        for name in SERVICES:
            service = Managed(name, service_command(name), env, LOGS / f"{name}.log", ROOT)
            started.append(service.start())
        ingest = started[-1]
        assert ingest.process is not None
        wait_for_port(env.get("API_HOST", "127.0.0.1"), api_port, 60, ingest.process)
        print(
            "\ncampaign-calls is running\n"
            f"  API          http://127.0.0.1:{api_port}/api/v1  (health: /healthz)\n"
            f"  API token    {env['DEV_API_TOKEN']}  (Authorization: Bearer ...)\n"
            f"  Kafka        {env['KAFKA_BOOTSTRAP_SERVERS']}\n"
            f"  Redis        {env['REDIS_URL']}\n"
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


if __name__ == "__main__":
    sys.exit(main())
