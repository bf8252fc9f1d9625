"""The pure rules of the Idempotency-Key extension: header, fingerprint, scope and records."""

from __future__ import annotations

import pytest
from aiohttp import web

from services.ingest.idempotency import (
    Claimed,
    InProgress,
    Replay,
    Reused,
    StoredResponse,
    claim_record,
    done_record,
    fingerprint,
    header_errors,
    is_kept,
    outcome_of,
    replay,
    scope_of,
    stored_response,
)
from shared import keys

LENGTH = "The Idempotency-Key must be between 1 and 255 characters."
ASCII = "The Idempotency-Key must contain only printable ASCII characters."


@pytest.mark.parametrize(
    "value", ["a", "x" * 255, "order-42", "with space", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"]
)
def test_one_to_255_printable_ascii_characters_are_a_valid_key(value: str) -> None:
    assert header_errors([value]) == []


@pytest.mark.parametrize(
    ("values", "errors"),
    [
        ([""], [LENGTH]),
        (["x" * 256], [LENGTH]),
        (["tab\there"], [ASCII]),
        (["café"], [ASCII]),
        (["\x7f"], [ASCII]),
        (["é" * 256], [LENGTH, ASCII]),
        (["a", "b"], ["The Idempotency-Key must be sent once."]),
    ],
    ids=["empty", "too-long", "tab", "non-ascii", "delete", "both", "twice"],
)
def test_an_invalid_key_gets_every_message_that_applies(
    values: list[str], errors: list[str]
) -> None:
    assert header_errors(values) == errors


def test_key_order_and_whitespace_do_not_change_the_fingerprint() -> None:
    compact = b'{"to":"+12125550123","context":{"a":1,"b":[1,{"y":2,"x":1}]}}'
    spread = b'{ "context" : { "b" : [1, {"x": 1, "y": 2}], "a": 1 },\n  "to": "+12125550123" }'
    assert fingerprint(compact) == fingerprint(spread)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (b'{"to": "+12125550123"}', b'{"to": "+12125550124"}'),
        (b'{"a": [1, 2]}', b'{"a": [2, 1]}'),
        (b'{"a": 1}', b'{"a": "1"}'),
        (b"{not json", b"{not  json"),
        (b"", b"{}"),
    ],
    ids=["value", "array-order", "type", "raw-bytes", "empty"],
)
def test_a_different_body_has_a_different_fingerprint(first: bytes, second: bytes) -> None:
    assert fingerprint(first) != fingerprint(second)


def test_a_body_that_is_not_json_is_fingerprinted_as_its_bytes() -> None:
    assert fingerprint(b"{not json") == fingerprint(b"{not json")
    assert len(fingerprint(b"\xff\xfe")) == 64


def test_the_scope_separates_method_path_and_key_unambiguously() -> None:
    base = scope_of("POST", "/api/v1/campaigns", "k")
    assert base == scope_of("POST", "/api/v1/campaigns", "k")
    assert base != scope_of("POST", "/api/v1/agents", "k")
    assert base != scope_of("PUT", "/api/v1/campaigns", "k")
    assert base != scope_of("POST", "/api/v1/campaigns", "K")
    assert scope_of("POST", "/a:b", "c") != scope_of("POST", "/a", "b:c")


def test_the_entry_key_is_tagged_by_environment() -> None:
    key = keys.idempotency("env-a", scope_of("POST", "/api/v1/agents", "k"))
    assert key.startswith("cc:env:{env-a}:idempotency:")
    assert key != keys.idempotency("env-b", scope_of("POST", "/api/v1/agents", "k"))


@pytest.mark.parametrize(
    ("status", "kept"),
    [
        (200, True),
        (201, True),
        (404, True),
        (409, True),
        (422, True),
        (429, False),
        (500, False),
        (503, False),
    ],
)
def test_2xx_and_4xx_are_kept_but_not_5xx_or_429(status: int, kept: bool) -> None:
    assert is_kept(status) is kept


def _claim(body_fingerprint: str = "f" * 64) -> Claimed:
    return Claimed("key", body_fingerprint, claim_record(body_fingerprint, "token"))


def test_nothing_stored_means_the_claim_is_ours() -> None:
    claim = _claim()
    assert outcome_of(claim, None) is claim


def test_a_claim_with_the_same_body_is_in_progress_and_another_body_is_reuse() -> None:
    other = claim_record("f" * 64, "someone-else")
    assert outcome_of(_claim(), other) == InProgress()
    assert outcome_of(_claim("0" * 64), other) == Reused()


@pytest.mark.parametrize(
    "body", [b'{"success":true,"data":{"name":"\xc3\xa9"}}', b"", b"\xff\x00binary"]
)
def test_a_finished_record_replays_the_exact_answer(body: bytes) -> None:
    answer = StoredResponse(201, "application/json", body)
    record = done_record("f" * 64, answer)
    assert outcome_of(_claim(), record) == Replay(answer)
    assert outcome_of(_claim("0" * 64), record) == Reused()


def test_only_whole_non_5xx_responses_are_stored() -> None:
    created = web.Response(body=b'{"ok":1}', status=201, content_type="application/json")
    assert stored_response(created) == StoredResponse(201, "application/json", b'{"ok":1}')
    assert stored_response(web.Response(text="x", status=503)) is None
    assert stored_response(web.StreamResponse(status=200)) is None


def test_a_replay_carries_the_stored_status_type_and_body_and_says_so() -> None:
    response = replay(StoredResponse(422, "application/json", b'{"success":false}'))
    assert response.status == 422
    assert response.body == b'{"success":false}'
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Idempotent-Replayed"] == "true"
