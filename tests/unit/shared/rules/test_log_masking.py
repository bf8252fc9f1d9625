"""No log line carries a full phone number or a secret's value."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from shared.rules.log_masking import (
    REDACTED,
    is_secret_name,
    mask_phone_numbers,
    masked_fields,
)

_E164 = st.from_regex(r"\+[1-9][0-9]{7,14}", fullmatch=True)
_AROUND = st.text(alphabet=st.characters(exclude_categories=["Nd"]), max_size=20)


def test_a_number_keeps_its_last_four_digits_only() -> None:
    assert mask_phone_numbers("+12025550101") == "+*******0101"
    assert mask_phone_numbers("calling +4930123456 now") == "calling +******3456 now"
    assert mask_phone_numbers("to=+12025550101,+442079460000") == ("to=+*******0101,+********0000")


def test_text_without_an_e164_number_is_left_as_it_is() -> None:
    for text in ("no number", "+1234567", "c-12025550101", "12025550101", "+1234567890123456"):
        assert mask_phone_numbers(text) == text


@given(number=_E164, before=_AROUND, after=_AROUND)
def test_no_e164_number_survives_masking(number: str, before: str, after: str) -> None:
    masked = mask_phone_numbers(f"{before}{number}{after}")
    assert number not in masked
    digits = number[1:]
    assert f"+{'*' * (len(digits) - 4)}{digits[-4:]}" in masked
    assert re.search(r"\+[0-9]{8,15}", masked) is None


@given(st.text(alphabet="+0123456789 abc", max_size=60))
def test_masked_text_holds_no_run_of_eight_or_more_digits_after_a_plus(text: str) -> None:
    masked = mask_phone_numbers(text)
    for run in re.findall(r"\+([0-9]+)", masked):
        # A longer run than 15 digits is no E.164 number and is left as it is.
        assert len(run) < 8 or len(run) > 15


def test_secret_names_are_known_whatever_their_spelling() -> None:
    for name in ("Authorization", "api_key", "API-Key", "apikey", "token", "access_token"):
        assert is_secret_name(name)
    for name in ("secret", "webhook_secret", "password", "DB_PASSWORD"):
        assert is_secret_name(name)
    for name in ("call_id", "campaign_id", "to", "status", "route", "attempt"):
        assert not is_secret_name(name)


def test_fields_have_secrets_redacted_and_numbers_masked_at_any_depth() -> None:
    fields = {
        "to": "+12025550101",
        "Authorization": "Bearer abc",
        "headers": {"X-Api-Key": "k-1", "accept": "application/json"},
        "numbers": ["+12025550101", 3],
        "attempt": 2,
    }
    assert masked_fields(fields) == {
        "to": "+*******0101",
        "Authorization": REDACTED,
        "headers": {"X-Api-Key": REDACTED, "accept": "application/json"},
        "numbers": ["+*******0101", 3],
        "attempt": 2,
    }
