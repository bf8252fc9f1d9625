from __future__ import annotations

import pytest

from shared.rules.webhook_targets import is_refused_address, is_refused_host, literal_address


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("127.0.0.1", id="loopback"),
        pytest.param("127.8.9.10", id="loopback-range"),
        pytest.param("::1", id="loopback-v6"),
        pytest.param("10.1.2.3", id="private-10"),
        pytest.param("172.16.0.1", id="private-172"),
        pytest.param("192.168.1.1", id="private-192"),
        pytest.param("169.254.169.254", id="link-local-metadata"),
        pytest.param("fe80::1", id="link-local-v6"),
        pytest.param("fe80::1%eth0", id="link-local-v6-scoped"),
        pytest.param("fc00::1", id="unique-local-v6"),
        pytest.param("0.0.0.0", id="unspecified"),
        pytest.param("::", id="unspecified-v6"),
        pytest.param("100.64.0.1", id="shared-address-space"),
        pytest.param("::ffff:127.0.0.1", id="v4-mapped-loopback"),
        pytest.param("::ffff:10.0.0.1", id="v4-mapped-private"),
        pytest.param("224.0.0.1", id="multicast"),
        pytest.param("255.255.255.255", id="broadcast"),
        pytest.param("not-an-address", id="garbage"),
    ],
)
def test_refused(address: str) -> None:
    assert is_refused_address(address) is True


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_refused_address(address) is False


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("hooks.example.com", None),
        ("localhost", None),
        ("", None),
    ],
)
def test_literal_address(host: str, expected: str | None) -> None:
    assert literal_address(host) == expected


@pytest.mark.parametrize(
    ("host", "refused"),
    [
        ("localhost", True),
        ("api.LOCALHOST.", True),
        ("127.0.0.1", True),
        ("[::1]", True),
        ("10.1.2.3", True),
        ("hooks.example.com", False),
        ("93.184.216.34", False),
    ],
)
def test_a_host_that_shows_itself_private_is_refused(host: str, refused: bool) -> None:
    assert is_refused_host(host) is refused
