from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.rules.webhook_health import (
    FAILING,
    FAILING_FOR,
    GONE,
    disabled_reason,
    failing_since_after,
)

NOW = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
FIVE_DAYS_AGO = NOW - timedelta(days=5)


def test_the_reasons_say_what_happened() -> None:
    assert timedelta(days=5) == FAILING_FOR
    assert GONE == "The endpoint answered 410 Gone."
    assert FAILING == "Every attempt failed for 5 days."


@pytest.mark.parametrize(
    ("status_code", "failing_since", "expected"),
    [
        pytest.param(410, None, GONE, id="gone-after-successes"),
        pytest.param(410, NOW - timedelta(minutes=1), GONE, id="gone-while-failing"),
        pytest.param(410, FIVE_DAYS_AGO, GONE, id="gone-beats-failing"),
        pytest.param(200, None, None, id="ok"),
        pytest.param(204, FIVE_DAYS_AGO - timedelta(days=1), None, id="ok-ends-a-long-run"),
        pytest.param(500, None, None, id="first-failure"),
        pytest.param(404, None, None, id="not-found-is-an-ordinary-failure"),
        pytest.param(500, NOW - timedelta(days=4, hours=23), None, id="short-of-five-days"),
        pytest.param(500, FIVE_DAYS_AGO, FAILING, id="five-days"),
        pytest.param(503, NOW - timedelta(days=9), FAILING, id="longer"),
        pytest.param(None, FIVE_DAYS_AGO, FAILING, id="no-answer-for-five-days"),
        pytest.param(None, NOW - timedelta(hours=1), None, id="no-answer-lately"),
        pytest.param(301, FIVE_DAYS_AGO, FAILING, id="a-redirect-is-a-failure"),
    ],
)
def test_when_a_webhook_is_disabled(
    status_code: int | None, failing_since: datetime | None, expected: str | None
) -> None:
    assert disabled_reason(status_code, failing_since, NOW) == expected


@pytest.mark.parametrize(
    ("failing_since", "status_code", "expected"),
    [
        pytest.param(None, 200, None, id="still-fine"),
        pytest.param(FIVE_DAYS_AGO, 200, None, id="a-success-ends-the-run"),
        pytest.param(None, 500, NOW, id="a-run-starts"),
        pytest.param(None, None, NOW, id="a-run-starts-without-an-answer"),
        pytest.param(FIVE_DAYS_AGO, 500, FIVE_DAYS_AGO, id="a-run-goes-on"),
    ],
)
def test_since_when_every_attempt_failed(
    failing_since: datetime | None, status_code: int | None, expected: datetime | None
) -> None:
    assert failing_since_after(failing_since, status_code, NOW) == expected


def test_a_receiver_down_for_five_days_is_disabled_by_its_attempt_past_the_mark() -> None:
    since: datetime | None = None
    reasons = []
    for hours in range(0, 24 * 6, 10):
        now = NOW + timedelta(hours=hours)
        reasons.append((hours, disabled_reason(503, since, now)))
        since = failing_since_after(since, 503, now)

    first = next(hours for hours, reason in reasons if reason is not None)
    assert first == 120
    assert {reason for hours, reason in reasons if hours >= 120} == {FAILING}
