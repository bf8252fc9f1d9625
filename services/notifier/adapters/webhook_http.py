"""Delivers a signed body to a customer's URL over HTTP."""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    status_code: int | None
    latency_ms: float
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class HttpWebhookSender:
    def __init__(self, max_connections: int) -> None:
        self._limit = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Opens the connection pool; it needs the running event loop."""
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self._limit))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(
        self, method: str, url: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> DeliveryResult:
        if self._session is None:
            raise RuntimeError("HttpWebhookSender.start() was not called")
        started = time.perf_counter()
        try:
            async with self._session.request(
                method,
                url,
                data=body,
                headers={"Content-Type": "application/json", **headers},
                timeout=aiohttp.ClientTimeout(total=timeout_s),
                allow_redirects=False,
            ) as response:
                await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            return DeliveryResult(None, (time.perf_counter() - started) * 1000, repr(exc))
        return DeliveryResult(status, (time.perf_counter() - started) * 1000, None)
