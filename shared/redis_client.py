"""A Redis client that sends the commands of one event-loop turn as one pipeline.

A service handling many requests at once issues many small commands (a script here, an HGET
there). Sent one by one, each pays for taking a pooled connection, a write, a read and redis-py's
bookkeeping; that, not Redis, bounds a service's rate. This client queues every command issued
while the loop runs its current callbacks and sends them together in the next turn: one
connection, one write, the replies read back in order under one timer and handed to their
callers. Each caller still gets its own reply or its own error, so code written for the plain
client works unchanged.

Commands that block or change the connection's state go straight through, as do explicit
pipelines and transactions (they have their own connection).

`HiredisPackingConnection` encodes commands with hiredis's C encoder; redis-py's asyncio
connection does it in Python, which for a script call with a few dozen arguments costs more
than the round trip.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Iterable
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection, Connection
from redis.client import EMPTY_RESPONSE, NEVER_DECODE
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Commands that hold or change the connection they run on, and so never share one.
_DIRECT = frozenset(
    {
        "BLPOP",
        "BRPOP",
        "BLMOVE",
        "BRPOPLPUSH",
        "BLMPOP",
        "BZPOPMIN",
        "BZPOPMAX",
        "BZMPOP",
        "XREAD",
        "XREADGROUP",
        "WAIT",
        "WAITAOF",
        "WATCH",
        "UNWATCH",
        "MULTI",
        "EXEC",
        "DISCARD",
        "SELECT",
        "SUBSCRIBE",
        "PSUBSCRIBE",
        "SSUBSCRIBE",
        "MONITOR",
        "CLIENT SETNAME",
        "CLIENT TRACKING",
    }
)

Queued = tuple[tuple[Any, ...], dict[str, Any], "asyncio.Future[Any]"]


class AutoPipelineRedis(Redis):
    """`Redis` whose commands, issued in the same loop turn, share one round trip."""

    max_batch = 512  # commands per pipeline; a bigger turn is split across connections

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queued: list[Queued] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        name = str(args[0]).upper()
        if self.single_connection_client or name in _DIRECT:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queued.append((args, options, future))
        if len(self._queued) == 1:  # the first of this turn: send them all in the next
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        queued, self._queued = self._queued, []
        for start in range(0, len(queued), self.max_batch):
            task = asyncio.ensure_future(self._send(queued[start : start + self.max_batch]))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[Queued]) -> None:
        """Writes the batch on one pooled connection and hands each reply to its caller.

        One timer covers the whole exchange (redis-py's connection would start one per reply).
        If the exchange breaks off, the connection is dropped, since replies may be pending on
        it, and the callers still waiting get the error."""
        pool = self.connection_pool
        try:
            connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        except asyncio.CancelledError:
            _cancel_all(batch)
            raise
        except Exception as exc:
            for _, _, future in batch:
                _fail(future, exc)
            return
        answered = 0
        try:
            async with asyncio.timeout(connection.socket_timeout):
                await connection.send_packed_command(
                    connection.pack_commands([args for args, _, _ in batch])
                )
                for args, options, future in batch:
                    await self._answer(connection, args[0], options, future)
                    answered += 1
        except BaseException as exc:
            await connection.disconnect(nowait=True)
            waiting = batch[answered:]
            if isinstance(exc, asyncio.CancelledError):
                _cancel_all(waiting)
                raise
            error: Exception = (
                RedisTimeoutError(f"no reply from Redis in {connection.socket_timeout} s")
                if isinstance(exc, TimeoutError)
                else exc
                if isinstance(exc, Exception)
                else RedisConnectionError(repr(exc))
            )
            for _, _, future in waiting:
                _fail(future, error)
            if not isinstance(exc, Exception):
                raise
        finally:
            await pool.release(connection)

    async def _answer(
        self,
        connection: AbstractConnection,
        command: Any,
        options: dict[str, Any],
        future: asyncio.Future[Any],
    ) -> None:
        """Reads one reply and settles its caller, as `Redis.parse_response` would parse it."""
        raw = False
        if options:  # a script call has none: no copy to make
            options = dict(options)
            options.pop("keys", None)
            raw = options.pop(NEVER_DECODE, None) is not None
        try:
            # The exchange's timer is already running: no timer per reply.
            if isinstance(connection, HiredisPackingConnection):
                reply = await connection.read_reply(raw)
            else:
                reply = await connection.read_response(disable_decoding=raw, timeout=math.inf)
        except ResponseError as exc:
            if EMPTY_RESPONSE in options:
                _succeed(future, options[EMPTY_RESPONSE])
            else:
                _fail(future, exc)
            return
        options.pop(EMPTY_RESPONSE, None)
        callback = self.response_callbacks.get(command)
        if callback is not None:
            reply = callback(reply, **options)
            if inspect.isawaitable(reply):
                reply = await reply
        _succeed(future, reply)

    def register_script(self, script: str | bytes) -> AsyncScript:  # type: ignore[override]
        return _Script(self, script)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        await super().aclose(close_connection_pool)


class _Script(AsyncScript):
    """A registered script whose plain calls go straight to `execute_command` (and so into the
    turn's pipeline); calls on an explicit pipeline take redis-py's own path."""

    async def __call__(
        self,
        keys: Any = None,
        args: Any = None,
        client: Any = None,
    ) -> Any:
        if client is not None and client is not self.registered_client:
            return await super().__call__(keys, args, client)
        redis = self.registered_client
        words = (*(keys or ()), *(args or ()))
        count = len(keys) if keys else 0
        try:
            return await redis.execute_command("EVALSHA", self.sha, count, *words)
        except NoScriptError:
            self.sha = await redis.script_load(self.script)
            return await redis.execute_command("EVALSHA", self.sha, count, *words)


def _cancel_all(batch: list[Queued]) -> None:
    for _, _, future in batch:
        future.cancel()


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)


class HiredisPackingConnection(Connection):
    """A TCP connection that encodes commands with `hiredis.pack_command`."""

    def pack_command(self, *args: Any) -> list[bytes]:
        # A command name given with its sub-command ("SCRIPT LOAD") is sent as two words.
        if isinstance(args[0], str):
            args = (*args[0].encode().split(), *args[1:])
        elif b" " in args[0]:
            args = (*args[0].split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:
            raise DataError(str(exc)) from exc

    def pack_commands(self, commands: Iterable[Iterable[Any]]) -> list[bytes]:
        """The whole pipeline as one buffer (redis-py's version cuts it into chunks, a copy
        the socket write does not need)."""
        return [b"".join([self.pack_command(*command)[0] for command in commands])]

    async def read_reply(self, raw: bool) -> Any:
        """The next reply, read by the hiredis parser alone; an error reply is raised.

        For a caller whose own timer covers the exchange: redis-py's `read_response` would
        start a timer per reply and look for RESP3 push messages, which RESP2 never sends."""
        reply = await self._parser.read_response(disable_decoding=raw)  # type: ignore[attr-defined]
        if isinstance(reply, ResponseError):
            raise reply
        return reply
