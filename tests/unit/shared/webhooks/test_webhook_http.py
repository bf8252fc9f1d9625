"""The HTTP sender against a receiver on loopback: results, timeouts and refused targets."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from shared.rules.webhook_targets import REFUSED_TARGET
from shared.webhooks.webhook_http import (
    GuardedResolver,
    HttpWebhookSender,
    RefusedTarget,
)
from tests.support import Receiver


class FixedResolver(AbstractResolver):
    """Answers every name with the given addresses."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
            for address in self.addresses
        ]

    async def close(self) -> None:
        pass


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
    resolver = GuardedResolver(FixedResolver("10.0.0.1", "93.184.216.34", "::1"))

    resolved = await resolver.resolve("hooks.example.com", 443)

    assert [entry["host"] for entry in resolved] == ["93.184.216.34"]


@pytest.mark.parametrize(
    "addresses",
    [("127.0.0.1",), ("10.0.0.1", "169.254.169.254"), ("::1", "fe80::1")],
)
async def test_the_resolver_refuses_a_name_with_only_private_addresses(
    addresses: tuple[str, ...],
) -> None:
    resolver = GuardedResolver(FixedResolver(*addresses))

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
    assert "ClientConnectorError" in result.error
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
