"""Filters read from a query string: left out means no filter; present, they must be valid.

An empty value (`?status=`) is refused like any other invalid one, never read as "no filter".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from services.ingest.domain.errors import Invalid

MAX_ID_LENGTH: Final = 64
MAX_SEARCH_LENGTH: Final = 255
MAX_NUMBER_LENGTH: Final = 64


def _label(name: str) -> str:
    return name.replace("_", " ")


def text_filter(query: Mapping[str, str], name: str, max_length: int) -> str | None:
    """The value of `name`, None when left out; a 422 when empty or longer than `max_length`."""
    value = query.get(name)
    if value is None:
        return None
    if value == "":
        raise Invalid({name: [f"The {_label(name)} must not be empty."]})
    if len(value) > max_length:
        raise Invalid(
            {name: [f"The {_label(name)} must not be greater than {max_length} characters."]}
        )
    return value


def choice_filter(query: Mapping[str, str], name: str, allowed: Iterable[str]) -> str | None:
    """The value of `name` when it is one of `allowed`, None when left out; else a 422."""
    value = query.get(name)
    if value is None:
        return None
    choices = list(allowed)
    if value not in choices:
        raise Invalid({name: [f"The {_label(name)} must be one of: {', '.join(choices)}."]})
    return value
