"""Which partition a keyed record goes to: Kafka's default rule, computed faster.

Every Kafka client puts a keyed record in partition `murmur2(key) & 0x7FFFFFFF` modulo the
partition count, so our records meet those that customers publish with Java, librdkafka or
aiokafka. aiokafka's pure-Python murmur2 reads the key a byte at a time and masks after every
step; it was the largest single cost of publishing a call request. This one reads the key's
32-bit words in one `struct` call and masks only where a product can pass 32 bits: the same
hash (a test compares the two) in about a third of the time.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence
from functools import lru_cache
from typing import Final

_SEED: Final = 0x9747B28C
_M: Final = 0x5BD1E995
_MASK: Final = 0xFFFFFFFF


@lru_cache(maxsize=256)
def _words(count: int) -> struct.Struct:
    return struct.Struct(f"<{count}I")


def murmur2(data: bytes) -> int:
    """The 32-bit MurmurHash2 of `data`, as the Java client's `Utils.murmur2` (unsigned)."""
    length = len(data)
    h = _SEED ^ length
    whole = length >> 2
    for k in _words(whole).unpack_from(data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    rest = length & 3
    if rest:
        tail = whole << 2
        if rest == 3:
            h ^= data[tail + 2] << 16
        if rest >= 2:
            h ^= data[tail + 1] << 8
        h = ((h ^ data[tail]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition of a keyed record among `partitions` (numbered from 0), as every client
    computes it."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class KeyPartitioner:
    """A drop-in for aiokafka's `DefaultPartitioner` (same choices), with the faster hash."""

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        return all_partitions[partition_of(key, len(all_partitions))]
