"""A Redis client that sends the commands of one event-loop turn as one pipeline, on one
connection that every caller shares.

A service handling many requests at once issues many small commands (a script here, an HGET
there). Sent one by one, each pays for taking a pooled connection, a write, a read and redis-py's
bookkeeping; that, not Redis, bounds a service's rate. This client queues every command issued
while the loop runs its current callbacks and writes them together in the next turn, on one
long-lived connection. Redis answers in order, so the replies are matched to their callers as
the bytes arrive: no task, no pooled connection and no timer per command or per write. Each
caller still gets its own reply or its own error, so code written for the plain client works
unchanged.

Commands that block or change the connection's state go through the pool, as do explicit
pipelines and transactions (they need a connection of their own).

On a Redis Cluster (`create_redis` asks the server named by the URL whether it is one) the
same batching runs per node: `AutoPipelineCluster` is redis-py's `RedisCluster` (its topology,
slot map and node addresses) whose keyed commands are routed by hash slot and written, one
turn's worth per node, on one shared connection per node. A reply of `MOVED` updates redis-py's
slot map and sends the command again to the new owner; `ASK` sends it once to the importing
node after `ASKING`; `TRYAGAIN` and `CLUSTERDOWN` wait a moment and try again. Commands without
a key (or with keys the command table cannot place) take redis-py's own cluster path.

`HiredisPackingConnection` encodes commands with hiredis's C encoder; redis-py's asyncio
connection does it in Python, which for a script call with a few dozen arguments costs more
than the round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, Final, Protocol, cast

import hiredis
from redis import Redis as SyncRedis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.connection import AbstractConnection, Connection
from redis.client import EMPTY_RESPONSE, NEVER_DECODE
from redis.commands.core import AsyncScript
from redis.exceptions import (
    AskError,
    ClusterDownError,
    DataError,
    InvalidResponse,
    MovedError,
    NoScriptError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.settings import RedisSettings

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
_NOT_ENOUGH_DATA = object()


_NO_OPTIONS: dict[str, Any] = {}
_COUNTS = tuple(str(count) for count in range(32))  # key counts as text: cheaper to encode


class _Waiting:
    """A command written and not yet answered: whom to answer, and how to parse the reply."""

    __slots__ = ("callback", "future", "options", "raw")

    def __init__(
        self,
        future: asyncio.Future[Any],
        callback: Callable[..., Any] | None,
        options: dict[str, Any],
        raw: bool,
    ) -> None:
        self.future = future
        self.callback = callback  # redis-py's parser of the command's reply, if it has one
        self.options = options
        self.raw = raw


Queued = tuple[bytes, _Waiting]


def _answer(waiting: _Waiting, reply: Any, held: set[asyncio.Task[Any]]) -> None:
    """Answers a caller whose reply is an error or has a parser, as `Redis.parse_response`
    would have (a plain reply is handed over by the read loop itself)."""
    options = waiting.options
    if isinstance(reply, ResponseError):
        if EMPTY_RESPONSE in options:
            _succeed(waiting.future, options[EMPTY_RESPONSE])
        else:
            _fail(waiting.future, reply)
        return
    callback = waiting.callback
    assert callback is not None, "the read loop answers plain replies"
    if EMPTY_RESPONSE in options:
        options = {name: value for name, value in options.items() if name != EMPTY_RESPONSE}
    try:
        parsed = callback(reply, **options)
    except Exception as exc:
        _fail(waiting.future, exc)
        return
    if inspect.isawaitable(parsed):
        task = asyncio.ensure_future(_settle_later(waiting.future, parsed))
        held.add(task)
        task.add_done_callback(held.discard)
    else:
        _succeed(waiting.future, parsed)


class _Client(Protocol):
    """What a shared connection reports to the client that opened it."""

    def _settle(self, waiting: _Waiting, reply: Any) -> None: ...

    def _lost(self) -> None: ...


class AutoPipelineRedis(Redis):
    """`Redis` whose commands, issued in the same loop turn, share one write on one connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queued: list[Queued] = []
        self._link: _Link | None = None
        self._linking: asyncio.Task[_Link] | None = None
        self._held: set[asyncio.Task[None]] = set()  # turns waiting for the connection
        # command name as given -> (goes through the pool, reply parser or None)
        self._routes: dict[Any, tuple[bool, Callable[..., Any] | None]] = {}

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        direct, callback = self._route(args[0])
        if direct or self.single_connection_client:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        raw = False
        if options:
            options.pop("keys", None)
            raw = options.pop(NEVER_DECODE, None) is not None
        return await self._queue(_pack(args), _Waiting(_future(), callback, options, raw))

    def _route(self, command: Any) -> tuple[bool, Callable[..., Any] | None]:
        """Whether the command goes through the pool, and its reply's parser (None for none)."""
        route = self._routes.get(command)
        if route is None:
            route = self._routes[command] = (
                str(command).upper() in _DIRECT,
                self.response_callbacks.get(command),
            )
        return route

    async def run_script(self, sha: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """EVALSHA of a loaded script, the shortest way (a script's reply has no parser)."""
        count = _COUNTS[len(keys)] if len(keys) < len(_COUNTS) else len(keys)
        packed = _encode(("EVALSHA", sha, count, *keys, *args))
        return await self._queue(packed, _Waiting(_future(), None, _NO_OPTIONS, False))

    def _queue(self, packed: bytes, waiting: _Waiting) -> asyncio.Future[Any]:
        self._queued.append((packed, waiting))
        if len(self._queued) == 1:  # the first of this turn: send them all in the next
            waiting.future.get_loop().call_soon(self._flush)
        return waiting.future

    def _queue_step(self, step: Step) -> asyncio.Future[Any] | None:
        """Queues one step of `in_order` in this turn's write; None for a command that must go
        through the pool (it is then run on its own)."""
        if isinstance(step, ScriptCall):
            script = cast(_Script, step.script)
            keys = step.keys
            count = _COUNTS[len(keys)] if len(keys) < len(_COUNTS) else len(keys)
            packed = _encode(("EVALSHA", script.sha, count, *keys, *step.args))
            return self._queue(packed, _Waiting(_future(), None, _NO_OPTIONS, False))
        direct, callback = self._route(step[0])
        if direct or self.single_connection_client:
            return None
        return self._queue(_pack(step), _Waiting(_future(), callback, {}, False))

    def _flush(self) -> None:
        queued, self._queued = self._queued, []
        link = self._link
        if link is not None and link.open and link.loop is asyncio.get_running_loop():
            link.send(queued)
            return
        task = asyncio.ensure_future(self._send_when_linked(queued))
        self._held.add(task)
        task.add_done_callback(self._held.discard)

    async def _send_when_linked(self, queued: list[Queued]) -> None:
        try:
            link = self._link
            # The connection this turn waited for may have opened since it was queued: it is
            # used, never replaced (replacing it would fail the commands already on it).
            if link is None or not link.open or link.loop is not asyncio.get_running_loop():
                link = await asyncio.shield(self._linked())
        except asyncio.CancelledError:
            for _, waiting in queued:
                waiting.future.cancel()
            raise
        except Exception as exc:
            for _, waiting in queued:
                _fail(waiting.future, exc)
            return
        link.send(queued)

    def _linked(self) -> asyncio.Task[_Link]:
        """The connection being opened, opening one if none is."""
        if self._linking is None or self._linking.done():
            self._linking = asyncio.ensure_future(self._open_link())
        return self._linking

    async def _open_link(self) -> _Link:
        old, self._link = self._link, None
        if old is not None:
            with contextlib.suppress(Exception):  # it is gone either way
                await old.close()
        # A connection made and greeted (AUTH, SELECT, ...) exactly as the pool would make it.
        pool = self.connection_pool
        connection = pool.connection_class(**pool.connection_kwargs)
        try:
            await connection.connect()  # type: ignore[no-untyped-call]
        except BaseException:
            await connection.disconnect(nowait=True)
            raise
        self._link = _Link(connection, self)
        return self._link

    def _settle(self, waiting: _Waiting, reply: Any) -> None:
        _answer(waiting, reply, self._held)

    def _lost(self) -> None:
        """The shared connection broke; the next turn opens another."""

    def register_script(self, script: str | bytes) -> AsyncScript:  # type: ignore[override]
        return _Script(self, script)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        if self._held:
            await asyncio.gather(*self._held, return_exceptions=True)
        link, self._link = self._link, None
        if link is not None:
            await link.close()
        await super().aclose(close_connection_pool)


class _Link(asyncio.Protocol):
    """The shared connection: writes each turn's commands at once and answers their callers
    in order as the replies arrive.

    One timer watches the oldest write: if Redis has not answered it within the connection's
    socket timeout, every caller still waiting gets a timeout error and the connection is
    dropped (replies may still be on their way on it); the next turn opens another."""

    def __init__(self, connection: AbstractConnection, client: _Client) -> None:
        self.loop = asyncio.get_running_loop()
        self.open = True
        self._error: Exception = RedisConnectionError("connection to Redis closed")
        self._connection = connection
        self._client = client
        options: dict[str, Any] = {
            "protocolError": InvalidResponse,
            "replyError": connection._parser.parse_error,
            "notEnoughData": _NOT_ENOUGH_DATA,
        }
        encoder = connection.encoder
        if encoder.decode_responses:
            options["encoding"] = encoder.encoding
            options["errors"] = encoder.encoding_errors
        self._reader = hiredis.Reader(**options)
        self._waiting: deque[_Waiting] = deque()
        # Commands written and answered on this connection so far, and for each write not
        # wholly answered yet (oldest first): when it went and the written count after it.
        self._written = 0
        self._answered = 0
        self._writes: deque[tuple[float, int]] = deque()
        self._timeout: float | None = connection.socket_timeout
        self._watch: asyncio.TimerHandle | None = None
        # The connection's stream reader has nothing buffered after the greeting; from here
        # on its socket's bytes come to this protocol.
        writer = connection._writer
        assert writer is not None, "connect() opened the socket"
        self._transport: asyncio.WriteTransport = writer.transport
        self._transport.set_protocol(self)

    def send(self, queued: list[Queued]) -> None:
        if not self.open:  # broke while this turn waited for it: nothing would answer
            for _, waiting in queued:
                _fail(waiting.future, self._error)
            return
        self._waiting.extend([waiting for _, waiting in queued])
        self._written += len(queued)
        self._writes.append((self.loop.time(), self._written))
        self._transport.write(b"".join([packed for packed, _ in queued]))
        if self._watch is None and self._timeout is not None:
            self._watch = self.loop.call_later(self._timeout, self._check_replies)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting = self._waiting
        settle = self._client._settle
        answered = 0
        while waiting:
            entry = waiting[0]
            reply = reader.gets(False) if entry.raw else reader.gets()
            if reply is _NOT_ENOUGH_DATA:
                break
            waiting.popleft()
            answered += 1
            future = entry.future
            if entry.callback is None and not isinstance(reply, ResponseError):
                if not future.done():  # a caller that gave up is not answered
                    future.set_result(reply)
            else:
                settle(entry, reply)
        self._answered += answered
        writes = self._writes
        while writes and writes[0][1] <= self._answered:
            writes.popleft()

    def connection_lost(self, exc: Exception | None) -> None:
        self._break(RedisConnectionError(f"connection to Redis lost: {exc or 'closed by Redis'}"))

    def _check_replies(self) -> None:
        self._watch = None
        if not self._writes or self._timeout is None:
            return
        due = self._writes[0][0] + self._timeout
        if due <= self.loop.time():
            self._break(RedisTimeoutError(f"no reply from Redis in {self._timeout} s"))
            self._transport.abort()
        else:
            self._watch = self.loop.call_at(due, self._check_replies)

    def _break(self, error: Exception) -> None:
        if self.open:
            self._client._lost()
        self.open = False
        self._error = error
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        waiting, self._waiting = self._waiting, deque()
        self._writes.clear()
        for entry in waiting:
            _fail(entry.future, error)

    async def close(self) -> None:
        self.open = False  # closed on purpose: not a loss to report
        self._break(RedisConnectionError("the client was closed"))
        await self._connection.disconnect(nowait=True)


def _pack(args: tuple[Any, ...]) -> bytes:
    # A command name given with its sub-command ("SCRIPT LOAD") is sent as two words.
    name = args[0]
    if isinstance(name, str):
        if " " in name:
            args = (*name.split(), *args[1:])
    elif b" " in name:
        args = (*name.split(), *args[1:])
    return _encode(args)


def _encode(words: tuple[Any, ...]) -> bytes:
    """One command in RESP, by hiredis; an argument it cannot encode is redis-py's DataError."""
    try:
        packed: bytes = hiredis.pack_command(words)
    except TypeError as exc:
        raise DataError(str(exc)) from exc
    return packed


async def _settle_later(future: asyncio.Future[Any], parsed: Any) -> None:
    try:
        _succeed(future, await parsed)
    except Exception as exc:
        _fail(future, exc)


class _Routed(_Waiting):
    """A command waiting on a cluster node: what to send again should the node redirect it."""

    __slots__ = ("packed", "redirects", "slot", "wait_until")

    def __init__(
        self,
        future: asyncio.Future[Any],
        callback: Callable[..., Any] | None,
        options: dict[str, Any],
        raw: bool,
        packed: bytes,
        slot: int,
    ) -> None:
        super().__init__(future, callback, options, raw)
        self.packed = packed
        self.slot = slot
        self.redirects = 0
        self.wait_until: float | None = None  # how long TRYAGAIN / CLUSTERDOWN are waited out


# Where a command's keys are, from the server's command table: (first, last, step), `last`
# negative counting from the end; None sends the command down redis-py's own cluster path.
_KeySpan = tuple[int, int, int] | None
_UNPLACED: Final = (0, 0, 0)
_ASKING: Final = _encode(("ASKING",))
# Redirections one command may follow, as many as redis-py's own cluster client allows.
_MAX_REDIRECTS: Final = RedisCluster.RedisClusterRequestTTL
# How long a command waits out TRYAGAIN or CLUSTERDOWN: a slot's keys are split between two
# nodes only while a resharding moves them; a failover takes the cluster's node timeout.
_WAIT_SECONDS: Final = 10.0


class AutoPipelineCluster(RedisCluster):
    """`RedisCluster` whose keyed commands, issued in the same loop turn, share one write per
    node on one connection per node.

    The topology, the slot map and the node addresses are redis-py's (`nodes_manager`); a
    command goes to the primary that owns its first key's slot. Every key of a command must
    share that slot (hash tags), as Redis Cluster itself requires; a multi-key command whose
    keys span slots takes redis-py's path, which splits it by slot where the command allows."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queued: list[_Routed] = []
        self._links: dict[str, _Link] = {}
        self._linking: dict[str, asyncio.Task[_Link]] = {}
        self._held: set[asyncio.Task[Any]] = set()
        # command name as given -> (where its keys are, reply parser or None)
        self._routes: dict[Any, tuple[_KeySpan, Callable[..., Any] | None]] = {}

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        command = args[0]
        route = self._routes.get(command)
        if route is None:
            if self._initialize:
                await self.initialize()
            route = self._routes[command] = (
                self._key_span(command),
                self.response_callbacks.get(command),
            )
        span, callback = route
        if span is None or "target_nodes" in options or len(args) <= span[0]:
            return await super().execute_command(*args, **options)
        first, last, step = span
        slot = self.keyslot(args[first])
        if last != first:
            end = len(args) + last + 1 if last < 0 else last + 1
            if any(self.keyslot(key) != slot for key in args[first + step : end : step]):
                return await super().execute_command(*args, **options)
        raw = False
        if options:
            options.pop("keys", None)
            raw = options.pop(NEVER_DECODE, None) is not None
        return await self._queue(_Routed(_future(), callback, options, raw, _pack(args), slot))

    async def run_script(self, sha: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """EVALSHA of a loaded script on the node that owns its keys' slot."""
        if not keys:
            raise DataError("a script call on a cluster needs a key to route by")
        count = _COUNTS[len(keys)] if len(keys) < len(_COUNTS) else len(keys)
        packed = _encode(("EVALSHA", sha, count, *keys, *args))
        return await self._queue(
            _Routed(_future(), None, _NO_OPTIONS, False, packed, self.keyslot(keys[0]))
        )

    def _key_span(self, command: Any) -> _KeySpan:
        name = command.decode() if isinstance(command, bytes) else str(command)
        if name.upper() in _DIRECT or name in self.command_flags or " " in name:
            return None
        info = self.commands_parser.commands.get(name.lower())
        if not isinstance(info, dict) or "movablekeys" in info.get("flags", ()):
            return None
        span = (int(info["first_key_pos"]), int(info["last_key_pos"]), int(info["step_count"]))
        return None if span[0] <= 0 or span[2] <= 0 or span == _UNPLACED else span

    def _queue(self, waiting: _Routed) -> asyncio.Future[Any]:
        self._queued.append(waiting)
        if len(self._queued) == 1:
            waiting.future.get_loop().call_soon(self._flush)
        return waiting.future

    def _flush(self) -> None:
        queued, self._queued = self._queued, []
        if self._initialize:  # the topology is unknown or stale: learn it first
            self._hold(self._dispatch_when_known(queued))
        else:
            self._dispatch(queued)

    async def _dispatch_when_known(self, queued: list[_Routed]) -> None:
        try:
            await self.initialize()
        except Exception as exc:
            for waiting in queued:
                _fail(waiting.future, exc)
            return
        self._dispatch(queued)

    def _dispatch(self, queued: list[_Routed]) -> None:
        """Sends each command to the node that owns its slot, one write per node."""
        by_node: dict[str, tuple[ClusterNode, list[Queued]]] = {}
        owner = self.nodes_manager.get_node_from_slot
        for waiting in queued:
            try:
                node = owner(waiting.slot)
            except SlotNotCoveredError as exc:
                self._initialize = True
                _fail(waiting.future, exc)
                continue
            entry = by_node.get(node.name)
            if entry is None:
                entry = by_node[node.name] = (node, [])
            entry[1].append((waiting.packed, waiting))
        for node, commands in by_node.values():
            self._send(node, commands)

    def _send(self, node: ClusterNode, commands: list[Queued]) -> None:
        link = self._links.get(node.name)
        if link is not None and link.open and link.loop is asyncio.get_running_loop():
            link.send(commands)
        else:
            self._hold(self._send_when_linked(node, commands))

    async def _send_when_linked(self, node: ClusterNode, commands: list[Queued]) -> None:
        try:
            link = self._links.get(node.name)
            if link is None or not link.open or link.loop is not asyncio.get_running_loop():
                link = await asyncio.shield(self._linked(node))
        except asyncio.CancelledError:
            for _, waiting in commands:
                waiting.future.cancel()
            raise
        except Exception as exc:
            self._initialize = True  # the node may be gone: look at the cluster again
            for _, waiting in commands:
                _fail(waiting.future, exc)
            return
        link.send(commands)

    def _linked(self, node: ClusterNode) -> asyncio.Task[_Link]:
        linking = self._linking.get(node.name)
        if linking is None or linking.done():
            linking = self._linking[node.name] = asyncio.ensure_future(self._open_link(node))
        return linking

    async def _open_link(self, node: ClusterNode) -> _Link:
        old = self._links.pop(node.name, None)
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()
        # Made and greeted (AUTH, ...) exactly as redis-py makes this node's connections.
        connection = node.connection_class(**node.connection_kwargs)
        try:
            await connection.connect()  # type: ignore[no-untyped-call]
        except BaseException:
            await connection.disconnect(nowait=True)
            raise
        link = self._links[node.name] = _Link(connection, self)
        return link

    def _settle(self, waiting: _Waiting, reply: Any) -> None:
        if (
            isinstance(reply, (MovedError, AskError, TryAgainError, ClusterDownError))
            and isinstance(waiting, _Routed)
            and not waiting.future.done()
            and self._may_retry(waiting, reply)
        ):
            self._hold(self._redirect(waiting, reply))
            return
        _answer(waiting, reply, self._held)

    @staticmethod
    def _may_retry(waiting: _Routed, error: ResponseError) -> bool:
        """A command follows at most `_MAX_REDIRECTS` redirections; TRYAGAIN (its keys are
        split by a slot's move) and CLUSTERDOWN (a failover) are waited out for up to
        `_WAIT_SECONDS`, however many times they come back meanwhile."""
        if isinstance(error, (TryAgainError, ClusterDownError)):
            now = asyncio.get_running_loop().time()
            if waiting.wait_until is None:
                waiting.wait_until = now + _WAIT_SECONDS
            return now < waiting.wait_until
        waiting.redirects += 1
        return waiting.redirects <= _MAX_REDIRECTS

    async def _redirect(self, waiting: _Routed, error: ResponseError) -> None:
        """Sends a command again where the cluster said it belongs (or once it is ready)."""
        try:
            if isinstance(error, AskError):
                # The slot is moving: this one command goes to the importing node, once.
                node = self.nodes_manager.get_node(host=error.host, port=error.port)
                if node is None:
                    self._initialize = True
                    await self.initialize()
                    node = self.nodes_manager.get_node(host=error.host, port=error.port)
                if node is None:
                    raise error
                ignored = _Waiting(_future(), None, _NO_OPTIONS, False)
                self._send(node, [(_ASKING, ignored), (waiting.packed, waiting)])
                return
            if isinstance(error, MovedError):
                await self.nodes_manager.move_slot(error)  # the slot's owner from now on
            elif isinstance(error, TryAgainError):
                await asyncio.sleep(0.05)  # a multi-key command during a slot's move
            else:
                await asyncio.sleep(0.25)  # the cluster is down (a failover): look again
                self._initialize = True
                await self.initialize()
            self._queue(waiting)
        except Exception as exc:
            _fail(waiting.future, exc)

    def _lost(self) -> None:
        # A node's connection broke: it may have failed over or left; learn the topology
        # again before the next turn is sent.
        self._initialize = True

    def _hold(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._held.add(task)
        task.add_done_callback(self._held.discard)

    def register_script(self, script: str | bytes) -> AsyncScript:  # type: ignore[override]
        return _Script(self, script)

    async def aclose(self) -> None:
        if self._held:
            await asyncio.gather(*self._held, return_exceptions=True)
        links, self._links = self._links, {}
        for link in links.values():
            await link.close()
        await super().aclose()


class _Script(AsyncScript):
    """A registered script whose plain calls go straight to `execute_command` (and so into the
    turn's pipeline); calls on an explicit pipeline take redis-py's own path."""

    def __init__(self, registered_client: Redis | RedisCluster, script: str | bytes) -> None:
        super().__init__(registered_client, script)
        self._loading: asyncio.Future[str] | None = None

    async def __call__(
        self,
        keys: Any = None,
        args: Any = None,
        client: Any = None,
    ) -> Any:
        # `register_script` of one of the two clients above made it.
        redis = cast(AutoPipelineRedis, self.registered_client)
        if client is not None and client is not redis:
            if isinstance(client, ClusterPipeline):
                # A cluster pipeline sends EVALSHA to nodes that may never have seen the
                # script and cannot load it on NOSCRIPT: it queues the script itself. (Not
                # awaited: awaiting a cluster pipeline empties its queue.)
                keys = keys or ()
                return client.eval(cast(str, self.script), len(keys), *keys, *(args or ()))
            return await super().__call__(keys, args, client)
        keys = keys or ()
        args = args or ()
        try:
            return await redis.run_script(self.sha, keys, args)
        except NoScriptError:
            self.sha = await asyncio.shield(self._loaded())
            return await redis.run_script(self.sha, keys, args)

    def _loaded(self) -> asyncio.Future[str]:
        """The script being loaded (on every master of a cluster), loading it if nobody is:
        the callers that all met NOSCRIPT at once (a restarted or new node) share one load."""
        loading = self._loading
        if loading is None or loading.done():
            redis = cast(AutoPipelineRedis, self.registered_client)
            loading = asyncio.ensure_future(redis.script_load(self.script))
            self._loading = loading
        return loading


class ScriptCall:
    """A registered script's call, as a step of `in_order`."""

    __slots__ = ("args", "keys", "script")

    def __init__(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> None:
        self.script = script
        self.keys = keys
        self.args = args


# A step of `in_order`: a command's words (its name, then its arguments), or a script's call.
Step = tuple[Any, ...] | ScriptCall


async def in_order(redis: Redis, steps: Sequence[Step]) -> list[Any]:
    """Runs `steps` one after the other, as Redis sees them, and returns their replies; the
    first failure is raised once every step has been answered.

    On the client of one server (`AutoPipelineRedis`) every step goes out in this turn's
    write, so they cost one round trip and one wake-up of the caller, with no task; Redis
    runs them in the order given. A script Redis did not know yet (NOSCRIPT) is loaded and run
    again after the others. Any other client runs them in turn, each awaited."""
    if not isinstance(redis, AutoPipelineRedis):
        return [await _run_step(redis, step) for step in steps]
    queued = [redis._queue_step(step) for step in steps]
    replies: list[Any] = []
    failure: BaseException | None = None
    for step, future in zip(steps, queued, strict=True):
        try:
            reply = await future if future is not None else await _run_step(redis, step)
        except NoScriptError:
            reply = await _run_step(redis, step)  # loads it, then runs it again
        except Exception as exc:
            failure = failure or exc
            reply = None
        replies.append(reply)
    if failure is not None:
        raise failure
    return replies


async def _run_step(redis: Redis, step: Step) -> Any:
    if isinstance(step, ScriptCall):
        return await step.script(keys=step.keys, args=step.args)
    return await redis.execute_command(*step)  # type: ignore[no-untyped-call]


def _future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)


class HiredisPackingConnection(Connection):
    """A TCP connection that encodes commands with `hiredis.pack_command` (for the commands
    that go through the pool)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return [_pack(args)]

    def pack_commands(self, commands: Iterable[Iterable[Any]]) -> list[bytes]:
        """The whole pipeline as one buffer (redis-py's version cuts it into chunks, a copy
        the socket write does not need)."""
        return [b"".join([_pack(tuple(command)) for command in commands])]


def create_redis(settings: RedisSettings) -> Redis:
    """A client that sends the commands of one event-loop turn together (see
    `shared.redis_client`): `AutoPipelineCluster` when the server the URL names is a node of a
    Redis Cluster, else `AutoPipelineRedis`, whose pool makes callers wait for a free
    connection instead of failing.

    The cluster client has the same command methods; it is typed as `Redis` so that the stores
    need not care which one they were given.

    The settings' socket and connect timeouts apply to every connection either client makes:
    the pooled ones, the shared ones each turn's commands go on (a reply later than the socket
    timeout fails its callers and drops the connection) and a cluster's per-node ones."""
    timeouts = {
        "socket_timeout": settings.socket_timeout_seconds,
        "socket_connect_timeout": settings.connect_timeout_seconds,
    }
    if is_cluster(settings.url):
        cluster = AutoPipelineCluster.from_url(
            settings.url,
            decode_responses=True,
            max_connections=settings.max_connections,
            **timeouts,
        )
        return cast(Redis, cluster)
    pool = BlockingConnectionPool.from_url(
        settings.url,
        decode_responses=True,
        max_connections=settings.max_connections,
        **timeouts,
        timeout=10,
        # Plain TCP only: a `rediss://` or `unix://` URL names its own connection class.
        connection_class=HiredisPackingConnection,
    )
    # The client owns its pool: closing the client disconnects every pooled connection.
    return AutoPipelineRedis.from_pool(pool)


def is_cluster(url: str, wait_seconds: float = 30.0) -> bool:
    """Whether the server at `url` is a node of a Redis Cluster (`cluster_enabled` in INFO).

    Asked once, when a service builds its client; a server that is not up yet is asked again
    for up to `wait_seconds`, so services may start before Redis does."""
    probe = SyncRedis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                info = probe.info("cluster")
                return bool(int(info.get("cluster_enabled", 0)))
            except (RedisConnectionError, RedisTimeoutError):
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)
    finally:
        probe.close()
