"""Delivers a signed body to a customer's URL over HTTP/1.1, refusing private targets.

A lean client on asyncio protocols, with httptools (llhttp) parsing the answers: each request is
one write of bytes built in one go, and an answer is parsed as it comes, keeping only its
status, its Retry-After header and at most MAX_REPLY_BYTES of its body. Connections are kept
alive in a pool per (scheme, host, port), within one limit for the process. Redirects are not
followed and nothing is decompressed (no Accept-Encoding is sent).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from types import TracebackType
from typing import Final, cast

import httptools
from yarl import URL

from shared.rules.webhook_targets import REFUSED_TARGET, is_refused_address, literal_address

# The most of an answer's body that is read and kept; the rest is never read.
MAX_REPLY_BYTES: Final = 64 * 1024
# How long a name's addresses are used before it is resolved again (aiohttp's default).
DNS_TTL_S: Final = 10.0
# The most names whose addresses are kept; past it the cache starts again.
_DNS_CACHE_SIZE: Final = 1024
# How long a pooled connection may stay unused before it is closed rather than used (aiohttp's
# default): servers close idle connections after a while, some after a few seconds.
KEEPALIVE_S: Final = 15.0


def _user_agent() -> str:
    try:
        version = metadata.version("campaign-calls")
    except metadata.PackageNotFoundError:
        version = "0"
    return f"campaign-calls-notifier/{version}"


# Sent unless the webhook's own headers name one.
USER_AGENT: Final = _user_agent()


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    status_code: int | None
    latency_ms: float
    error: str | None
    # False when sending again cannot help (the target is refused): no retry is scheduled.
    retryable: bool = True
    # The answer's body as text, its first MAX_REPLY_BYTES (None when no answer came), and
    # whether more came than that.
    response_body: str | None = None
    response_truncated: bool = False
    # The answer's Retry-After header as it came, if any.
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class RefusedTarget(OSError):
    """Every address of the host is one the operator does not allow."""


class _InvalidURL(ValueError):
    """A URL the sender cannot send to."""


class _Failure(Exception):
    """A send that failed on the way: its message is the attempt's error."""


# Looks a name up: the addresses (as text) a connection to (host, port) may be made to.
Lookup = Callable[[str, int], Awaitable[list[str]]]


