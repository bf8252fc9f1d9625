"""The custom header rules: token names, no control characters, no sender or signature header,
each name once; and the headers a sender keeps of a list that breaks them."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.rules.webhook_headers import (
    CONTROL_CHARACTER,
    NOT_A_TOKEN,
    SENDER_HEADERS,
    TOKEN_PATTERN,
    VALUE_PATTERN,
    HeaderProblem,
    header_problems,
    is_header_value,
    name_problem,
    sendable_headers,
)

TCHAR_SYMBOLS = "!#$%&'*+-.^_`|~"


@pytest.mark.parametrize(
    "name",
    ["X-Tenant", "x_trace", "Authorization", "X-API-Key", "a", "9", TCHAR_SYMBOLS, "Webhook"],
)
def test_tokens_are_names(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param("X Tenant", id="space"),
        pytest.param(" X-Tenant", id="leading-space"),
        pytest.param("X-Tenant:", id="colon"),
        pytest.param("X-A\r\nX-B", id="crlf"),
        pytest.param("X-A\x00", id="nul"),
        pytest.param("X-A\n", id="trailing-newline"),
        pytest.param("X\tA", id="tab"),
        pytest.param("X-Tënant", id="non-ascii"),
        pytest.param('X-"A"', id="quote"),
        pytest.param("X(A)", id="parentheses"),
        pytest.param("X/A", id="slash"),
        pytest.param("X@A", id="at"),
        pytest.param("{X}", id="braces"),
    ],
)
def test_anything_else_is_not_a_name(name: str) -> None:
    assert name_problem(name) == NOT_A_TOKEN


def test_the_token_pattern_is_the_rfc_9110_tchar_set() -> None:
    tchars = {chr(code) for code in range(128) if re.fullmatch(TOKEN_PATTERN, chr(code))}
    expected = set(TCHAR_SYMBOLS) | {chr(c) for c in range(128) if chr(c).isalnum()}

    assert tchars == expected


@pytest.mark.parametrize("name", SENDER_HEADERS)
def test_the_headers_the_sender_sets_are_refused_in_any_case(name: str) -> None:
    for spelling in (name, name.lower(), name.upper()):
        assert name_problem(spelling) == f"must not be {name}: the sender sets it"


@pytest.mark.parametrize(
    "name", ["webhook-id", "webhook-timestamp", "webhook-signature", "Webhook-Id", "WEBHOOK-X"]
)
def test_signature_header_names_are_refused_in_any_case(name: str) -> None:
    problem = name_problem(name)

    assert problem is not None
    assert problem.startswith("must not start with webhook-")


@pytest.mark.parametrize(
    "value", ["", "acme", "a b", "tab\tinside", "Zoë 東京", '"quoted", ; = /', " padded "]
)
def test_values_without_control_characters_pass(value: str) -> None:
    assert is_header_value(value)
    assert header_problems([("X-A", value)]) == []


@pytest.mark.parametrize(
    "value",
    ["a\rb", "a\nb", "a\n", "a\r\nX-Injected: 1", "a\x00", "\x01", "\x1b[31m", "a\x7f", "\x0b"],
)
def test_values_with_control_characters_are_refused(value: str) -> None:
    assert not is_header_value(value)
    assert header_problems([("X-A", value)]) == [HeaderProblem(0, "value", CONTROL_CHARACTER)]


def test_the_value_pattern_refuses_every_control_character_but_tab() -> None:
    refused = {code for code in range(256) if not re.fullmatch(VALUE_PATTERN, chr(code))}

    assert refused == (set(range(32)) - {9}) | {127}


def test_a_repeated_name_is_refused_after_its_first_header_ignoring_case() -> None:
    headers = [("X-A", "1"), ("X-B", "2"), ("x-a", "3"), ("X-A", "4")]

    assert header_problems(headers) == [
        HeaderProblem(2, "key", "must not repeat the name of header 0 (names ignore case)"),
        HeaderProblem(3, "key", "must not repeat the name of header 0 (names ignore case)"),
    ]


def test_every_problem_of_every_header_is_reported_in_order() -> None:
    headers = [("Host", "a\nb"), ("X-Ok", "fine"), ("bad name", "x"), ("webhook-id", "\x00")]

    problems = header_problems(headers)

    assert [(p.index, p.part) for p in problems] == [
        (0, "key"),
        (0, "value"),
        (2, "key"),
        (3, "key"),
        (3, "value"),
    ]


def test_the_sender_keeps_only_the_headers_that_break_no_rule_in_order() -> None:
    headers = [
        ("X-Tenant", "acme"),
        ("Content-Type", "text/plain"),
        ("X-Bad", "a\r\nInjected: 1"),
        ("webhook-signature", "v1,forged"),
        ("x-tenant", "other"),
        ("Bad Name", "x"),
        ("X-Trace", ""),
    ]

    assert sendable_headers(headers) == [("X-Tenant", "acme"), ("X-Trace", "")]


headers_lists = st.lists(
    st.tuples(
        st.sampled_from(["X-A", "x-a", "X-B", "Host", "webhook-id", "X C", "", "Content-type"]),
        st.sampled_from(["v", "", "a\nb", "\x00", "\t"]),
    ),
    max_size=8,
)


@given(headers_lists)
def test_what_the_sender_keeps_breaks_no_rule(headers: list[tuple[str, str]]) -> None:
    kept = sendable_headers(headers)

    assert header_problems(kept) == []
    assert all(header in headers for header in kept)
