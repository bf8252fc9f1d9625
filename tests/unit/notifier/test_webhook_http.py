"""The HTTP sender against a receiver on loopback: results, answers kept, timeouts and refused
targets."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import time
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from services.notifier.adapters.webhook_http import (
    MAX_REPLY_BYTES,
    USER_AGENT,
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
    port = free_port()
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        result = await sender.send("POST", f"http://127.0.0.1:{port}/hooks", b"{}", {}, 5)

    assert result.status_code is None
    assert result.error is not None
    assert result.error.startswith(f"Cannot connect to 127.0.0.1:{port}: ConnectionRefusedError")
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


async def serve(endpoint: Answering, ssl_context: ssl.SSLContext | None = None) -> web.AppRunner:
    runner = web.AppRunner(endpoint.app(), handler_cancellation=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    endpoint.port = runner.addresses[0][1]
    return runner


@dataclass
class Answering:
    """An endpoint answering `/huge` with 64 MiB, streamed, and `/body` with `body`; it notes
    the client's address of each request (a new port is a new connection)."""

    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    peers: list[tuple[str, int]] = field(default_factory=list)
    huge_written: list[int] = field(default_factory=list)
    # How long `/slow` takes to answer, and how many requests it held at once at most.
    delay_s: float = 0.0
    busy: int = 0
    most_busy: int = 0
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

        async def chunked(request: web.Request) -> web.StreamResponse:
            self._note_peer(request)
            response = web.StreamResponse(status=200)
            response.enable_chunked_encoding()
            await response.prepare(request)
            for part in (b"one ", b"two ", b"three"):
                await response.write(part)
            await response.write_eof()
            return response

        async def slow(request: web.Request) -> web.Response:
            self._note_peer(request)
            self.busy += 1
            self.most_busy = max(self.most_busy, self.busy)
            try:
                await asyncio.sleep(self.delay_s)
            finally:
                self.busy -= 1
            return web.Response(status=200)

        app = web.Application()
        app.router.add_post("/huge", huge)
        app.router.add_post("/body", body)
        app.router.add_post("/chunked", chunked)
        app.router.add_post("/slow", slow)
        return app

    def _note_peer(self, request: web.Request) -> None:
        assert request.transport is not None
        self.peers.append(request.transport.get_extra_info("peername")[:2])


@pytest.fixture
async def answering() -> AsyncIterator[Answering]:
    endpoint = Answering()
    runner = await serve(endpoint)
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


