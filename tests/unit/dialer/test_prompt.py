from __future__ import annotations

from typing import Any

import pytest

from services.dialer.domain.telephony import render_prompt


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