async def system_lookup(host: str, port: int) -> list[str]:
    """The host's addresses from the system's resolver (getaddrinfo), each once, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = str(sockaddr[0])
            if address not in addresses:
                addresses.append(address)
    return addresses


class GuardedResolver:
    """Resolves names with `lookup`, keeping the answers DNS_TTL_S, and (when `guard`) only the
    addresses a webhook may reach.

    The check is on the addresses the connection is made to, so a name that resolves to a
    private address at send time is refused whatever it resolved to when the webhook was saved.
    Lookups of one name at the same time are made once.
    """

    def __init__(
        self, lookup: Lookup = system_lookup, *, guard: bool = True, ttl_s: float = DNS_TTL_S
    ) -> None:
        self._lookup = lookup
        self._guard = guard
        self._ttl_s = ttl_s
        self._cache: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._pending: dict[tuple[str, int], asyncio.Task[list[str]]] = {}

    async def resolve(self, host: str, port: int) -> list[str]:
        key = (host, port)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            addresses = cached[1]
        else:
            task = self._pending.get(key)
            if task is None:
                task = asyncio.ensure_future(self._look_up(key))
                self._pending[key] = task
                task.add_done_callback(self._forget)
            # One caller's timeout does not stop the lookup the others wait for.
            addresses = await asyncio.shield(task)
        if not self._guard:
            return addresses
        allowed = [address for address in addresses if not is_refused_address(address)]
        if not allowed:
            raise RefusedTarget(f"{host} resolves only to refused addresses")
        return allowed

    def _forget(self, task: asyncio.Task[list[str]]) -> None:
        for key, pending in list(self._pending.items()):
            if pending is task:
                del self._pending[key]
        if not task.cancelled():
            task.exception()  # retrieved here when every caller had given up waiting

    async def _look_up(self, key: tuple[str, int]) -> list[str]:
        addresses = await self._lookup(*key)
        if len(self._cache) >= _DNS_CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + self._ttl_s, addresses)
        return addresses


PoolKey = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class _Target:
    """What a URL comes to: where to connect and the request line and Host header."""

    key: PoolKey
    host: str  # as resolved and checked against the certificate: IDNA, IPv6 without brackets
    port: int
    tls: bool
    # The host when it is an address rather than a name.
    literal: str | None
    # " <path?query> HTTP/1.1\r\nHost: <host[:port]>\r\n", which the method goes before.
    head: str
    # "Authorization: Basic ...\r\n" from the URL's user and password, sent unless the
    # webhook's headers carry an Authorization of their own.
    authorization: str | None = None


@lru_cache(maxsize=1024)
def _target(url: str) -> _Target:
    try:
        parsed = URL(url)
        scheme = parsed.scheme
        host = parsed.raw_host
        port = parsed.port
        path = parsed.raw_path_qs
        user, password = parsed.user, parsed.password
    except (ValueError, TypeError, UnicodeError) as exc:
        raise _InvalidURL(f"{url} ({exc})") from exc
    if scheme not in ("http", "https"):
        raise _InvalidURL(f"{url} (not http or https)")
    if not host or port is None:
        raise _InvalidURL(f"{url} (no host)")
    authority = f"[{host}]" if ":" in host else host
    if not parsed.is_default_port():
        authority = f"{authority}:{port}"
    authorization = None
    if user is not None or password is not None:
        credentials = base64.b64encode(f"{user or ''}:{password or ''}".encode()).decode()
        authorization = f"Authorization: Basic {credentials}\r\n"
    return _Target(
        key=(scheme, host, port),
        host=host,
        port=port,
        tls=scheme == "https",
        literal=literal_address(host),
        head=f" {path or '/'} HTTP/1.1\r\nHost: {authority}\r\n",
        authorization=authorization,
    )


def _request_bytes(method: str, target: _Target, body: bytes, headers: dict[str, str]) -> bytes:
    parts = [method, target.head]
    agent = True
    for name, value in headers.items():
        if agent and len(name) == 10 and name.lower() == "user-agent":
            agent = False
        parts += (name, ": ", value, "\r\n")
    if agent:
        parts.append(f"User-Agent: {USER_AGENT}\r\n")
    if target.authorization is not None and not any(
        name.lower() == "authorization" for name in headers
    ):
        parts.append(target.authorization)
    parts.append(f"Content-Length: {len(body)}\r\n\r\n")
    return "".join(parts).encode() + body


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: sends a request, parses its answer into the fields kept."""

    def __init__(self, key: PoolKey, pool: _Pool) -> None:
        self.key = key
        self._pool = pool
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        # In the pool's idle list, and since when (time.monotonic()).
        self.idle = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._done = True
        # The answer to the request under way.
        self.status = 0
        self.retry_after: str | None = None
        self.body = bytearray()
        self.truncated = False
        self.keep_alive = False
        self._headers_done = False
        # Whether the answer says where its body ends (Content-Length or chunked); one that
        # does not ends when the connection does.
        self._framed = False

    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def request(self, data: bytes) -> asyncio.Future[None]:
        """Sends `data`; the future is done when the answer has come (or an error)."""
        assert self.transport is not None
        self.status = 0
        self.retry_after = None
        self.body = bytearray()
        self.truncated = False
        self.keep_alive = False
        self._headers_done = False
        self._framed = False
        self._done = False
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _finish(self, keep_alive: bool) -> None:
        self._done = True
        self.keep_alive = keep_alive
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, message: str) -> None:
        self._give_up(_Failure(message))

    def expire(self) -> None:
        """The request's time is up: the answer no longer counts, nor the connection."""
        if not self._done:
            self._give_up(TimeoutError())

    def _give_up(self, exc: Exception) -> None:
        self._done = True
        self.keep_alive = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._done:
            # Bytes no request asked for: the connection is out of step, so it goes.
            self.keep_alive = False
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"Malformed reply: {type(exc).__name__}: {exc}")
        except httptools.HttpParserUpgrade:
            self._fail("Malformed reply: an upgrade that was not asked for")

    def eof_received(self) -> bool | None:
        return False  # the transport closes; connection_lost tells what it means

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._done:
            if exc is None and self._headers_done and not self._framed and self.status >= 200:
                self._finish(False)  # a body that ends with the connection, now whole
            else:
                cause = "closed by the server" if exc is None else f"{type(exc).__name__}: {exc}"
                self._fail(f"Connection lost before the reply's end: {cause}")
        elif self.idle:
            self._pool.discard(self)

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self._done:
            # A message after the answer, which no request asked for: parsing stops here.
            raise _Failure("Malformed reply: more than the answer came")

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"retry-after":
            self.retry_after = value.decode("latin-1")
        elif lowered == b"content-length" or lowered == b"transfer-encoding":
            self._framed = True

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        if self._done:
            return
        self.body += body
        if len(self.body) > MAX_REPLY_BYTES:
            # One byte past the limit tells a body of exactly the limit from a longer one; the
            # rest is not read: the connection is dropped rather than drained or pooled.
            self.truncated = True
            self._finish(False)
            self.close()

    def on_message_complete(self) -> None:
        if self._done:
            return
        if self.status < 200:
            # An interim answer (100 Continue and the like): the final one follows.
            self.retry_after = None
            self.body = bytearray()
            self._headers_done = False
            self._framed = False
            return
        self._finish(self.keep_alive)