@dataclass
class Scripted:
    """A bare HTTP endpoint: it answers the n-th request with `answers[n]` as raw bytes (`OK`
    once they run out), closes the connection after the answers listed in `close_after`,
    and notes each request as it came and the client's address it came from."""

    answers: list[bytes] = field(default_factory=list)
    close_after: set[int] = field(default_factory=set)
    requests: list[bytes] = field(default_factory=list)
    peers: list[tuple[str, int]] = field(default_factory=list)
    # Connections the client closed.
    hung_up: int = 0
    port: int = 0
    server: asyncio.Server | None = None

    OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async def start(self, host: str = "127.0.0.1") -> Scripted:
        self.server = await asyncio.start_server(self._serve, host, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    def url(self, path: str = "hooks") -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.hung_up += 1
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                index = len(self.requests)
                self.requests.append(request)
                self.peers.append(writer.get_extra_info("peername")[:2])
                writer.write(self.answers[index] if index < len(self.answers) else self.OK)
                await writer.drain()
                if index in self.close_after:
                    return
        finally:
            writer.close()


@pytest.fixture
async def scripted() -> AsyncIterator[Scripted]:
    endpoint = await Scripted().start()
    yield endpoint
    await endpoint.stop()


async def test_the_request_is_sent_as_http_1_1(scripted: Scripted) -> None:
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        result = await sender.send("PATCH", scripted.url("hooks?a=1"), b'{"x":1}', {"X-A": "1"}, 5)

    assert result.ok
    head, _, body = scripted.requests[0].partition(b"\r\n\r\n")
    request_line, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    assert request_line == "PATCH /hooks?a=1 HTTP/1.1"
    assert headers == {
        "Host": f"127.0.0.1:{scripted.port}",
        "X-A": "1",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Content-Length": "7",
    }
    assert USER_AGENT.startswith("campaign-calls-notifier/")
    assert body == b'{"x":1}'


async def test_a_user_agent_of_the_webhook_is_sent_instead(scripted: Scripted) -> None:
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        await sender.send("POST", scripted.url(), b"{}", {"user-agent": "Theirs/2"}, 5)

    head = scripted.requests[0].decode()
    assert "user-agent: Theirs/2\r\n" in head
    assert "User-Agent" not in head


async def test_sequential_requests_share_one_connection(answering: Answering) -> None:
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        for _ in range(3):
            result = await sender.send("POST", answering.url("body"), b"{}", {}, 5)
            assert result.status_code == 503
        assert sender.idle_connections == 1

    assert len(answering.peers) == 3
    assert len(set(answering.peers)) == 1


async def test_the_pool_opens_no_more_connections_than_its_limit(answering: Answering) -> None:
    answering.delay_s = 0.05
    async with HttpWebhookSender(2, allow_private_targets=True) as sender:
        results = await asyncio.gather(
            *(sender.send("POST", answering.url("slow"), b"{}", {}, 10) for _ in range(8))
        )

    assert [result.status_code for result in results] == [200] * 8
    assert answering.most_busy == 2
    assert len(set(answering.peers)) == 2


async def test_a_request_waits_for_a_connection_only_within_its_timeout(
    answering: Answering,
) -> None:
    answering.delay_s = 0.5
    async with HttpWebhookSender(1, allow_private_targets=True) as sender:
        slow = asyncio.create_task(sender.send("POST", answering.url("slow"), b"{}", {}, 5))

        async def slow_sent() -> bool:
            return answering.busy == 1

        await wait_until(slow_sent, within=5)
        waiting = await sender.send("POST", answering.url("body"), b"{}", {}, 0.1)
        assert (await slow).status_code == 200
        after = await sender.send("POST", answering.url("body"), b"{}", {}, 5)

    assert waiting.error == "Timed out after 0.1 s."
    assert after.status_code == 503
    # The one connection the limit allows carried both answered requests.
    assert len(set(answering.peers)) == 1


async def test_at_the_limit_an_idle_connection_to_another_host_makes_room(
    answering: Answering, scripted: Scripted
) -> None:
    async with HttpWebhookSender(1, allow_private_targets=True) as sender:
        first = await sender.send("POST", answering.url("body"), b"{}", {}, 5)
        second = await sender.send("POST", scripted.url(), b"{}", {}, 5)
        assert sender.idle_connections == 1

    assert (first.status_code, second.status_code) == (503, 200)


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ],
)
async def test_a_connection_the_answer_closes_is_not_used_again(
    scripted: Scripted, answer: bytes
) -> None:
    # The endpoint keeps its side open: the sender closes it on the answer's word alone.
    scripted.answers = [answer]
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        first = await sender.send("POST", scripted.url(), b"{}", {}, 5)
        assert sender.idle_connections == 0
        second = await sender.send("POST", scripted.url(), b"{}", {}, 5)

    assert (first.status_code, first.response_body) == (200, "ok")
    assert second.status_code == 200
    assert scripted.peers[0] != scripted.peers[1]


async def test_a_pooled_connection_the_server_closed_is_replaced(scripted: Scripted) -> None:
    scripted.close_after = {0}
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        first = await sender.send("POST", scripted.url(), b"{}", {}, 5)

        async def seen_closed() -> bool:
            return sender.idle_connections == 0

        await wait_until(seen_closed, within=5)
        second = await sender.send("POST", scripted.url(), b"{}", {}, 5)

    assert (first.status_code, second.status_code) == (200, 200)
    assert scripted.peers[0] != scripted.peers[1]


async def test_a_chunked_answer_is_read_whole_and_its_connection_kept(
    answering: Answering,
) -> None:
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        first = await sender.send("POST", answering.url("chunked"), b"{}", {}, 5)
        await sender.send("POST", answering.url("chunked"), b"{}", {}, 5)

    assert (first.status_code, first.response_body) == (200, "one two three")
    assert first.response_truncated is False
    assert answering.peers[0] == answering.peers[1]


