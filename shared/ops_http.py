"""The operations endpoints every service serves: `/healthz`, `/readyz` and `/metrics`.

`/healthz` answers 200 while the process runs its loops (it does not look at Redis or Kafka:
a restart would not bring them back). `/readyz` answers 200 only while every dependency check
passes (Redis answers a PING, the broker answers, each consumer is in its group), else 503
with the failing ones named; it recovers by itself. `/metrics` is the process's registry in
Prometheus's text format, refreshed first by the service's scrape-time readers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from aiohttp import web
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from redis.asyncio import Redis

# A dependency check: returns when the dependency answers, raises (or hangs) when it does not.
Check = Callable[[], Awaitable[None]]
# Names a loop of the process that has stopped, or None while all run.
Liveness = Callable[[], str | None]
# Refreshes gauges read at scrape time (queue depths, consumer lag).
Refresh = Callable[[], Awaitable[None]]

CHECK_TIMEOUT_S = 1.0
_JSON = "application/json"


class NotReady(Exception):
    """A dependency answered, but not as a ready process needs (e.g. no group membership)."""


class Ops:
    """The three routes of one process, on its own server or added to an existing app."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        check_timeout_s: float = CHECK_TIMEOUT_S,
    ) -> None:
        self.registry = registry
        self.checks: dict[str, Check] = {}
        self.liveness: list[Liveness] = []
        self.refreshers: list[Refresh] = []
        self._timeout = check_timeout_s
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def add_routes(self, app: web.Application, *, healthz: bool = True) -> None:
        if healthz:
            app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)

    async def start(self, host: str, port: int) -> None:
        """Serves the routes on a server of their own (port 0: any free port, see `port`)."""
        app = web.Application()
        self.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        # The port bound (the OS's pick for port 0).
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def healthz(self, request: web.Request) -> web.Response:
        stopped = [name for name in (alive() for alive in self.liveness) if name]
        if stopped:
            return _json({"status": "unhealthy", "stopped": stopped}, 503)
        return _json({"status": "ok"}, 200)

    async def readyz(self, request: web.Request) -> web.Response:
        failing = await self.failing()
        if failing:
            return _json({"status": "not_ready", "failing": failing}, 503)
        return _json({"status": "ready"}, 200)

    async def failing(self) -> dict[str, str]:
        """The checks that fail now, with why; empty when the process is ready."""
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(self.checks[name]) for name in names))
        return {name: why for name, why in zip(names, results, strict=True) if why is not None}

    async def _run(self, check: Check) -> str | None:
        try:
            await asyncio.wait_for(check(), self._timeout)
        except TimeoutError:
            return f"no answer within {self._timeout:g}s"
        except Exception as exc:
            return str(exc) or type(exc).__name__
        return None

    async def metrics(self, request: web.Request) -> web.Response:
        for refresh in self.refreshers:
            # A reader that fails leaves its gauges as they were: the scrape still answers.
            await asyncio.gather(asyncio.wait_for(refresh(), self._timeout), return_exceptions=True)
        body = generate_latest(self.registry)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


def _json(body: dict[str, Any], status: int) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=_JSON)


def redis_check(redis: Redis) -> Check:
    async def ping() -> None:
        await redis.ping()

    return ping


def broker_check(broker: KafkaBroker) -> Check:
    """The broker answers a cluster-metadata request."""

    async def describe() -> None:
        if not await broker.ping(timeout=CHECK_TIMEOUT_S):
            raise NotReady("the broker does not answer")

    return describe


def consumers_check(broker: KafkaBroker) -> Check:
    """Every consumer of the broker is a member of its group (it has partitions, or has joined
    while there are more members than partitions)."""

    async def in_groups() -> None:
        for subscriber in broker.subscribers:
            consumer: Any = getattr(subscriber, "consumer", None)
            topics = ",".join(getattr(subscriber, "topic_names_for_subscribe", ()))
            if consumer is None:
                raise NotReady(f"the consumer of {topics} is not running")
            if not consumer.assignment() and not _member_id(consumer):
                raise NotReady(f"the consumer of {topics} is not in its group")

    return in_groups


def _member_id(consumer: Any) -> str:
    coordinator = getattr(consumer, "_coordinator", None)
    return str(getattr(coordinator, "member_id", "") or "")


def tasks_alive(tasks: Iterable[Any]) -> Liveness:
    """Names the first of `tasks` (asyncio tasks, looked at on each call) that has ended."""

    def alive() -> str | None:
        for task in tasks:
            if task.done():
                return str(task.get_name())
        return None

    return alive
