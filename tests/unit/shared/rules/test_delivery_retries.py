from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.rules.delivery_retries import (
    DEFAULT_RETRY_AFTER_CAP_S,
    JITTER,
    RETRY_WAITS,
    AfterAttempt,
    DeliveryState,
    RetryPolicy,
    after_attempt,
    after_manual_attempt,
    delivery_id_for,
    parse_retry_after,
    scheduled_wait,
)

NOW = datetime(2026, 3, 2, 15, 4, 5, tzinfo=UTC)
POLICY = RetryPolicy()


def middle() -> float:
    """The draw that moves a wait neither way."""
    return 0.5


def lowest() -> float:
    return 0.0


def nearly_highest() -> float:
    return 0.999


S = timedelta(seconds=1)
MIN = timedelta(minutes=1)
H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("failed", "expected"),
    [
        (1, 5 * S),
        (2, 5 * MIN),
        (3, 30 * MIN),
        (4, 2 * H),
        (5, 5 * H),
        (6, 10 * H),
        (7, 10 * H),
        (10, 10 * H),
        (1_000, 10 * H),
    ],
)
def test_the_schedule_then_ten_hours_repeated(failed: int, expected: timedelta) -> None:
    assert scheduled_wait(failed) == expected
    assert POLICY.wait(failed, rand=middle) == expected


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        scheduled_wait(0)


@pytest.mark.parametrize("failed", range(1, 8))
def test_jitter_moves_a_wait_by_up_to_a_fifth_either_way(failed: int) -> None:
    base = scheduled_wait(failed)

    assert POLICY.wait(failed, rand=lowest) == base * (1 - JITTER)
    assert POLICY.wait(failed, rand=nearly_highest) == base * (1 + JITTER * 0.998)
    draws = random.Random(failed)
    waits = [POLICY.wait(failed, rand=draws.random) for _ in range(2_000)]
    assert all(base * 0.8 <= wait <= base * 1.2 for wait in waits)
    # Spread over the whole band, not bunched at one value.
    assert min(waits) < base * 0.82
    assert max(waits) > base * 1.18


def test_the_default_draw_is_random_within_the_band() -> None:
    waits = {POLICY.wait(2) for _ in range(50)}

    assert len(waits) > 1
    assert all(4 * MIN <= wait < 6 * MIN for wait in waits)


@pytest.mark.parametrize(
    ("scale", "failed", "expected"),
    [
        (0.001, 1, timedelta(milliseconds=5)),
        (0.001, 2, timedelta(milliseconds=300)),
        (0.001, 6, timedelta(seconds=36)),
        (2.0, 1, 10 * S),
        (2.0, 4, 4 * H),
    ],
)
def test_scale_multiplies_every_wait(scale: float, failed: int, expected: timedelta) -> None:
    assert RetryPolicy(scale=scale).wait(failed, rand=middle) == expected


def test_scale_applies_after_jitter() -> None:
    assert RetryPolicy(scale=0.001).wait(1, rand=lowest) == timedelta(milliseconds=4)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_scale_must_be_a_positive_number(scale: float) -> None:
    with pytest.raises(ValueError, match="scale"):
        RetryPolicy(scale=scale)


@pytest.mark.parametrize("cap", [-1.0, float("nan"), float("inf")])
def test_the_retry_after_cap_must_be_finite_and_not_negative(cap: float) -> None:
    with pytest.raises(ValueError, match="retry_after_cap_s"):
        RetryPolicy(retry_after_cap_s=cap)


# --- Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120 * S),
        ("0", timedelta(0)),
        (" 30 ", 30 * S),
        ("007", 7 * S),
        ("99999999999999999999999", timedelta(seconds=1_000_000_000)),
    ],
)
def test_retry_after_in_seconds(value: str, expected: timedelta) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    "value",
    [
        "Mon, 02 Mar 2026 15:06:05 GMT",  # IMF-fixdate
        "Monday, 02-Mar-26 15:06:05 GMT",  # RFC 850
        "Mon Mar  2 15:06:05 2026",  # asctime
    ],
)
def test_retry_after_as_an_http_date_in_each_form(value: str) -> None:
    assert parse_retry_after(value, NOW) == 2 * MIN


