from __future__ import annotations

import re
import time
import tracemalloc
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.rules.prompts import (
    MAX_PROMPT_BYTES,
    PromptTemplate,
    PromptTooLarge,
    render_prompt,
    utf8_size,
)


@pytest.mark.parametrize(
    ("template", "payload", "expected"),
    [
        pytest.param("Hi {{name}}.", {"name": "Ann"}, "Hi Ann.", id="plain"),
        pytest.param("Hi {{ name }}.", {"name": "Ann"}, "Hi Ann.", id="spaces"),
        pytest.param("Hi {{  name\t}}.", {"name": "Ann"}, "Hi Ann.", id="uneven-whitespace"),
        pytest.param("{{a}}{{ a }}{{a }}", {"a": "x"}, "xxx", id="repeated"),
        pytest.param(
            "{{first}} {{last}} from {{company_name}}",
            {"first": "Zoë", "last": "Ōta", "company_name": "東京 Ltd"},
            "Zoë Ōta from 東京 Ltd",
            id="several-unicode",
        ),
        pytest.param(
            "{{order.id}} {{x-y}}", {"order.id": "A1", "x-y": "z"}, "A1 z", id="dots-dashes"
        ),
        pytest.param("No placeholders.", {"name": "Ann"}, "No placeholders.", id="none-present"),
        pytest.param("", {"name": "Ann"}, "", id="empty-template"),
    ],
)
def test_fills_placeholders(template: str, payload: dict[str, Any], expected: str) -> None:
    assert render_prompt(template, payload) == expected


@pytest.mark.parametrize(
    ("template", "payload", "expected"),
    [
        pytest.param("Hi {{name}}.", {}, "Hi {{name}}.", id="empty-payload"),
        pytest.param("Hi {{ name }}.", {"other": 1}, "Hi {{ name }}.", id="kept-as-written"),
        pytest.param("{{known}} {{unknown}}", {"known": "k"}, "k {{unknown}}", id="mixed"),
        pytest.param("Hi {{name}}.", {"name": None}, "Hi {{name}}.", id="null-value"),
        pytest.param("Hi {{Name}}.", {"name": "Ann"}, "Hi {{Name}}.", id="case-sensitive"),
        pytest.param(
            "Hi {{first name}}.", {"first name": "Ann"}, "Hi {{first name}}.", id="not-a-name"
        ),
        pytest.param("Hi {name}.", {"name": "Ann"}, "Hi {name}.", id="single-braces"),
        pytest.param("Hi {{}}.", {"": "Ann"}, "Hi {{}}.", id="empty-name"),
    ],
)
def test_unknown_or_invalid_placeholders_are_kept(
    template: str, payload: dict[str, Any], expected: str
) -> None:
    assert render_prompt(template, payload) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(42, "42", id="int"),
        pytest.param(0, "0", id="zero"),
        pytest.param(-3, "-3", id="negative"),
        pytest.param(19.99, "19.99", id="float"),
        pytest.param("", "", id="empty-string"),
    ],
)
def test_non_string_values_are_rendered_as_text(value: object, expected: str) -> None:
    assert render_prompt("Owed: {{ amount }}", {"amount": value}) == f"Owed: {expected}"


def test_filled_values_are_not_rendered_again() -> None:
    payload = {"a": "{{b}}", "b": "B"}

    assert render_prompt("{{a}} {{b}}", payload) == "{{b}} B"


def test_payload_is_not_changed() -> None:
    payload: dict[str, Any] = {"name": "Ann"}

    render_prompt("{{name}} {{missing}}", payload)

    assert payload == {"name": "Ann"}


_PLAIN = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")


def _unbounded(template: str, payload: dict[str, Any]) -> str:
    """The plain renderer, which builds the whole text whatever its size: the oracle."""

    def fill(match: re.Match[str]) -> str:
        value = payload.get(match.group(1))
        if value is None:
            return match.group(0)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return _PLAIN.sub(fill, template)


@pytest.mark.parametrize(
    ("template", "payload"),
    [
        pytest.param("a" * 10, {}, id="text-only"),
        pytest.param("{{x}}", {"x": "a" * 10}, id="value-only"),
        pytest.param("ab{{x}}cd", {"x": "e" * 6}, id="text-and-value"),
        pytest.param("{{x}}", {"x": "é" * 5}, id="two-byte-characters"),
        pytest.param("{{m}}{{x}}", {"x": "a" * 5}, id="kept-placeholder-counts"),
    ],
)
def test_a_prompt_of_exactly_the_limit_is_rendered(template: str, payload: dict[str, Any]) -> None:
    assert render_prompt(template, payload, limit=10) == _unbounded(template, payload)
    assert utf8_size(_unbounded(template, payload)) == 10


