"""Which addresses a webhook may not reach unless the operator allows private targets."""

from __future__ import annotations

import ipaddress

REFUSED_TARGET = (
    "The webhook url resolves to a private, loopback or link-local address, which is not allowed."
)


def is_refused_address(address: str) -> bool:
    """Anything not globally routable (private, loopback, link-local, unspecified, shared
    address space, reserved) or multicast; an address that does not parse is refused too."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def literal_address(host: str) -> str | None:
    """The host as an address when the URL names one (`[::1]` included), else None."""
    bare = host.strip("[]")
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        return None
    return bare


def is_refused_host(host: str) -> bool:
    """What a URL's host alone shows to be private: a `localhost` name or a private literal.

    A host name that resolves to a private address is caught only at send time.
    """
    bare = host.strip("[]").rstrip(".").lower()
    if bare == "localhost" or bare.endswith(".localhost"):
        return True
    address = literal_address(bare)
    return address is not None and is_refused_address(address)
