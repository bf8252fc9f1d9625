from __future__ import annotations

import pytest

from services.dialer.domain.sandbox import SandboxOutcome, sandbox_outcome
from shared.rules.outcomes import Outcome

COMPLETED = SandboxOutcome(Outcome.COMPLETED, answered=True)

TABLE = {
    "0": COMPLETED,
    "1": COMPLETED,
    "2": COMPLETED,
    "3": COMPLETED,
    "4": SandboxOutcome(Outcome.NO_ANSWER, answered=False),
    "5": SandboxOutcome(Outcome.BUSY, answered=False),
    "6": SandboxOutcome(Outcome.VOICEMAIL, answered=True),
    "7": SandboxOutcome(Outcome.FAILED, answered=False, error="carrier_error"),
    "8": COMPLETED,
    "9": SandboxOutcome(Outcome.FAILED, answered=False, error="invalid_number"),
}


@pytest.mark.parametrize(
    ("digit", "expected"), [pytest.param(d, o, id=f"{d}-{o.outcome}") for d, o in TABLE.items()]
)
@pytest.mark.parametrize("prefix", ["+1212555012", "+4420794600", "+8001234567"])
def test_last_digit_decides_the_outcome(prefix: str, digit: str, expected: SandboxOutcome) -> None:
    assert sandbox_outcome(prefix + digit) == expected


@pytest.mark.parametrize(
    ("e164", "outcome", "answered", "error"),
    [
        pytest.param("+12125550120", Outcome.COMPLETED, True, None, id="completed"),
        pytest.param("+12125550124", Outcome.NO_ANSWER, False, None, id="no-answer"),
        pytest.param("+12125550125", Outcome.BUSY, False, None, id="busy"),
        pytest.param("+12125550126", Outcome.VOICEMAIL, True, None, id="voicemail"),
        pytest.param("+12125550127", Outcome.FAILED, False, "carrier_error", id="carrier-error"),
        pytest.param("+12125550129", Outcome.FAILED, False, "invalid_number", id="invalid-number"),
    ],
)
def test_outcome_fields(e164: str, outcome: Outcome, answered: bool, error: str | None) -> None:
    result = sandbox_outcome(e164)

    assert result.outcome is outcome
    assert result.answered is answered
    assert result.error == error


def test_only_failures_carry_an_error() -> None:
    for digit in "0123456789":
        result = sandbox_outcome("+1212555012" + digit)
        assert (result.error is not None) == (result.outcome is Outcome.FAILED), digit


def test_every_outcome_is_reachable() -> None:
    reached = {sandbox_outcome("+1212555012" + digit).outcome for digit in "0123456789"}

    # No last digit stands for a call the carrier cancels.
    assert reached == set(Outcome) - {Outcome.CANCELLED}
