from __future__ import annotations

import pytest

from shared.phone import InvalidNumber, time_zones, to_e164


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
