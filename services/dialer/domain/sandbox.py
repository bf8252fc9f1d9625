"""The sandbox carrier's rule: the last digit of the number decides the outcome."""

from __future__ import annotations

from dataclasses import dataclass

from shared.rules.outcomes import Outcome


@dataclass(frozen=True, slots=True)
class SandboxOutcome:
    outcome: Outcome
    answered: bool
    error: str | None = None


_BY_LAST_DIGIT = {
    **dict.fromkeys("0123", SandboxOutcome(Outcome.COMPLETED, answered=True)),
    "4": SandboxOutcome(Outcome.NO_ANSWER, answered=False),
    "5": SandboxOutcome(Outcome.BUSY, answered=False),
    "6": SandboxOutcome(Outcome.VOICEMAIL, answered=True),
    "7": SandboxOutcome(Outcome.FAILED, answered=False, error="carrier_error"),
    "8": SandboxOutcome(Outcome.COMPLETED, answered=True),
    "9": SandboxOutcome(Outcome.FAILED, answered=False, error="invalid_number"),
}


def sandbox_outcome(e164: str) -> SandboxOutcome:
    return _BY_LAST_DIGIT[e164[-1]]