@pytest.mark.parametrize(
    ("template", "payload"),
    [
        pytest.param("a" * 11, {}, id="text-only"),
        pytest.param("{{x}}", {"x": "a" * 11}, id="value-only"),
        pytest.param("ab{{x}}cd", {"x": "e" * 7}, id="text-and-value"),
        pytest.param("{{x}}", {"x": "é" * 5 + "a"}, id="bytes-not-characters"),
        pytest.param("{{x}}{{x}}{{x}}", {"x": "abcd"}, id="repeated-value"),
        pytest.param("abcdef{{missing}}", {}, id="kept-placeholder-counts"),
        pytest.param("{{x}}tail", {"x": "a" * 8}, id="text-after-the-last"),
    ],
)
def test_one_byte_over_the_limit_is_too_large(template: str, payload: dict[str, Any]) -> None:
    assert render_prompt(template, payload, limit=10) == PromptTooLarge(10)


def test_the_default_limit_is_32_kib_of_utf8() -> None:
    assert MAX_PROMPT_BYTES == 32 * 1024
    assert render_prompt("{{x}}", {"x": "a" * MAX_PROMPT_BYTES}) == "a" * MAX_PROMPT_BYTES
    assert isinstance(render_prompt("{{x}}", {"x": "€" * 11_000}), PromptTooLarge)


_NAMES = st.sampled_from(["a", "b", "order.id"])
_TEMPLATES = st.lists(
    st.one_of(st.text(max_size=8), _NAMES.map(lambda name: "{{" + name + "}}")), max_size=8
).map("".join)
_PAYLOADS = st.dictionaries(
    _NAMES, st.one_of(st.text(max_size=12), st.integers(), st.booleans(), st.none())
)


@given(template=_TEMPLATES, payload=_PAYLOADS, limit=st.integers(min_value=0, max_value=80))
def test_matches_the_plain_renderer_within_the_limit_and_refuses_past_it(
    template: str, payload: dict[str, Any], limit: int
) -> None:
    expected = _unbounded(template, payload)
    rendered = render_prompt(template, payload, limit=limit)

    if utf8_size(expected) <= limit:
        assert rendered == expected
    else:
        assert rendered == PromptTooLarge(limit)


def test_many_placeholders_with_huge_values_stop_early_in_little_memory() -> None:
    template = "{{v}}" * 20_000  # 100,000 characters, every one of them in a placeholder
    payload = {"v": "x" * 1_000_000}
    # Rendered in full this would be 20 GB.
    tracemalloc.start()
    try:
        started = time.perf_counter()
        rendered = render_prompt(template, payload)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert rendered == PromptTooLarge(MAX_PROMPT_BYTES)
    assert peak < 10_000_000
    assert elapsed < 1.0


def test_many_placeholders_with_values_just_under_the_limit_stop_early() -> None:
    # Each value fits on its own; together they pass the limit after a few.
    template = "Dear {{a}}, " * 10_000
    payload = {"a": "é" * 4_000}
    tracemalloc.start()
    try:
        rendered = render_prompt(template, payload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert rendered == PromptTooLarge(MAX_PROMPT_BYTES)
    assert peak < 10_000_000


@pytest.mark.parametrize(
    ("text", "payload", "fits"),
    [
        pytest.param("a" * 10, {"x": "y"}, True, id="no-placeholders-within"),
        pytest.param("a" * 11, {}, False, id="no-placeholders-over"),
        pytest.param("{{x}}" * 2, {}, True, id="empty-payload-kept-as-written"),
        pytest.param("{{x}}" * 3, {}, False, id="empty-payload-over-as-written"),
        pytest.param("{{x}}!", {"x": "a" * 9}, True, id="rendered-within"),
        pytest.param("{{x}}!", {"x": "a" * 10}, False, id="rendered-over"),
        pytest.param("{{x}}!", {"other": "a" * 100}, True, id="unused-values"),
    ],
)
def test_a_template_checks_a_payload(text: str, payload: dict[str, Any], fits: bool) -> None:
    assert PromptTemplate.of(text).fits(payload, limit=10) is fits


def test_a_template_knows_its_size_and_placeholders() -> None:
    template = PromptTemplate.of("Zoë {{name}}")

    assert template.size == len("Zoë {{name}}".encode())
    assert template.placeholders
    assert not PromptTemplate.of("Zoë").placeholders
