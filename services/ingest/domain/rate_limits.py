"""Rate limits per environment: what a request costs and how long a refused one waits.

The allowance itself is kept in Redis (`adapters/rate_limits.py`), so every copy of the
service draws on the same one; these are the rules around it."""

from __future__ import annotations

import math
from typing import Any, Final

import orjson

from services.ingest.domain.errors import ApiError

RATE_LIMITED_MESSAGE: Final = "Too many requests."
RATE_LIMITED_CODE: Final = "RATE_LIMITED"


def rate_limited() -> ApiError:
    return ApiError(429, RATE_LIMITED_MESSAGE, RATE_LIMITED_CODE)


def retry_after_seconds(wait_ms: int) -> int:
    """The `Retry-After` of a refusal: whole seconds, rounded up, at least one."""
    return max(1, math.ceil(wait_ms / 1000))


def batch_cost(body: bytes, most: int) -> int:
    """What a batch request costs: its items, at most `most` (a longer batch is refused whole);
    a body that is not a batch at all costs one, like any other request."""
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return 1
    items = parsed.get("calls") if isinstance(parsed, dict) else None
    if not isinstance(items, list):
        return 1
    return min(max(len(items), 1), most)