async def test_an_answer_that_ends_with_its_connection_is_read_whole(scripted: Scripted) -> None:
    scripted.answers = [b"HTTP/1.1 202 Accepted\r\nConnection: close\r\n\r\nuntil the end"]
    scripted.close_after = {0}
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        result = await sender.send("POST", scripted.url(), b"{}", {}, 5)

    assert (result.status_code, result.response_body, result.error) == (202, "until the end", None)


async def test_an_interim_answer_is_passed_over(scripted: Scripted) -> None:
    scripted.answers = [
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nRetry-After: 5\r\nContent-Length: 4\r\n\r\ndone"
    ]
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        result = await sender.send("POST", scripted.url(), b"{}", {}, 5)
        again = await sender.send("POST", scripted.url(), b"{}", {}, 5)

    assert (result.status_code, result.response_body, result.retry_after) == (201, "done", "5")
    assert again.status_code == 200
    assert scripted.peers[0] == scripted.peers[1]


async def test_a_malformed_answer_is_a_retryable_failure(scripted: Scripted) -> None:
    scripted.answers = [b"NOT HTTP AT ALL\r\n\r\n"]
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        result = await sender.send("POST", scripted.url(), b"{}", {}, 5)
        after = await sender.send("POST", scripted.url(), b"{}", {}, 5)

    assert result.status_code is None
    assert result.error is not None
    assert result.error.startswith("Malformed reply: ")
    assert result.retryable
    assert after.status_code == 200
    assert scripted.peers[0] != scripted.peers[1]


async def test_an_answer_cut_short_by_the_server_is_a_retryable_failure(
    scripted: Scripted,
) -> None:
    scripted.answers = [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"]
    scripted.close_after = {0}
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        result = await sender.send("POST", scripted.url(), b"{}", {}, 5)

    assert result.status_code is None
    assert result.error == "Connection lost before the reply's end: closed by the server"
    assert result.retryable


async def test_a_timed_out_request_leaves_its_connection_out_of_the_pool(
    answering: Answering,
) -> None:
    answering.delay_s = 0.5
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        result = await sender.send("POST", answering.url("slow"), b"{}", {}, 0.1)
        assert sender.idle_connections == 0
        after = await sender.send("POST", answering.url("body"), b"{}", {}, 5)

    assert result.error == "Timed out after 0.1 s."
    assert after.status_code == 503
    assert answering.peers[0] != answering.peers[1]


@pytest.mark.parametrize("url", ["ftp://example.com/hooks", "http:///hooks", "not a url"])
async def test_an_invalid_url_is_not_retried(url: str) -> None:
    async with HttpWebhookSender(4) as sender:
        result = await sender.send("POST", url, b"{}", {}, 5)

    assert result.status_code is None
    assert result.error is not None
    assert result.error.startswith(f"Invalid URL: {url}")
    assert result.retryable is False


async def test_close_closes_the_pooled_connections(scripted: Scripted) -> None:
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        await sender.send("POST", scripted.url(), b"{}", {}, 5)
        assert sender.idle_connections == 1

    async def hung_up() -> bool:
        return scripted.hung_up == 1

    await wait_until(hung_up, within=5)


async def test_a_name_that_resolves_only_to_private_addresses_is_refused(
    scripted: Scripted,
) -> None:
    lookup = fixed("127.0.0.1", "10.0.0.1")
    async with HttpWebhookSender(4, lookup=lookup) as sender:
        result = await sender.send("POST", f"http://hooks.test:{scripted.port}/", b"{}", {}, 5)

    assert (result.error, result.retryable) == (REFUSED_TARGET, False)
    assert scripted.requests == []


async def test_the_next_address_is_tried_when_one_refuses(scripted: Scripted) -> None:
    # Nothing listens on 127.0.0.2; the endpoint is on 127.0.0.1.
    lookup = fixed("127.0.0.2", "127.0.0.1")
    async with HttpWebhookSender(4, allow_private_targets=True, lookup=lookup) as sender:
        result = await sender.send("POST", f"http://hooks.test:{scripted.port}/", b"{}", {}, 5)

    assert result.status_code == 200
    assert f"Host: hooks.test:{scripted.port}\r\n".encode() in scripted.requests[0]


async def test_a_name_that_does_not_resolve_is_a_retryable_failure() -> None:
    async def nowhere(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async with HttpWebhookSender(4, lookup=nowhere) as sender:
        result = await sender.send("POST", "http://hooks.test/", b"{}", {}, 5)

    assert result.error is not None
    assert result.error.startswith("Name resolution failed: gaierror")
    assert result.retryable


async def test_answers_are_kept_for_their_time_and_one_lookup_serves_many() -> None:
    calls: list[str] = []
    resolver = GuardedResolver(fixed("93.184.216.34", calls=calls))

    await asyncio.gather(*(resolver.resolve("hooks.example.com", 443) for _ in range(5)))
    await resolver.resolve("hooks.example.com", 443)
    assert calls == ["hooks.example.com"]

    expired = GuardedResolver(fixed("93.184.216.34", calls=calls), ttl_s=0)
    await expired.resolve("other.example.com", 443)
    await expired.resolve("other.example.com", 443)
    assert calls == ["hooks.example.com", "other.example.com", "other.example.com"]


async def test_unguarded_resolution_keeps_every_address() -> None:
    resolver = GuardedResolver(fixed("10.0.0.1", "::1"), guard=False)

    assert await resolver.resolve("internal.example.com", 80) == ["10.0.0.1", "::1"]


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_an_ipv6_literal_host_is_reached() -> None:
    endpoint = await Scripted().start("::1")
    try:
        async with HttpWebhookSender(4, allow_private_targets=True) as sender:
            result = await sender.send("POST", f"http://[::1]:{endpoint.port}/h", b"{}", {}, 5)
    finally:
        await endpoint.stop()

    assert result.status_code == 200
    assert f"Host: [::1]:{endpoint.port}\r\n".encode() in endpoint.requests[0]


@dataclass
class Certificate:
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for localhost and 127.0.0.1."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    made = Certificate(folder / "cert.pem", folder / "key.pem")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(made.key),
            "-out",
            str(made.cert),
        ],
        check=True,
        capture_output=True,
    )
    return made


