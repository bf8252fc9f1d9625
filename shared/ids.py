"""Ids for records: 22 characters from the 62 letters and digits, URL-safe.

A new id is 22 characters drawn uniformly and independently from the alphabet: 131 random bits,
more than a uuid4 carries (122) in 14 fewer characters, which matters where an id is stored many
times over: in key names, due-queue members, the duplicate registry and the campaign's listing.

The characters come from the operating system's CSPRNG (`os.urandom`, as `secrets` uses), read
4 KiB at a time and turned into characters by one C-level `translate`: a byte below 248
(4 × 62) becomes the character at its value modulo 62, so every character is equally likely; a
byte of 248 or more is dropped. An id is then a slice of that text: one system call per some
170 ids and no arithmetic per id. A forked child starts with an empty buffer so it never hands
out its parent's ids. Each `IdGenerator` keeps its own buffer and its own source of bytes.

An id derived from a name (`derived_id`) writes its uuid5's 128 bits in base62 instead, so the
same name gives the same id in every process and every release.
"""

from __future__ import annotations

import hashlib
import os
import uuid
import weakref
from collections.abc import Callable
from typing import Final

ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
LENGTH: Final = 22  # 62**22 > 2**128, so every 128-bit number fits
_KEPT: Final = 4 * len(ALPHABET)  # bytes below this map evenly onto the alphabet
_BUFFER: Final = 4096  # random bytes read at once
# byte -> character for the kept bytes; the others are deleted by `translate`
_CHARACTERS: Final = bytes(ord(ALPHABET[b % len(ALPHABET)]) for b in range(_KEPT)) + bytes(
    256 - _KEPT
)
_DROPPED: Final = bytes(range(_KEPT, 256))


class IdGenerator:
    """Random ids cut from a buffer of characters drawn uniformly from `ALPHABET`.

    The bytes come from `read` (default `os.urandom`, bound when the class is defined), so a
    generator draws only from the source it was made with: replacing `os.urandom` later, as a
    test may, never reaches the module's own generator. A test that needs chosen bytes makes a
    generator of its own."""

    def __init__(self, read: Callable[[int], bytes] = os.urandom) -> None:
        self._read = read
        self._text = ""
        self._offset = 0
        _generators.add(self)

    def new_id(self) -> str:
        """A fresh random id of exactly `LENGTH` characters from `ALPHABET`."""
        start = self._offset
        end = start + LENGTH
        if end > len(self._text):
            self._text = self._read(_BUFFER).translate(_CHARACTERS, _DROPPED).decode("ascii")
            start, end = 0, LENGTH
        self._offset = end
        return self._text[start:end]

    def forget(self) -> None:
        """Drops the characters not yet used."""
        self._text = ""
        self._offset = 0


# Every generator, so that a forked child starts each one empty and never repeats its parent.
_generators: weakref.WeakSet[IdGenerator] = weakref.WeakSet()


def _forget_all() -> None:
    for generator in list(_generators):
        generator.forget()


os.register_at_fork(after_in_child=_forget_all)
# Two characters per division: half the big-number arithmetic of one per character.
_PAIRS: Final = tuple(high + low for high in ALPHABET for low in ALPHABET)
_PAIR_BASE: Final = len(_PAIRS)

# The process's ids: one call, no lookup of a generator per id.
new_id: Final = IdGenerator().new_id


class Uuid5:
    """`str(uuid.uuid5(namespace, name))` for names under one namespace, computed from the
    SHA-1 digest's hex directly: the same text at a sixth of the cost (no UUID objects on the
    way, and the namespace hashed once)."""

    __slots__ = ("_sha",)

    def __init__(self, namespace: uuid.UUID) -> None:
        # The SHA-1 state after the namespace, copied for each id.
        self._sha = hashlib.sha1(namespace.bytes, usedforsecurity=False)

    def text(self, name: str) -> str:
        sha = self._sha.copy()
        sha.update(name.encode())
        h = sha.hexdigest()
        # Version 5 in the 13th digit; the RFC 4122 variant in the top bits of the 17th.
        return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


# A hex digit with its top two bits set to 10 (the variant).
_VARIANT: Final = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


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
