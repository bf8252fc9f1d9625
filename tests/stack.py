"""The four services as separate processes, pointed at the test's broker and Redis."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from devstack.processes import SERVICES, Managed, free_port, service_command, wait_for_port
from tests.support import TOKEN

ROOT = Path(__file__).resolve().parent.parent
# The setting naming the port each consumer service serves /healthz, /readyz and /metrics on
# (ingest serves them on its API port).
HTTP_PORTS = {
    "scheduler": "SCHEDULER_HTTP_PORT",
    "dialer": "DIALER_HTTP_PORT",
    "notifier": "NOTIFIER_HTTP_PORT",
}


@dataclass
class Stack:
    kafka: str
    redis_url: str
    logs: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    api_port: int = field(default_factory=free_port)
    processes: dict[str, list[Managed]] = field(default_factory=dict)
    # The ops port of each copy of a consumer service, in the order they were started.
    http_ports: dict[str, list[int]] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.kafka,
                "REDIS_URL": self.redis_url,
                "API_PORT": str(self.api_port),
                "DEV_API_TOKEN": "",
                "API_TOKENS": f"{TOKEN}:env-a,other-token:env-b",
                "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
                "DIALER_SANDBOX_RING_MS": "50",
                "DIALER_SANDBOX_TALK_MS": "100",
                "SCHEDULER_PUMP_INTERVAL_MS": "50",
                "PYTHONPATH": str(ROOT),
                "LOG_LEVEL": "INFO",
                "KAFKA_SESSION_TIMEOUT_MS": "2000",
                "KAFKA_HEARTBEAT_INTERVAL_MS": "300",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, names: Iterable[str] = SERVICES) -> Stack:
        for name in names:
            self.start_one(name)
        return self

    def start_one(
        self, name: str, api_port: int | None = None, env: dict[str, str] | None = None
    ) -> Managed:
        """Starts one more copy of a service; another ingest copy needs its own `api_port`.
        `env` adds settings of this copy alone (a scheduler, dialer or notifier copy gets a
        free port for its HTTP side unless `env` names one)."""
        copies = self.processes.setdefault(name, [])
        log = self.logs / f"{name}-{len(copies)}.log"
        own = env or {}
        env = self.env()
        env.update(own)
        port = api_port or self.api_port
        env["API_PORT"] = str(port)
        env["SERVICE_INSTANCE"] = f"{name}-{len(copies)}"
        setting = HTTP_PORTS.get(name)
        if setting is not None and setting not in own:
            env[setting] = str(free_port())
        if setting is not None:
            self.http_ports.setdefault(name, []).append(int(env[setting]))
        process = Managed(name, service_command(name), env, log, ROOT).start()
        copies.append(process)
        if name == "ingest":
            assert process.process is not None
            wait_for_port("127.0.0.1", port, 60, process.process)
        return process

    def ops_url(self, name: str, copy: int = 0) -> str:
        """Where copy `copy` of service `name` serves /healthz, /readyz and /metrics."""
        port = self.api_port if name == "ingest" else self.http_ports[name][copy]
        return f"http://127.0.0.1:{port}"

    def all(self) -> list[Managed]:
        return [p for copies in self.processes.values() for p in copies]

    def stop(self) -> None:
        for process in self.all():
            process.stop()

    def log_of(self, name: str, copy: int) -> Path:
        """The log of copy `copy` (counted from 0) of service `name`."""
        return self.logs / f"{name}-{copy}.log"

    def logs_text(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.logs.glob("*.log"))
        )
