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