def test_a_retry_after_date_already_past_is_no_wait() -> None:
    assert parse_retry_after("Mon, 02 Mar 2026 14:00:00 GMT", NOW) == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "soon",
        "-5",
        "1.5",
        "+10",
        "12 34",
        "120 s",
        "５",  # a digit, but not an ASCII one
        "Mon, 99 Foo 2026 15:06:05 GMT",
        "Mon, 02 Mar 99999 15:06:05 GMT",
        "Mon, 02 Mar 2026 25:06:05 GMT",
    ],
)
def test_a_retry_after_that_is_neither_form_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_a_retry_after_longer_than_the_schedule_is_waited() -> None:
    assert POLICY.wait(1, retry_after=120 * S, rand=nearly_highest) == 120 * S


def test_a_retry_after_shorter_than_the_schedule_does_not_bring_the_retry_in() -> None:
    assert POLICY.wait(2, retry_after=10 * S, rand=lowest) == 4 * MIN


def test_a_retry_after_is_cut_to_the_cap() -> None:
    assert DEFAULT_RETRY_AFTER_CAP_S == 3_600
    assert POLICY.wait(1, retry_after=5 * H, rand=middle) == 1 * H
    assert RetryPolicy(retry_after_cap_s=600).wait(1, retry_after=5 * H, rand=middle) == 10 * MIN
    # The cap bounds only the receiver's ask: the schedule's own longer waits stand.
    assert POLICY.wait(5, retry_after=5 * H, rand=middle) == 5 * H


def test_a_cap_of_zero_ignores_retry_after() -> None:
    assert RetryPolicy(retry_after_cap_s=0).wait(1, retry_after=H, rand=middle) == 5 * S


def test_a_retry_after_is_scaled_too() -> None:
    policy = RetryPolicy(scale=0.001)

    assert policy.wait(1, retry_after=120 * S, rand=middle) == timedelta(milliseconds=120)
    assert policy.wait(1, retry_after=5 * H, rand=middle) == 3.6 * S


# --- The state after an attempt ---------------------------------------------------------------


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
            AfterAttempt(DeliveryState.PENDING, NOW + 5 * S),
            id="first-fails",
        ),
        pytest.param(
            3,
            3,
            False,
            True,
            AfterAttempt(DeliveryState.PENDING, NOW + 30 * MIN),
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
        attempt,
        max_retries,
        delivered=delivered,
        retryable=retryable,
        now=NOW,
        policy=POLICY,
        rand=middle,
    )

    assert after == expected


@pytest.mark.parametrize("max_retries", [0, 1, 3, 10])
def test_a_delivery_that_always_fails_gets_one_plus_max_retries_attempts(
    max_retries: int,
) -> None:
    attempts = 0
    waits: list[timedelta] = []
    state = DeliveryState.PENDING
    while state is DeliveryState.PENDING:
        attempts += 1
        after = after_attempt(
            attempts,
            max_retries,
            delivered=False,
            retryable=True,
            now=NOW,
            policy=POLICY,
            rand=middle,
        )
        state = after.state
        if after.next_attempt_at is not None:
            waits.append(after.next_attempt_at - NOW)

    assert attempts == 1 + max_retries
    assert state is DeliveryState.FAILED
    # The schedule, cut to max_retries waits.
    assert waits == [*RETRY_WAITS, *[10 * H] * 4][:max_retries]


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        ("120", NOW + 120 * S),
        ("Mon, 02 Mar 2026 15:06:05 GMT", NOW + 2 * MIN),
        ("999999", NOW + H),
        ("tomorrow", NOW + 5 * S),
        (None, NOW + 5 * S),
    ],
)
def test_the_receivers_retry_after_sets_the_next_attempt(
    retry_after: str | None, expected: datetime
) -> None:
    after = after_attempt(
        1,
        3,
        delivered=False,
        retryable=True,
        now=NOW,
        policy=POLICY,
        retry_after=retry_after,
        rand=middle,
    )

    assert after == AfterAttempt(DeliveryState.PENDING, expected)


def test_a_retry_after_does_not_bring_back_a_delivery_out_of_retries() -> None:
    after = after_attempt(
        2, 1, delivered=False, retryable=True, now=NOW, policy=POLICY, retry_after="5"
    )

    assert after == AfterAttempt(DeliveryState.FAILED)


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
    # Stored deliveries are found by these ids: they never change from release to release.
    namespace = uuid.UUID("0b7e5c1a-9d2f-4f3e-8a61-5c4d3b2a1908")
    assert first == str(uuid.uuid5(namespace, "wh_1:evt_1"))
