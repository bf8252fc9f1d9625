"""What a request costs against its environment's rate limit, and the refusal's wait."""

from __future__ import annotations

import orjson
import pytest

from services.ingest.domain.rate_limits import batch_cost, rate_limited, retry_after_seconds


@pytest.mark.parametrize(
    ("wait_ms", "seconds"),
    [(1, 1), (999, 1), (1000, 1), (1001, 2), (9_400, 10), (60_000, 60)],
)
def test_retry_after_is_whole_seconds_rounded_up(wait_ms: int, seconds: int) -> None:
    assert retry_after_seconds(wait_ms) == seconds


def test_the_refusal_is_the_documented_body() -> None:
    error = rate_limited()
    assert error.status == 429
    assert error.body() == {
        "success": False,
        "message": "Too many requests.",
        "code": "RATE_LIMITED",
    }


@pytest.mark.parametrize(
    ("body", "cost"),
    [
        (orjson.dumps({"calls": [{"to": "+12125550100"}] * 7}), 7),
        (orjson.dumps({"calls": [1, "x", None]}), 3),  # every item counts, valid or not
        (orjson.dumps({"calls": [{}] * 1500}), 1000),  # no more than a batch may hold
        (orjson.dumps({"calls": []}), 1),
        (orjson.dumps({"calls": "many"}), 1),
        (orjson.dumps([{"to": "+12125550100"}] * 5), 1),
        (b"not json", 1),
        (b"", 1),
    ],
    ids=["seven", "invalid-items", "over-the-cap", "empty", "not-a-list", "array", "junk", "none"],
)
def test_a_batch_costs_its_items(body: bytes, cost: int) -> None:
    assert batch_cost(body, most=1000) == cost
