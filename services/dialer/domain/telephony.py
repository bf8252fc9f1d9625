"""The provider port: what the dialer asks of a carrier and what it gets back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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
