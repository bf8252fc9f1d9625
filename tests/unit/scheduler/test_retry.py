from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.scheduler.domain.retry import (
    Retry,
    RetryPolicy,
    Terminal,
    cooldown_for,
    decide_after_attempt,
    post_completion_hold_until,
)
from shared.rules.outcomes import Outcome

NOW = datetime(2026, 5, 4, 14, 30, 15, 250_000, tzinfo=UTC)
PER_OUTCOME = RetryPolicy(
    retry_cooldown_hours=24,
    success_cooldown_hours=1,
    voicemail_cooldown_hours=2,
    no_answer_cooldown_hours=3,
    busy_cooldown_hours=0.5,
    failed_cooldown_hours=6,
)


@pytest.mark.parametrize(
    ("policy", "outcome", "hours"),
    [
        pytest.param(PER_OUTCOME, Outcome.NO_ANSWER, 3, id="no-answer-own-hours"),
        pytest.param(PER_OUTCOME, Outcome.BUSY, 0.5, id="busy-own-hours"),
        pytest.param(PER_OUTCOME, Outcome.VOICEMAIL, 2, id="voicemail-own-hours"),
        pytest.param(PER_OUTCOME, Outcome.FAILED, 6, id="failed-own-hours"),
        pytest.param(PER_OUTCOME, Outcome.COMPLETED, 1, id="completed-own-hours"),
        pytest.param(
            RetryPolicy(retry_cooldown_hours=12), Outcome.NO_ANSWER, 12, id="no-answer-fallback"
        ),
        pytest.param(RetryPolicy(retry_cooldown_hours=12), Outcome.BUSY, 12, id="busy-fallback"),
        pytest.param(
            RetryPolicy(retry_cooldown_hours=12), Outcome.VOICEMAIL, 12, id="voicemail-fallback"
        ),
        pytest.param(
            RetryPolicy(retry_cooldown_hours=12), Outcome.FAILED, 12, id="failed-fallback"
        ),
        pytest.param(
            RetryPolicy(retry_cooldown_hours=12), Outcome.COMPLETED, 12, id="completed-fallback"
        ),
        pytest.param(PER_OUTCOME, Outcome.CANCELLED, 24, id="cancelled-has-no-own-hours"),
        pytest.param(RetryPolicy(), Outcome.NO_ANSWER, 24, id="default-24h"),
        pytest.param(
            RetryPolicy(busy_cooldown_hours=1.25), Outcome.BUSY, 1.25, id="fractional-hours"
        ),
    ],
)
def test_cooldown_for(policy: RetryPolicy, outcome: Outcome, hours: float) -> None:
    assert cooldown_for(policy, outcome) == timedelta(hours=hours)


@pytest.mark.parametrize(
    ("outcome", "error", "expected"),
    [
        pytest.param(Outcome.COMPLETED, None, Terminal(Outcome.COMPLETED), id="completed-is-final"),
        pytest.param(
            Outcome.NO_ANSWER, None, Retry(2, NOW + timedelta(hours=3)), id="no-answer-retries"
        ),
        pytest.param(Outcome.BUSY, None, Retry(2, NOW + timedelta(minutes=30)), id="busy-retries"),
        pytest.param(
            Outcome.VOICEMAIL, None, Retry(2, NOW + timedelta(hours=2)), id="voicemail-retries"
        ),
        pytest.param(Outcome.FAILED, None, Retry(2, NOW + timedelta(hours=6)), id="failed-retries"),
        pytest.param(
            Outcome.FAILED,
            "carrier_timeout",
            Retry(2, NOW + timedelta(hours=6)),
            id="failed-transient-error-retries",
        ),
        pytest.param(
            Outcome.FAILED,
            "invalid_number",
            Terminal(Outcome.FAILED),
            id="failed-terminal-error-stops",
        ),
        pytest.param(
            Outcome.FAILED,
            "prompt_too_large",
            Terminal(Outcome.FAILED),
            id="prompt-too-large-stops",
        ),
        pytest.param(
            Outcome.NO_ANSWER,
            "invalid_number",
            Retry(2, NOW + timedelta(hours=3)),
            id="terminal-error-only-stops-failed",
        ),
        pytest.param(Outcome.CANCELLED, None, Terminal(Outcome.CANCELLED), id="cancelled-is-final"),
        pytest.param(
            Outcome.CANCELLED,
            "carrier_error",
            Terminal(Outcome.CANCELLED),
            id="cancelled-with-an-error-is-final",
        ),
    ],
)
def test_first_attempt(outcome: Outcome, error: str | None, expected: Retry | Terminal) -> None:
    assert decide_after_attempt(PER_OUTCOME, 1, outcome, error, NOW) == expected