@pytest.fixture
async def tls_answering(certificate: Certificate) -> AsyncIterator[Answering]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert, certificate.key)
    endpoint = Answering(body=b"secure")
    runner = await serve(endpoint, context)
    yield endpoint
    await runner.cleanup()


async def test_an_untrusted_certificate_fails_the_send(tls_answering: Answering) -> None:
    url = f"https://localhost:{tls_answering.port}/body"
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        result = await sender.send("POST", url, b"{}", {}, 5)

    assert result.status_code is None
    assert result.error is not None
    assert result.error.startswith(
        f"Cannot connect to localhost:{tls_answering.port}: SSLCertVerificationError"
    )
    assert result.retryable
    assert tls_answering.peers == []


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_a_trusted_certificate_carries_the_send(
    tls_answering: Answering, certificate: Certificate, host: str
) -> None:
    trusted = ssl.create_default_context(cafile=str(certificate.cert))
    url = f"https://{host}:{tls_answering.port}/body"
    async with HttpWebhookSender(4, allow_private_targets=True, ssl_context=trusted) as sender:
        first = await sender.send("POST", url, b"{}", {}, 5)
        second = await sender.send("POST", url, b"{}", {}, 5)

    assert (first.status_code, first.response_body) == (503, "secure")
    assert second.status_code == 503
    assert tls_answering.peers[0] == tls_answering.peers[1]


async def test_a_url_with_credentials_sends_them_unless_an_authorization_is_given(
    scripted: Scripted,
) -> None:
    url = f"http://user:secret@127.0.0.1:{scripted.port}/hooks"
    async with HttpWebhookSender(4, allow_private_targets=True) as sender:
        await sender.send("POST", url, b"{}", {}, 5)
        await sender.send("POST", url, b"{}", {"Authorization": "Bearer t"}, 5)

    assert b"Authorization: Basic dXNlcjpzZWNyZXQ=\r\n" in scripted.requests[0]
    assert b"Authorization: Bearer t\r\n" in scripted.requests[1]
    assert b"Basic" not in scripted.requests[1]
