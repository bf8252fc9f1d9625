from __future__ import annotations

import re
import secrets
import uuid

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
def test_every_128_bit_number_is_written_in_full_and_reads_back(
    monkeypatch: pytest.MonkeyPatch, bits: int
) -> None:
    monkeypatch.setattr(secrets, "randbits", lambda _: bits)

    made = ids.new_id()

    assert len(made) == ids.LENGTH
    assert _as_number(made) == bits


def test_the_random_bits_come_from_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []

    def randbits(k: int) -> int:
        asked.append(k)
        return 0

    monkeypatch.setattr(secrets, "randbits", randbits)
    ids.new_id()

    assert asked == [128]


def test_a_derived_id_is_the_same_for_the_same_name_only() -> None:
    namespace = uuid.UUID("0b8f5a52-9b7c-4f0e-8a8e-6c2d9f3e1a47")
    first = ids.derived_id(namespace, "topic:0:17")
    assert first == ids.derived_id(namespace, "topic:0:17")
    assert first != ids.derived_id(namespace, "topic:0:18")
    assert _as_number(first) == uuid.uuid5(namespace, "topic:0:17").int
    assert len(first) == ids.LENGTH
