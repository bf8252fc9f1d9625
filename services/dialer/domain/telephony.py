"""The provider port: what the dialer asks of a carrier and what it gets back."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from shared.rules.outcomes import Outcome


@dataclass(frozen=True, slots=True)
class PlaceCall:
    call_id: str
    attempt: int
    to: str
    prompt: str
    is_testing: bool


@dataclass(frozen=True, slots=True)
class CallResult:
    outcome: Outcome
    answered: bool
    duration_seconds: float
    error: str | None = None


class Telephony(Protocol):
    async def place_call(self, request: PlaceCall) -> CallResult: ...


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")


def render_prompt(template: str, payload: dict[str, Any]) -> str:
    """Fills `{{name}}` placeholders from the call's payload; unknown ones stay as written."""

    def fill(match: re.Match[str]) -> str:
        value = payload.get(match.group(1))
        if value is None:
            return match.group(0)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return _PLACEHOLDER.sub(fill, template)
