"""The HTTP sender against a receiver on loopback: results, answers kept, timeouts and refused
targets."""

from __future__ import annotations

import socket
import time
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from services.notifier.adapters.webhook_http import (
    MAX_REPLY_BYTES,
    GuardedResolver,
    HttpWebhookSender,
    Lookup,
    RefusedTarget,
)
from shared.rules.webhook_targets import REFUSED_TARGET
from tests.conftest import wait_until
from tests.support import Receiver

HUGE = 64 * 1024 * 1024


def fixed(*addresses: str, calls: list[str] | None = None) -> Lookup:
    """A lookup answering every name with `addresses`, noting each name it is asked."""

    async def lookup(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return list(addresses)

    return lookup


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_resolver_keeps_only_public_addresses() -> None:
    resolver = GuardedResolver(fixed("10.0.0.1", "93.184.216.34", "::1"))

    resolved = await resolver.resolve("hooks.example.com", 443)

    assert resolved == ["93.184.216.34"]


@pytest.mark.parametrize(
    "addresses",
    [("127.0.0.1",), ("10.0.0.1", "169.254.169.254"), ("::1", "fe80::1")],
)
async def test_the_resolver_refuses_a_name_with_only_private_addresses(
    addresses: tuple[str, ...],
) -> None:
    resolver = GuardedResolver(fixed(*addresses))

    with pytest.raises(RefusedTarget):
        await resolver.resolve("internal.example.com", 443)


async def test_a_2xx_is_ok(receiver: Receiver) -> None:
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        result = await sender.send("PUT", receiver.url, b"{}", {"X-A": "1"}, 5)

    assert result.ok
    assert result.status_code == 200
    assert result.error is None
    assert result.latency_ms >= 0
    (delivery,) = receiver.deliveries
    assert delivery.method == "PUT"
    assert delivery.headers["X-A"] == "1"
    assert delivery.headers["Content-Type"] == "application/json"


async def test_a_non_2xx_is_a_retryable_failure(receiver: Receiver) -> None:
    receiver.statuses = [503]
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        result = await sender.send("POST", receiver.url, b"{}", {}, 5)

    assert not result.ok
    assert result.status_code == 503
    assert result.retryable


async def test_a_slow_receiver_times_out(receiver: Receiver) -> None:
    receiver.delay_s = 0.5
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        result = await sender.send("POST", receiver.url, b"{}", {}, 0.1)

    assert result.status_code is None
    assert result.error == "Timed out after 0.1 s."
    assert result.retryable
    assert 100 <= result.latency_ms < 500


async def test_a_refused_connection_is_a_retryable_failure() -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks"
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        result = await sender.send("POST", url, b"{}", {}, 5)

    assert result.status_code is None
    assert result.error is not None
    assert result.error.startswith("Connection failed: ConnectionRefusedError")
    assert result.retryable


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "169.254.169.254", "10.1.2.3", "localhost"])
async def test_private_targets_are_refused_without_retry(receiver: Receiver, host: str) -> None:
    async with HttpWebhookSender(4, allow_private_targets=False) as sender:
        result = await sender.send("POST", f"http://{host}:{receiver.port}/hooks", b"{}", {}, 5)

    assert result.status_code is None
    assert result.error == REFUSED_TARGET
    assert result.retryable is False
    assert receiver.deliveries == []


async def test_private_targets_are_reached_when_allowed(receiver: Receiver) -> None:
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        result = await sender.send("POST", f"http://localhost:{receiver.port}/hooks", b"{}", {}, 5)

    assert result.ok


