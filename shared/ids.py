"""Ids for new records: 128 random bits written in base62, 22 characters, URL-safe.

As unguessable as a uuid4 (which carries 122 random bits in 36 characters) and 14 characters
shorter, which matters where an id is stored many times over: in key names, due-queue members,
the duplicate registry and the campaign's listing.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Final

ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
LENGTH: Final = 22  # 62**22 > 2**128, so every 128-bit number fits


def new_id() -> str:
    """A fresh random id of exactly `LENGTH` characters from `ALPHABET`."""
    return encode(secrets.randbits(128))


def derived_id(namespace: uuid.UUID, name: str) -> str:
    """The same id every time for the same name (from its uuid5), in the same short form."""
    return encode(uuid.uuid5(namespace, name).int)


def encode(number: int) -> str:
    """A number below 2**128 as exactly `LENGTH` characters from `ALPHABET`."""
    digits = []
    for _ in range(LENGTH):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))
