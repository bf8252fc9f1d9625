"""Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from functools import lru_cache

_PREFIX = "whsec_"


@lru_cache(maxsize=4096)
def signing_key(secret: str) -> bytes:
    """A `whsec_` secret is base64 after the prefix; any other secret is used as its bytes."""
    if secret.startswith(_PREFIX):
        encoded = secret[len(_PREFIX) :]
        try:
            # Secrets are often shared without base64 padding; decode them all the same.
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except binascii.Error:
            pass
    return secret.encode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = message_id.encode() + b"." + str(timestamp).encode() + b"." + body
    digest = hmac.digest(signing_key(secret), signed, hashlib.sha256)
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }
