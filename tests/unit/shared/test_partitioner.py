from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from shared.partitioner import KeyPartitioner, murmur2
from shared.topics import requested_key


def test_the_hash_is_aiokafkas_for_every_length_and_byte() -> None:
    rng = random.Random(7)
    keys = [
        bytes(rng.randrange(256) for _ in range(length)) for length in range(80) for _ in range(25)
    ]
    keys += [bytes([value]) * length for value in (0, 0x7F, 0x80, 0xFF) for length in range(9)]

    assert [murmur2(key) for key in keys] == [aiokafka_murmur2(key) for key in keys]


@pytest.mark.parametrize("partitions", [1, 2, 3, 6, 12, 64])
def test_a_keyed_record_goes_where_aiokafka_would_put_it(partitions: int) -> None:
    rng = random.Random(partitions)
    every = list(range(partitions))
    keys = [
        requested_key("AbCdEfGhIjKlMnOpQrStUv", f"+1212{rng.randrange(2_000_000, 9_999_999)}")
        for _ in range(2_000)
    ]

    ours = [KeyPartitioner()(key, every, every) for key in keys]

    assert ours == [DefaultPartitioner()(key, every, every) for key in keys]
    assert len(set(ours)) == partitions  # spread over all of them, not a constant


def test_a_record_without_a_key_goes_to_an_available_partition() -> None:
    chosen = {KeyPartitioner()(None, [0, 1, 2, 3], [1, 3]) for _ in range(200)}

    assert chosen == {1, 3}


def test_with_none_available_a_record_without_a_key_goes_anywhere() -> None:
    chosen = {KeyPartitioner()(None, [0, 1, 2], []) for _ in range(200)}

    assert chosen == {0, 1, 2}
