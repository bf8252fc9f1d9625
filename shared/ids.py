"""Ids for new records: 128 random bits written in base62, 22 characters, URL-safe.

As unguessable as a uuid4 (which carries 122 random bits in 36 characters) and 14 characters
shorter, which matters where an id is stored many times over: in key names, due-queue members,
the duplicate registry and the campaign's listing.

The random bits come from the operating system's CSPRNG (`os.urandom`, as `secrets` uses),
read 4 KiB at a time: one system call per 256 ids instead of one per id. A forked child starts
with an empty buffer so it never hands out its parent's ids.
"""

from __future__ import annotations

import os
import uuid
from typing import Final

ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
LENGTH: Final = 22  # 62**22 > 2**128, so every 128-bit number fits
_BYTES: Final = 16
_BUFFER: Final = 256 * _BYTES


class _RandomBits:
    """128-bit random numbers cut from a buffer of `os.urandom` bytes."""

    def __init__(self) -> None:
        self._buffer = b""
        self._offset = 0

    def next(self) -> int:
        if self._offset >= len(self._buffer):
            self._buffer = os.urandom(_BUFFER)
            self._offset = 0
        start = self._offset
        self._offset += _BYTES
        return int.from_bytes(self._buffer[start : self._offset], "big")

    def forget(self) -> None:
        self._buffer = b""
        self._offset = 0


_random = _RandomBits()
# Two characters per division: half the big-number arithmetic of one per character.
_PAIRS: Final = tuple(high + low for high in ALPHABET for low in ALPHABET)
_PAIR_BASE: Final = len(_PAIRS)
os.register_at_fork(after_in_child=_random.forget)


def new_id() -> str:
    """A fresh random id of exactly `LENGTH` characters from `ALPHABET`."""
    return encode(_random.next())


def derived_id(namespace: uuid.UUID, name: str) -> str:
    """The same id every time for the same name (from its uuid5), in the same short form."""
    return encode(uuid.uuid5(namespace, name).int)


def encode(number: int) -> str:
    """A number below 2**128 as exactly `LENGTH` characters from `ALPHABET`."""
    pairs = []
    for _ in range(LENGTH // 2):
        number, pair = divmod(number, _PAIR_BASE)
        pairs.append(_PAIRS[pair])
    return "".join(reversed(pairs))