@pytest.mark.parametrize(
    ("max_retries", "attempt", "outcome", "expected"),
    [
        pytest.param(3, 1, Outcome.BUSY, Retry(2, NOW + timedelta(hours=24)), id="first-of-four"),
        pytest.param(
            3, 3, Outcome.BUSY, Retry(4, NOW + timedelta(hours=24)), id="third-allows-last-retry"
        ),
        pytest.param(3, 4, Outcome.BUSY, Terminal(Outcome.BUSY), id="fourth-is-last"),
        pytest.param(3, 4, Outcome.NO_ANSWER, Terminal(Outcome.NO_ANSWER), id="last-no-answer"),
        pytest.param(3, 4, Outcome.VOICEMAIL, Terminal(Outcome.VOICEMAIL), id="last-voicemail"),
        pytest.param(3, 4, Outcome.FAILED, Terminal(Outcome.FAILED), id="last-failed"),
        pytest.param(3, 4, Outcome.COMPLETED, Terminal(Outcome.COMPLETED), id="last-completed"),
        pytest.param(3, 4, Outcome.CANCELLED, Terminal(Outcome.CANCELLED), id="last-cancelled"),
        pytest.param(
            10, 1, Outcome.CANCELLED, Terminal(Outcome.CANCELLED), id="cancelled-with-ten-left"
        ),
        pytest.param(0, 1, Outcome.NO_ANSWER, Terminal(Outcome.NO_ANSWER), id="no-retries-at-all"),
        pytest.param(0, 1, Outcome.FAILED, Terminal(Outcome.FAILED), id="no-retries-failed"),
        pytest.param(
            10, 10, Outcome.BUSY, Retry(11, NOW + timedelta(hours=24)), id="ten-retries-tenth"
        ),
        pytest.param(10, 11, Outcome.BUSY, Terminal(Outcome.BUSY), id="ten-retries-eleventh"),
    ],
)
def test_retries_run_out(
    max_retries: int, attempt: int, outcome: Outcome, expected: Retry | Terminal
) -> None:
    policy = RetryPolicy(max_retries=max_retries)
    assert decide_after_attempt(policy, attempt, outcome, None, NOW) == expected


def test_custom_terminal_errors() -> None:
    policy = RetryPolicy(terminal_errors=frozenset({"disconnected"}))
    assert decide_after_attempt(policy, 1, Outcome.FAILED, "disconnected", NOW) == Terminal(
        Outcome.FAILED
    )
    assert decide_after_attempt(policy, 1, Outcome.FAILED, "invalid_number", NOW) == Retry(
        2, NOW + timedelta(hours=24)
    )


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        decide_after_attempt(RetryPolicy(), 0, Outcome.BUSY, None, NOW)


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        pytest.param(
            168, datetime(2026, 5, 11, 14, 30, 15, 250_000, tzinfo=UTC), id="default-week"
        ),
        pytest.param(1, datetime(2026, 5, 4, 15, 30, 15, 250_000, tzinfo=UTC), id="one-hour"),
        pytest.param(1.5, datetime(2026, 5, 4, 16, 0, 15, 250_000, tzinfo=UTC), id="fractional"),
    ],
)
def test_post_completion_hold_until(hours: float, expected: datetime) -> None:
    assert post_completion_hold_until(NOW, hours) == expected


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_outcome_has_a_cooldown_and_a_decision(outcome: Outcome) -> None:
    policy = RetryPolicy(max_retries=1)

    assert cooldown_for(policy, outcome) > timedelta(0)
    assert isinstance(decide_after_attempt(policy, 1, outcome, None, NOW), Retry | Terminal)
    assert decide_after_attempt(policy, 2, outcome, None, NOW) == Terminal(outcome)
