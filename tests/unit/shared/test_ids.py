from __future__ import annotations

import os
import re
import uuid
from collections import Counter

import pytest

from shared import ids


def _as_number(value: str) -> int:
    number = 0
    for char in value:
        number = number * 62 + ids.ALPHABET.index(char)
    return number


def test_an_id_is_22_base62_characters() -> None:
    for _ in range(1_000):
        assert re.fullmatch(r"[0-9A-Za-z]{22}", ids.new_id())


def test_ids_do_not_repeat() -> None:
    made = {ids.new_id() for _ in range(10_000)}

    assert len(made) == 10_000


def test_the_alphabet_is_62_distinct_characters() -> None:
    assert len(set(ids.ALPHABET)) == len(ids.ALPHABET) == 62
    assert 62**ids.LENGTH > 2**128


@pytest.mark.parametrize("bits", [0, 1, 2**64, 2**128 - 1])
def test_every_128_bit_number_is_written_in_full_and_reads_back(bits: int) -> None:
    written = ids.encode(bits)

    assert len(written) == ids.LENGTH
    assert _as_number(written) == bits


def test_every_character_is_equally_likely() -> None:
    counts = Counter("".join(ids.new_id() for _ in range(20_000)))
    expected = 20_000 * ids.LENGTH / 62
    # Each count is binomial with a standard deviation of about 83: six of them is far off.
    assert set(counts) == set(ids.ALPHABET)
    assert all(abs(count - expected) < 6 * 83 for count in counts.values()), counts


def test_each_byte_below_248_is_one_character_and_the_others_are_dropped() -> None:
    pattern = bytes([0, 1, 248, 61, 255, 62, 123, 124, 185, 186, 247, 250])
    generator = ids.IdGenerator(lambda size: (pattern * size)[:size])

    made = generator.new_id()

    # 248, 255 and 250 are dropped; 61, 123, 185 and 247 are z; 62, 124 and 186 are 0.
    assert made == ("01z0z0z0z" * 3)[:22]


def test_the_random_bytes_are_read_a_buffer_at_a_time() -> None:
    reads: list[int] = []

    def urandom(size: int) -> bytes:
        reads.append(size)
        return os.urandom(size)

    generator = ids.IdGenerator(urandom)
    made = {generator.new_id() for _ in range(300)}

    assert len(made) == 300
    assert reads == [4096, 4096]  # some 170 ids per read


def test_replacing_urandom_never_reaches_the_modules_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "urandom", lambda size: bytes(size))

    # Enough ids to read the system's bytes again at least twice while urandom is replaced.
    made = {ids.new_id() for _ in range(500)}

    assert len(made) == 500


def test_generators_keep_apart() -> None:
    zeros = ids.IdGenerator(lambda size: bytes(size))

    assert zeros.new_id() == "0" * ids.LENGTH
    assert ids.new_id() != "0" * ids.LENGTH


def test_a_forked_child_never_repeats_its_parents_ids() -> None:
    own = ids.IdGenerator()
    ids.new_id()  # the parent now holds buffers of unused characters
    own.new_id()
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(writer, (ids.new_id() + own.new_id()).encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    from_child = os.read(reader, 64).decode()
    os.close(reader)
    assert from_child[: ids.LENGTH] != ids.new_id()
    assert from_child[ids.LENGTH :] != own.new_id()


def test_a_derived_id_is_the_same_for_the_same_name_only() -> None:
    namespace = uuid.UUID("0b8f5a52-9b7c-4f0e-8a8e-6c2d9f3e1a47")
    first = ids.derived_id(namespace, "topic:0:17")
    assert first == ids.derived_id(namespace, "topic:0:17")
    assert first != ids.derived_id(namespace, "topic:0:18")
    assert _as_number(first) == uuid.uuid5(namespace, "topic:0:17").int
    assert len(first) == ids.LENGTH


@pytest.mark.parametrize("name", ["", "a", "wh_1:evt_1", "ünïcödé ☎:" * 40])
def test_uuid5_text_is_the_standard_uuid5_as_text(name: str) -> None:
    namespace = uuid.UUID("0b7e5c1a-9d2f-4f3e-8a61-5c4d3b2a1908")
    ids_of = ids.Uuid5(namespace)

    # Twice: the namespace's hash state is reused, never changed.
    assert ids_of.text(name) == ids_of.text(name) == str(uuid.uuid5(namespace, name))