Connect = Callable[["_Target"], Awaitable[_Connection]]


class _Pool:
    """Keep-alive connections per (scheme, host, port), at most `limit` open in all (idle, in
    use or being opened); a request waits for room as long as its timeout lets it."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._open = 0
        self._idle: dict[PoolKey, list[_Connection]] = {}
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.closed = False

    @property
    def idle_count(self) -> int:
        return sum(len(connections) for connections in self._idle.values())

    def take_idle(self, key: PoolKey) -> _Connection | None:
        """A pooled connection to `key` still fit for a request, if there is one."""
        idle = self._idle.get(key)
        while idle:
            # The one used last is the least likely to have been closed by the server.
            connection = idle.pop()
            connection.idle = False
            if connection.usable() and time.monotonic() - connection.idle_since < KEEPALIVE_S:
                return connection
            self._drop(connection)
        return None

    async def acquire(self, target: _Target, connect: Connect) -> _Connection:
        """A pooled connection, else a new one when the limit allows, else the first of these
        to come free (or room made by closing an idle connection to another host)."""
        if self.closed:
            raise RuntimeError("HttpWebhookSender was closed")
        while True:
            connection = self.take_idle(target.key)
            if connection is not None:
                return connection
            if self._open < self._limit:
                self._open += 1
                try:
                    return await connect(target)
                except BaseException:
                    self._open -= 1
                    self._wake()
                    raise
            if self._evict_idle():
                continue
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken but leaving: the room goes to the next in line
                else:
                    waiter.cancel()
                    with contextlib.suppress(ValueError):  # _wake may have passed it over
                        self._waiters.remove(waiter)
                raise

    def release(self, connection: _Connection, reuse: bool) -> None:
        if reuse and not self.closed and connection.usable():
            now = time.monotonic()
            connection.idle = True
            connection.idle_since = now
            idle = self._idle.setdefault(connection.key, [])
            # Those unused too long are at the front: closed here rather than found later.
            while idle and now - idle[0].idle_since >= KEEPALIVE_S:
                expired = idle.pop(0)
                expired.idle = False
                self._drop(expired)
            idle.append(connection)
        else:
            self._drop(connection)
        self._wake()

    def discard(self, connection: _Connection) -> None:
        """An idle connection the server closed."""
        idle = self._idle.get(connection.key)
        if idle is not None and connection in idle:
            idle.remove(connection)
            connection.idle = False
            self._drop(connection)
            self._wake()

    def close(self) -> None:
        self.closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.idle = False
                self._drop(connection)
        self._idle.clear()

    def _drop(self, connection: _Connection) -> None:
        connection.close()
        self._open -= 1

    def _evict_idle(self) -> bool:
        """Closes an idle connection to another host to make room, if there is one."""
        for idle in self._idle.values():
            if idle:
                connection = idle.pop(0)
                connection.idle = False
                self._drop(connection)
                return True
        return False

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def _refused(started: float) -> DeliveryResult:
    return DeliveryResult(None, (time.perf_counter() - started) * 1000, REFUSED_TARGET, False)


class HttpWebhookSender:
    """Sends webhook requests; `max_connections` bounds the connections open at once.

    `ssl_context` verifies https targets (the system's trusted certificates by default);
    `lookup` resolves names (the system's resolver by default).
    """

    def __init__(
        self,
        max_connections: int,
        allow_private_targets: bool = False,
        *,
        ssl_context: ssl.SSLContext | None = None,
        lookup: Lookup = system_lookup,
    ) -> None:
        self._limit = max_connections
        self._allow_private = allow_private_targets
        self._ssl_context = ssl_context
        self._resolver = GuardedResolver(lookup, guard=not allow_private_targets)
        self._pool: _Pool | None = None

    @property
    def idle_connections(self) -> int:
        """Connections kept open for the next requests."""
        return 0 if self._pool is None else self._pool.idle_count

    async def start(self) -> None:
        """Opens the connection pool."""
        self._pool = _Pool(self._limit)

    async def close(self) -> None:
        """Closes every pooled connection; one in use is closed as its request ends."""
        if self._pool is not None:
            self._pool.close()

    async def __aenter__(self) -> HttpWebhookSender:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def send(
        self, method: str, url: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> DeliveryResult:
        """Sends `body` as JSON with `headers` (to which Content-Type is added) and reads at
        most MAX_REPLY_BYTES of the answer; the timeout covers connecting, sending and the
        answer."""
        headers.setdefault("Content-Type", "application/json")
        pool = self._pool
        if pool is None:
            raise RuntimeError("HttpWebhookSender.start() was not called")
        started = time.perf_counter()
        try:
            target = _target(url)
        except _InvalidURL as exc:
            elapsed = (time.perf_counter() - started) * 1000
            return DeliveryResult(None, elapsed, f"Invalid URL: {exc}", retryable=False)
        if (
            target.literal is not None
            and not self._allow_private
            and is_refused_address(target.literal)
        ):
            return _refused(started)
        data = _request_bytes(method, target, body, headers)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            connection = pool.take_idle(target.key)
            if connection is None:
                async with asyncio.timeout_at(deadline):
                    connection = await pool.acquire(target, self._connect)
            # The answer's wait is timed by the connection itself: one timer, no cancellation.
            waiter = connection.request(data)
            expiry = loop.call_at(deadline, connection.expire)
            try:
                await waiter
            except BaseException:
                pool.release(connection, False)
                raise
            finally:
                expiry.cancel()
        except TimeoutError:
            elapsed = (time.perf_counter() - started) * 1000
            return DeliveryResult(None, elapsed, f"Timed out after {timeout_s:g} s.")
        except RefusedTarget:
            return _refused(started)
        except _Failure as exc:
            return DeliveryResult(None, (time.perf_counter() - started) * 1000, str(exc))
        pool.release(connection, connection.keep_alive)
        elapsed = (time.perf_counter() - started) * 1000
        return DeliveryResult(
            connection.status,
            elapsed,
            None,
            response_body=connection.body[:MAX_REPLY_BYTES].decode("utf-8", errors="replace"),
            response_truncated=connection.truncated,
            retry_after=connection.retry_after,
        )

    async def _connect(self, target: _Target) -> _Connection:
        """A new connection to the target, at the first of its (allowed) addresses that takes
        it."""
        if target.literal is not None:
            addresses = [target.literal]
        else:
            try:
                addresses = await self._resolver.resolve(target.host, target.port)
            except RefusedTarget:
                raise
            except OSError as exc:
                raise _Failure(f"Name resolution failed: {type(exc).__name__}: {exc}") from exc
        context: ssl.SSLContext | None = None
        if target.tls:
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            context = self._ssl_context
        assert self._pool is not None
        pool = self._pool
        loop = asyncio.get_running_loop()
        failure: OSError | None = None
        for address in addresses:
            try:
                _, connection = await loop.create_connection(
                    lambda: _Connection(target.key, pool),
                    address,
                    target.port,
                    ssl=context,
                    server_hostname=target.host if context is not None else None,
                )
            except OSError as exc:
                failure = exc
                continue
            return connection
        authority = f"[{target.host}]" if ":" in target.host else target.host
        raise _Failure(
            f"Cannot connect to {authority}:{target.port}: {type(failure).__name__}: {failure}"
        )
