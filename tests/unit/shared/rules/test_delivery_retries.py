from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.rules.delivery_retries import (
    AfterAttempt,
    DeliveryState,
    RetryPolicy,
    after_attempt,
    after_manual_attempt,
    delivery_id_for,
)

NOW = datetime(2026, 3, 2, 15, 4, 5, tzinfo=UTC)
SECONDS = RetryPolicy(base_ms=1_000, cap_ms=60_000)


@pytest.mark.parametrize(
    ("failed", "expected_ms"),
    [(1, 1_000), (2, 2_000), (3, 4_000), (4, 8_000), (6, 32_000), (7, 60_000), (10, 60_000)],
)
def test_waits_double_from_the_base_up_to_the_cap(failed: int, expected_ms: int) -> None:
    assert SECONDS.delay_ms(failed) == expected_ms


def test_waits_in_milliseconds_for_tests() -> None:
    policy = RetryPolicy(base_ms=10, cap_ms=35)

    assert [policy.delay_ms(n) for n in range(1, 6)] == [10, 20, 35, 35, 35]


def test_waits_never_shrink_and_never_pass_the_cap() -> None:
    delays = [SECONDS.delay_ms(n) for n in range(1, 200)]

    assert delays == sorted(delays)
    assert max(delays) == SECONDS.cap_ms


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        SECONDS.delay_ms(0)


@pytest.mark.parametrize(
    ("attempt", "max_retries", "delivered", "retryable", "expected"),
    [
        pytest.param(1, 3, True, True, AfterAttempt(DeliveryState.DELIVERED), id="first-ok"),
        pytest.param(4, 3, True, True, AfterAttempt(DeliveryState.DELIVERED), id="last-ok"),
        pytest.param(
            1,
            3,
            False,
            True,
            AfterAttempt(DeliveryState.PENDING, NOW + timedelta(seconds=1)),
            id="first-fails",
        ),
        pytest.param(
            3,
            3,
            False,
            True,
            AfterAttempt(DeliveryState.PENDING, NOW + timedelta(seconds=4)),
            id="third-fails-one-retry-left",
        ),
        pytest.param(4, 3, False, True, AfterAttempt(DeliveryState.FAILED), id="last-fails"),
        pytest.param(1, 0, False, True, AfterAttempt(DeliveryState.FAILED), id="no-retries"),
        pytest.param(1, 3, False, False, AfterAttempt(DeliveryState.FAILED), id="not-retryable"),
        pytest.param(9, 3, False, True, AfterAttempt(DeliveryState.FAILED), id="past-the-last"),
    ],
)
def test_state_after_an_attempt(
    attempt: int, max_retries: int, delivered: bool, retryable: bool, expected: AfterAttempt
) -> None:
    after = after_attempt(
        attempt, max_retries, delivered=delivered, retryable=retryable, now=NOW, policy=SECONDS
    )

    assert after == expected


@pytest.mark.parametrize("max_retries", [0, 1, 3, 10])
def test_a_delivery_that_always_fails_gets_one_plus_max_retries_attempts(
    max_retries: int,
) -> None:
    attempts = 0
    state = DeliveryState.PENDING
    while state is DeliveryState.PENDING:
        attempts += 1
        state = after_attempt(
            attempts, max_retries, delivered=False, retryable=True, now=NOW, policy=SECONDS
        ).state

    assert attempts == 1 + max_retries
    assert state is DeliveryState.FAILED


@pytest.mark.parametrize(
    ("previous", "delivered", "expected"),
    [
        (DeliveryState.FAILED, True, DeliveryState.DELIVERED),
        (DeliveryState.FAILED, False, DeliveryState.FAILED),
        (DeliveryState.DELIVERED, True, DeliveryState.DELIVERED),
        (DeliveryState.DELIVERED, False, DeliveryState.FAILED),
        (DeliveryState.PENDING, True, DeliveryState.DELIVERED),
        (DeliveryState.PENDING, False, DeliveryState.PENDING),
    ],
)
def test_state_after_a_redelivery(
    previous: DeliveryState, delivered: bool, expected: DeliveryState
) -> None:
    assert after_manual_attempt(previous, delivered=delivered) is expected


def test_one_delivery_id_per_webhook_and_event() -> None:
    first = delivery_id_for("wh_1", "evt_1")

    assert delivery_id_for("wh_1", "evt_1") == first
    assert delivery_id_for("wh_2", "evt_1") != first
    assert delivery_id_for("wh_1", "evt_2") != first
