from __future__ import annotations

import random
from collections.abc import Callable

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from shared.phone import InvalidNumber, _canonical_is_valid, _parsed_e164, time_zones, to_e164


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("+1 (212) 555-0123", "+12125550123", id="us-formatted"),
        pytest.param("+12125550123", "+12125550123", id="already-e164"),
        pytest.param("+1-212-555-0123", "+12125550123", id="dashes"),
        pytest.param("+1.212.555.0123", "+12125550123", id="dots"),
        pytest.param("  +1 212 555 0123  ", "+12125550123", id="surrounding-space"),
        pytest.param("+１２１２５５５０１２３", "+12125550123", id="full-width-digits"),
        pytest.param("+44 20 7946 0000", "+442079460000", id="uk"),
        pytest.param("+33 1 42 68 53 00", "+33142685300", id="france"),
        pytest.param("+49 30 123456", "+4930123456", id="germany"),
        pytest.param("+1 907 222 3333", "+19072223333", id="alaska"),
    ],
)
def test_to_e164_normalises(raw: str, expected: str) -> None:
    assert to_e164(raw) == expected


@pytest.mark.parametrize("e164", ["+12125550123", "+442079460000", "+19075550123"])
def test_to_e164_is_idempotent(e164: str) -> None:
    assert to_e164(to_e164(e164)) == to_e164(e164) == e164


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param("garbage", id="garbage"),
        pytest.param("call me maybe", id="words"),
        pytest.param("+1212", id="too-short"),
        pytest.param("+1 212 555 012", id="one-digit-short"),
        pytest.param("+1 212 555 01234", id="one-digit-long"),
        pytest.param("+1 (000) 555-0123", id="invalid-area-code"),
        pytest.param("+999 123 456", id="unknown-country-code"),
        pytest.param("2125550123", id="national-no-plus"),
        pytest.param("(212) 555-0123", id="national-formatted"),
        pytest.param("00442079460000", id="international-prefix-no-plus"),
        pytest.param("+12125550123abc", id="trailing-letters"),
    ],
)
def test_to_e164_rejects(raw: str) -> None:
    with pytest.raises(InvalidNumber):
        to_e164(raw)


def test_invalid_number_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"\w"):
        to_e164("garbage")


@pytest.mark.parametrize(
    ("e164", "zones"),
    [
        pytest.param("+12125550123", ("America/New_York",), id="new-york"),
        pytest.param("+18085550123", ("Pacific/Honolulu",), id="hawaii"),
        pytest.param("+19072223333", ("America/Juneau",), id="alaska-juneau"),
        pytest.param("+19075550123", ("America/Adak", "America/Anchorage"), id="alaska-two-zones"),
        pytest.param("+442079460000", ("Europe/London",), id="london"),
        pytest.param("+80012345678", (), id="non-geographic-freephone"),
        pytest.param("+870773111632", (), id="non-geographic-inmarsat"),
    ],
)
def test_time_zones(e164: str, zones: tuple[str, ...]) -> None:
    assert to_e164(e164) == e164
    assert time_zones(e164) == zones


@pytest.mark.parametrize("e164", ["+12125550123", "+80012345678", "+18005550123"])
def test_time_zones_never_contain_the_unknown_marker(e164: str) -> None:
    zones = time_zones(e164)

    assert isinstance(zones, tuple)
    assert "Etc/Unknown" not in zones
    assert len(set(zones)) == len(zones)


def test_time_zones_of_a_toll_free_number_span_the_plan() -> None:
    zones = time_zones("+18005550123")

    assert {"America/New_York", "America/Los_Angeles", "Pacific/Honolulu"} <= set(zones)


def _answer(convert: Callable[[str], str], raw: str) -> str | None:
    try:
        return convert(raw)
    except InvalidNumber:
        return None


def _e164_samples() -> list[str]:
    """Every calling code's example numbers, near misses of them, and random digits of every
    length, all written in E.164."""
    rng = random.Random(20261127)
    samples: list[str] = []
    for code, regions in COUNTRY_CODE_TO_REGION_CODE.items():
        examples: list[str] = []
        for region in regions:
            for kind in PhoneNumberType.values():
                number = (
                    phonenumbers.example_number_for_non_geo_entity(code)
                    if region == "001"
                    else phonenumbers.example_number_for_type(region, kind)
                )
                if number is not None:
                    examples.append(phonenumbers.format_number(number, PhoneNumberFormat.E164))
        for example in examples:
            samples.append(example)
            samples.append(example[:-1])
            samples.append(example + str(rng.randrange(10)))
            samples.append(example[:-3] + "".join(rng.choices("0123456789", k=3)))
        for length in range(1, 18):
            for _ in range(3):
                samples.append(f"+{code}" + "".join(rng.choices("0123456789", k=length)))
    return samples


def test_e164_input_gets_the_answer_of_phonenumbers_full_parse() -> None:
    samples = _e164_samples()
    decided_quickly = sum(1 for raw in samples if _canonical_is_valid(raw) is not None)

    differing = [
        (raw, _answer(to_e164, raw), _answer(_parsed_e164, raw))
        for raw in samples
        if _answer(to_e164, raw) != _answer(_parsed_e164, raw)
    ]

    assert differing == []
    assert len(samples) > 10_000
    # The quick path must decide most of them, or this compares the full parse with itself.
    assert decided_quickly > 0.8 * len(samples)


@pytest.mark.parametrize(
    ("raw", "valid"),
    [
        pytest.param("+12125550123", True, id="us"),
        pytest.param("+14165550123", True, id="canada-shares-code-1"),
        pytest.param("+12005550123", False, id="us-unassigned-area-code"),
        pytest.param("+442079460000", True, id="uk"),
        pytest.param("+390612345678", True, id="italy-leading-zero"),
        pytest.param("+80012345678", True, id="non-geographic"),
    ],
)
def test_e164_input_is_decided_without_the_full_parse(raw: str, valid: bool) -> None:
    assert _canonical_is_valid(raw) is valid