@dataclass
class Answering:
    """An endpoint answering `/huge` with 64 MiB, streamed, and `/body` with `body`; it notes
    the client's address of each request (a new port is a new connection)."""

    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    peers: list[tuple[str, int]] = field(default_factory=list)
    huge_written: list[int] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def app(self) -> web.Application:
        async def huge(request: web.Request) -> web.StreamResponse:
            self._note_peer(request)
            response = web.StreamResponse(status=500)
            response.content_length = HUGE
            await response.prepare(request)
            chunk = b"x" * 65_536
            written = 0
            try:
                while written < HUGE:
                    await response.write(chunk)
                    written += len(chunk)
            except ConnectionError:
                pass  # the sender hung up, as it should
            finally:
                self.huge_written.append(written)
            return response

        async def body(request: web.Request) -> web.Response:
            self._note_peer(request)
            return web.Response(status=503, body=self.body, headers=self.headers)

        app = web.Application()
        app.router.add_post("/huge", huge)
        app.router.add_post("/body", body)
        return app

    def _note_peer(self, request: web.Request) -> None:
        assert request.transport is not None
        self.peers.append(request.transport.get_extra_info("peername")[:2])


@pytest.fixture
async def answering() -> AsyncIterator[Answering]:
    endpoint = Answering()
    runner = web.AppRunner(endpoint.app(), handler_cancellation=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    endpoint.port = runner.addresses[0][1]
    yield endpoint
    await runner.cleanup()


async def test_the_answer_and_its_retry_after_are_kept(answering: Answering) -> None:
    answering.body = b'{"error": "overloaded"}'
    answering.headers = {"Retry-After": "120"}
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        result = await sender.send("POST", answering.url("body"), b"{}", {}, 5)

    assert (result.status_code, result.response_body) == (503, '{"error": "overloaded"}')
    assert result.response_truncated is False
    assert result.retry_after == "120"


async def test_an_answer_without_a_body_or_retry_after(answering: Answering) -> None:
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        result = await sender.send("POST", answering.url("body"), b"{}", {}, 5)

    assert (result.response_body, result.response_truncated, result.retry_after) == (
        "",
        False,
        None,
    )


async def test_no_answer_keeps_no_body(receiver: Receiver) -> None:
    receiver.delay_s = 0.5
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        result = await sender.send("POST", receiver.url, b"{}", {}, 0.1)

    assert (result.status_code, result.response_body) == (None, None)


async def test_bytes_that_are_not_utf8_are_replaced(answering: Answering) -> None:
    answering.body = b"ok \xff\xfe done"
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        result = await sender.send("POST", answering.url("body"), b"{}", {}, 5)

    assert result.response_body == "ok \ufffd\ufffd done"


async def test_an_answer_of_exactly_the_limit_is_kept_whole_on_a_pooled_connection(
    answering: Answering,
) -> None:
    assert MAX_REPLY_BYTES == 64 * 1024
    answering.body = b"a" * MAX_REPLY_BYTES
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        first = await sender.send("POST", answering.url("body"), b"{}", {}, 5)
        await sender.send("POST", answering.url("body"), b"{}", {}, 5)

    assert first.response_body == "a" * MAX_REPLY_BYTES
    assert first.response_truncated is False
    # Read to its end, the connection went back to the pool and carried the next request.
    assert answering.peers[0] == answering.peers[1]


async def test_a_huge_answer_is_cut_at_the_limit_and_its_connection_dropped(
    answering: Answering,
) -> None:
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        tracemalloc.start()
        try:
            started = time.perf_counter()
            result = await sender.send("POST", answering.url("huge"), b"{}", {}, 30)
            elapsed = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        after = await sender.send("POST", answering.url("body"), b"{}", {}, 5)

    assert result.status_code == 500
    assert result.response_body == "x" * MAX_REPLY_BYTES
    assert result.response_truncated is True
    # A few buffers' worth, not the 64 MiB that came at it.
    assert peak < 4 * 1024 * 1024, peak
    assert elapsed < 5
    assert after.status_code == 503

    async def receiver_gave_up() -> bool:
        return bool(answering.huge_written)

    await wait_until(receiver_gave_up, within=10)
    # The endpoint could not write the rest: the sender hung up instead of draining it ...
    assert answering.huge_written[0] < HUGE
    # ... and the next request went on a new connection.
    assert answering.peers[0] != answering.peers[1]
