"""An agent's prompt filled from a call's payload, never longer than `MAX_PROMPT_BYTES`.

`{{name}}` placeholders take the payload's value of that name; unknown ones stay as written;
booleans read `true`/`false`. Rendering stops at the first piece that would take the output
past the limit, so neither the time nor the memory it takes grows with how large the result
would have been: a prompt of many placeholders with large values gives `PromptTooLarge`
without the oversized text ever being built.

The dialer refuses to dial a call whose prompt is too large (the attempt ends `failed` with
error `PROMPT_TOO_LARGE`, final); the API refuses agents and calls it can see are over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

# The most a rendered prompt may hold, in bytes of UTF-8.
MAX_PROMPT_BYTES: Final = 32 * 1024
# The error of an attempt ended without dialing because its prompt was over the limit.
PROMPT_TOO_LARGE: Final = "prompt_too_large"

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")


@dataclass(frozen=True, slots=True)
class PromptTooLarge:
    """The rendered prompt would be longer than `limit` bytes of UTF-8."""

    limit: int


def utf8_size(text: str) -> int:
    # ASCII text is one byte a character: counted without encoding a copy.
    return len(text) if text.isascii() else len(text.encode())


def has_placeholders(template: str) -> bool:
    return _PLACEHOLDER.search(template) is not None


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_prompt(
    template: str, payload: dict[str, Any], limit: int = MAX_PROMPT_BYTES
) -> str | PromptTooLarge:
    """The template with its placeholders filled from `payload`, or `PromptTooLarge` as soon
    as the output would pass `limit` bytes."""
    parts: list[str] = []
    room = limit

    def take(piece: str) -> bool:
        nonlocal room
        # A piece has at least as many bytes as characters: one longer than the room left is
        # over without being encoded.
        if len(piece) > room:
            return False
        size = utf8_size(piece)
        if size > room:
            return False
        room -= size
        parts.append(piece)
        return True

    def take_text(start: int, end: int) -> bool:
        # Measured before it is sliced, so a long stretch of text over the room is not copied.
        return end - start <= room and take(template[start:end])

    written = 0
    for match in _PLACEHOLDER.finditer(template):
        start, end = match.span()
        if not take_text(written, start):
            return PromptTooLarge(limit)
        value = payload.get(match.group(1))
        if not take(match.group(0) if value is None else _value_text(value)):
            return PromptTooLarge(limit)
        written = end
    if not take_text(written, len(template)):
        return PromptTooLarge(limit)
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """An agent's prompt with what checking a payload against it needs, worked out once."""

    text: str
    size: int  # bytes of UTF-8
    placeholders: bool

    @classmethod
    def of(cls, text: str) -> PromptTemplate:
        return cls(text, utf8_size(text), has_placeholders(text))

    def fits(self, payload: dict[str, Any], limit: int = MAX_PROMPT_BYTES) -> bool:
        """Whether the prompt rendered with `payload` stays within `limit`; renders (bounded)
        only when there is something to fill in."""
        if not self.placeholders or not payload:
            return self.size <= limit
        return not isinstance(render_prompt(self.text, payload, limit), PromptTooLarge)
