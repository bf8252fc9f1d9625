"""Phone numbers: parsing to E.164 and the time zones a number belongs to."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache, lru_cache

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberDesc
from phonenumbers import timezone as phone_timezone
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

_NON_GEOGRAPHIC = "001"  # phonenumbers' region code for numbers of no country

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
    if _CANONICAL.fullmatch(raw) is not None:
        valid = _canonical_is_valid(raw)
        if valid is not None:
            if not valid:
                raise InvalidNumber("not a valid number")
            return raw
    return _parsed_e164(raw)


def _parsed_e164(raw: str) -> str:
    """phonenumbers' whole parse: any format it reads, then its validity check."""
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(str(exc)) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber("not a valid number")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


# A number already written in E.164 (what nearly every client sends) skips phonenumbers'
# general parse: its text handling and its validity check cost ~40 µs a number, most of it
# recompiling-by-lookup the same patterns. The answer is the one phonenumbers gives (a test
# compares both over every calling code); where it could differ (a national prefix that
# phonenumbers would strip), the number goes the general way.
_CANONICAL = re.compile(r"\+[1-9][0-9]{2,17}")
_MAX_CODE_DIGITS = 3
_NSN_LENGTHS = range(2, 18)


@dataclass(frozen=True, slots=True)
class _Desc:
    """One PhoneNumberDesc: the lengths it allows (none listed: any) and its pattern."""

    lengths: frozenset[int]
    pattern: re.Pattern[str]

    def matches(self, nsn: str) -> bool:
        if self.lengths and len(nsn) not in self.lengths:
            return False
        return self.pattern.fullmatch(nsn) is not None


def _desc(desc: PhoneNumberDesc | None) -> _Desc | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return _Desc(frozenset(desc.possible_length or ()), re.compile(desc.national_number_pattern))


@dataclass(frozen=True, slots=True)
class _Region:
    """A region's validity rule: a number of any known type (phonenumbers' type != UNKNOWN)."""

    leading_digits: re.Pattern[str] | None
    general: _Desc | None
    kinds: tuple[_Desc, ...]
    # Per number length, the kinds that allow it as one pattern: one match instead of up to ten.
    _by_length: dict[int, re.Pattern[str] | None] = field(default_factory=dict)

    @classmethod
    def of(cls, metadata: PhoneMetadata) -> _Region:
        kinds = [
            metadata.premium_rate,
            metadata.toll_free,
            metadata.shared_cost,
            metadata.voip,
            metadata.personal_number,
            metadata.pager,
            metadata.uan,
            metadata.voicemail,
            metadata.fixed_line,
        ]
        if not metadata.same_mobile_and_fixed_line_pattern:
            kinds.append(metadata.mobile)
        leading = metadata.leading_digits
        return cls(
            leading_digits=re.compile(leading) if leading is not None else None,
            general=_desc(metadata.general_desc),
            kinds=tuple(d for d in map(_desc, kinds) if d is not None),
        )

    def knows(self, nsn: str) -> bool:
        if self.general is None or not self.general.matches(nsn):
            return False
        length = len(nsn)
        try:
            kinds = self._by_length[length]
        except KeyError:
            allowed = [
                k.pattern.pattern for k in self.kinds if not k.lengths or length in k.lengths
            ]
            kinds = re.compile("|".join(f"(?:{p})" for p in allowed)) if allowed else None
            self._by_length[length] = kinds
        return kinds is not None and kinds.fullmatch(nsn) is not None


@dataclass(frozen=True, slots=True)
class _CallingCode:
    national_prefix: re.Pattern[str] | None
    # The region a number of this code is validated against, when the code has one region.
    only: _Region | None
    # Otherwise the candidates in phonenumbers' order, each with whether it may validate.
    shared: tuple[tuple[_Region, bool], ...]


@cache
def _calling_code(code: int) -> _CallingCode:
    regions = COUNTRY_CODE_TO_REGION_CODE[code]
    main = PhoneMetadata.metadata_for_region_or_calling_code(code, regions[0])
    prefix = main.national_prefix_for_parsing if main is not None else None
    national_prefix = re.compile(f"(?:{prefix})") if prefix else None

    def validating(region: str) -> tuple[_Region | None, bool]:
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
        if metadata is None:
            return None, False
        own_code = region == _NON_GEOGRAPHIC or metadata.country_code == code
        return _Region.of(metadata), own_code

    if len(regions) == 1:
        region, own_code = validating(regions[0])
        return _CallingCode(national_prefix, region if own_code else None, ())
    shared = []
    for name in regions:
        if PhoneMetadata.metadata_for_region(name, None) is None:
            continue
        region, own_code = validating(name)
        if region is not None:
            shared.append((region, own_code))
    return _CallingCode(national_prefix, None, tuple(shared))


def _canonical_is_valid(raw: str) -> bool | None:
    """Whether an E.164-shaped `raw` is a valid number; None when only a full parse can say."""
    digits = raw[1:]
    for size in range(1, _MAX_CODE_DIGITS + 1):
        code = int(digits[:size])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    nsn = digits[size:]
    if len(nsn) not in _NSN_LENGTHS:
        return None
    rules = _calling_code(code)
    if rules.national_prefix is not None and rules.national_prefix.match(nsn):
        return None
    if rules.only is not None:
        return rules.only.knows(nsn)
    for region, own_code in rules.shared:
        if region.leading_digits is None:  # a region without leading digits claims what it knows
            if region.knows(nsn):
                return own_code
        elif region.leading_digits.match(nsn) is not None:
            return own_code and region.knows(nsn)
    return False


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
