"""Delivers a signed body to a customer's URL over HTTP, refusing private targets."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from typing import Final

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from shared.rules.webhook_targets import REFUSED_TARGET, is_refused_address, literal_address

# The most of an answer's body that is read and kept; the rest is never read.
MAX_REPLY_BYTES: Final = 64 * 1024


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


class GuardedResolver(AbstractResolver):
    """Resolves as `inner` does, keeping only addresses a webhook may reach.

    The check is on the addresses the connection is made to, so a name that resolves to a
    private address at send time is refused whatever it resolved to when the webhook was saved.
    """

    def __init__(self, inner: AbstractResolver) -> None:
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        resolved = await self._inner.resolve(host, port, family)
        allowed = [entry for entry in resolved if not is_refused_address(entry["host"])]
        if not allowed:
            raise RefusedTarget(f"{host} resolves only to refused addresses")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


async def _read_reply(response: aiohttp.ClientResponse) -> tuple[str, bool]:
    """The first MAX_REPLY_BYTES of the body as text, and whether more was coming; when it
    was, the connection is dropped rather than drained or pooled."""
    kept = bytearray()
    # One byte past the limit tells a body of exactly the limit from a longer one.
    while len(kept) <= MAX_REPLY_BYTES:
        chunk = await response.content.read(MAX_REPLY_BYTES + 1 - len(kept))
        if not chunk:
            break
        kept += chunk
    truncated = len(kept) > MAX_REPLY_BYTES
    if truncated:
        response.close()
    return kept[:MAX_REPLY_BYTES].decode("utf-8", errors="replace"), truncated


@lru_cache(maxsize=256)
def _timeout(total_s: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total_s)


def _refused(started: float) -> DeliveryResult:
    return DeliveryResult(None, (time.perf_counter() - started) * 1000, REFUSED_TARGET, False)


def _is_refusal(exc: BaseException) -> bool:
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, RefusedTarget):
        return True
    return isinstance(exc, RefusedTarget) or isinstance(exc.__cause__, RefusedTarget)


class HttpWebhookSender:
    def __init__(self, max_connections: int, allow_private_targets: bool = False) -> None:
        self._limit = max_connections
        self._allow_private = allow_private_targets
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Opens the connection pool; it needs the running event loop."""
        resolver = None if self._allow_private else GuardedResolver(DefaultResolver())
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._limit, resolver=resolver)
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

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
        most MAX_REPLY_BYTES of the answer."""
        headers.setdefault("Content-Type", "application/json")
        if self._session is None:
            raise RuntimeError("HttpWebhookSender.start() was not called")
        started = time.perf_counter()
        if not self._allow_private:
            # A literal address never reaches the resolver, so it is checked here.
            address = literal_address(URL(url).host or "")
            if address is not None and is_refused_address(address):
                return _refused(started)
        try:
            async with self._session.request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=_timeout(timeout_s),
                allow_redirects=False,
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                text, truncated = await _read_reply(response)
        except TimeoutError:
            # aiohttp's own timeout errors are TimeoutError too (and ClientError), so first.
            elapsed = (time.perf_counter() - started) * 1000
            return DeliveryResult(None, elapsed, f"Timed out after {timeout_s:g} s.")
        except aiohttp.InvalidURL as exc:
            elapsed = (time.perf_counter() - started) * 1000
            return DeliveryResult(None, elapsed, f"Invalid URL: {exc}", retryable=False)
        except (aiohttp.ClientError, RefusedTarget) as exc:
            if _is_refusal(exc):
                return _refused(started)
            elapsed = (time.perf_counter() - started) * 1000
            return DeliveryResult(None, elapsed, f"{type(exc).__name__}: {exc}")
        elapsed = (time.perf_counter() - started) * 1000
        return DeliveryResult(
            status,
            elapsed,
            None,
            response_body=text,
            response_truncated=truncated,
            retry_after=retry_after,
        )
