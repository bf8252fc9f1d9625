"""A client that sends its request too slowly is cut off by the API process itself: a head
(request line and headers) sent a byte at a time, or a body that never finishes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.conftest import KafkaServer, RedisServer
from tests.stack import Stack
from tests.support import TOKEN

pytestmark = [pytest.mark.e2e, pytest.mark.redis_backends("single")]  # Redis plays no part

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0


@pytest.fixture
def stack(kafka_server: KafkaServer, redis_server: RedisServer, tmp_path: Path) -> Iterator[Stack]:
    running = Stack(
        kafka_server.bootstrap,
        redis_server.url,
        tmp_path,
        extra_env={
            "INGEST_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
            "INGEST_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
        },
    ).start(["ingest"])
    yield running
    running.stop()


async def test_a_head_sent_a_byte_at_a_time_is_cut_off(stack: Stack) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.api_port)
    head = f"GET /api/v1/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
    head += "X-Padding: " + "a" * 200 + "\r\n"  # never finished: no blank line
    loop = asyncio.get_running_loop()
    started = loop.time()
    cut_off = None
    try:
        for byte in head.encode():
            writer.write(bytes([byte]))
            await writer.drain()
            try:
                # Meanwhile the server may close the connection: that ends the test.
                cut_off = await asyncio.wait_for(reader.read(), 0.05)
                break
            except TimeoutError:
                continue
        else:
            raise AssertionError("the whole slow head was taken (about 12 s of trickling)")
    except ConnectionError:
        cut_off = b""
    finally:
        writer.close()
    assert loop.time() - started < HEADER_TIMEOUT + 5
    assert not cut_off.startswith(b"HTTP/1.1 2"), cut_off

    # The server still serves everyone else.
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.api_port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer


async def test_a_body_that_never_finishes_gets_408_and_the_connection_closes(
    stack: Stack,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.api_port)
    body = orjson.dumps({"name": "A", "prompt": "Hi"})
    writer.write(
        (
            "POST /api/v1/agents HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body) + 10}\r\n\r\n"
        ).encode()
        + body  # ten bytes short: the body never finishes
    )
    await writer.drain()
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BODY_TIMEOUT + 5)
        answered = loop.time() - started
        lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if line)
        answer = await reader.readexactly(int(headers["Content-Length"]))
        # aiohttp reads and drops what else comes for up to 10 s, then closes.
        assert await asyncio.wait_for(reader.read(), 15) == b""
    finally:
        writer.close()
    assert BODY_TIMEOUT * 0.9 <= answered < BODY_TIMEOUT + 5
    assert lines[0] == "HTTP/1.1 408 Request Timeout", head
    assert headers["Connection"] == "close"
    assert orjson.loads(answer) == {
        "success": False,
        "message": "The request body took too long to arrive.",
        "code": "REQUEST_TIMEOUT",
    }
