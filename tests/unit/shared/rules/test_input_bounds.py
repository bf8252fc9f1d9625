"""The size of a call's payload and context, as the API and the request topic measure it."""

from __future__ import annotations

from typing import Any

import pytest

from shared.rules.input_bounds import MAX_CALL_JSON_BYTES, json_size, json_too_large


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ({}, 2),
        ({"a": 1}, 7),
        ({"a": [1, 2]}, 11),
        # UTF-8 bytes, not characters: "é" is two.
        ({"é": "é"}, 11),
        # Beyond 64 bits, where the fast writer gives up.
        ({"n": 2**70}, len('{"n":1180591620717411303424}')),
    ],
)
def test_the_size_is_that_of_compact_utf8_json(value: dict[str, Any], size: int) -> None:
    assert json_size(value) == size


def test_a_value_at_the_bound_fits_and_one_byte_more_does_not() -> None:
    at = {"k": "x" * (MAX_CALL_JSON_BYTES - len('{"k":""}'))}
    assert json_size(at) == MAX_CALL_JSON_BYTES
    assert json_too_large(at) is None
    over = {"k": at["k"] + "x"}
    assert json_too_large(over) == f"must not be greater than {MAX_CALL_JSON_BYTES} bytes as JSON"


def test_nesting_no_writer_can_write_is_too_large() -> None:
    deep: dict[str, Any] = {}
    for _ in range(10_000):
        deep = {"a": deep}
    assert json_too_large(deep) is not None
