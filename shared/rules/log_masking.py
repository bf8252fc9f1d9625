"""What a log line may not carry: full phone numbers and secrets.

A number in E.164 form (`+` and 8 to 15 digits) keeps its last four digits only
(`+12025550101` -> `+*******0101`); the value of a field whose name says it is a secret
(authorization, token, secret, password, API key) is replaced whole."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

# Not followed by a digit: a longer run is no E.164 number.
_E164 = re.compile(r"\+([0-9]{4,11})([0-9]{4})(?![0-9])")
_SECRET_NAME = re.compile(r"authorization|token|secret|password|passwd|api[-_ ]?key", re.I)


def _masked(match: re.Match[str]) -> str:
    return f"+{'*' * len(match.group(1))}{match.group(2)}"


def mask_phone_numbers(text: str) -> str:
    """The text with every E.164 number in it masked to its last four digits."""
    if "+" not in text:  # most lines: no search at all
        return text
    return _E164.sub(_masked, text)


def is_secret_name(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def masked_value(value: object) -> object:
    """A log field's value made safe: numbers masked in its text, secrets in nested mappings
    redacted, lists and tuples walked."""
    if isinstance(value, str):
        return mask_phone_numbers(value)
    if isinstance(value, Mapping):
        return masked_fields(value)
    if isinstance(value, list | tuple):
        return [masked_value(item) for item in value]
    return value


def masked_fields(fields: Mapping[Any, object]) -> dict[str, object]:
    """Log fields made safe: a secret's value redacted, numbers masked everywhere else."""
    safe: dict[str, object] = {}
    for name, value in fields.items():
        key = str(name)
        safe[key] = REDACTED if is_secret_name(key) else masked_value(value)
    return safe
