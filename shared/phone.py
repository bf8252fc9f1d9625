"""Phone numbers: parsing to E.164 and the time zones a number belongs to."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import timezone as phone_timezone

_UNKNOWN_ZONE = "Etc/Unknown"
# Regions whose metadata is loaded at start-up: the first parse per region costs milliseconds.
WARM_REGIONS = ("US", "CA", "GB", "DE", "FR", "ES", "IT", "NL", "AU", "IN", "BR", "MX", "JP")
_WARM_SAMPLES = (
    "+12125550123",
    "+14165550123",
    "+442079460000",
    "+4930123456",
    "+33142685300",
    "+34912345678",
    "+390612345678",
    "+31201234567",
    "+61291234567",
    "+911123456789",
    "+551123456789",
    "+525512345678",
    "+81312345678",
)


class InvalidNumber(ValueError):
    pass


def to_e164(raw: str) -> str:
    """Parses an international number and returns it in E.164; raises InvalidNumber."""
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(str(exc)) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber("not a valid number")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


@lru_cache(maxsize=65536)
def time_zones(e164: str) -> tuple[str, ...]:
    """IANA zones the number may be in; empty when phonenumbers does not know."""
    parsed = phonenumbers.parse(e164, None)
    zones = tuple(z for z in phone_timezone.time_zones_for_number(parsed) if z != _UNKNOWN_ZONE)
    return zones


def warm_up() -> None:
    """Loads metadata for the common regions so the first requests are not slow."""
    for sample in _WARM_SAMPLES:
        try:
            time_zones(to_e164(sample))
        except InvalidNumber:
            continue
