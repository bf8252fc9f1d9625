"""When a webhook is switched off by the notifier rather than by its owner, and why."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

# A webhook whose every attempt failed for this long is disabled.
FAILING_FOR: Final = timedelta(days=5)

GONE: Final = "The endpoint answered 410 Gone."
FAILING: Final = f"Every attempt failed for {FAILING_FOR.days} days."


def _succeeded(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300


def failing_since_after(
    failing_since: datetime | None, status_code: int | None, now: datetime
) -> datetime | None:
    """Since when every attempt failed, once an attempt made at `now` got `status_code` (None:
    no answer came): None after a 2xx, else the start of the run of failures, this one if it
    is the first."""
    if _succeeded(status_code):
        return None
    return failing_since or now


def disabled_reason(
    status_code: int | None, failing_since: datetime | None, now: datetime
) -> str | None:
    """Why the webhook must be disabled after an attempt made at `now` that got `status_code`
    (None: no answer came), or None when it stays enabled.

    `failing_since` is when the run of failed attempts before this one began (None if the
    previous attempt succeeded, or there was none). A 410 Gone disables at once; a failure
    once every attempt has failed for `FAILING_FOR` disables too; a 2xx never does.
    """
    if status_code == 410:
        return GONE
    if _succeeded(status_code) or failing_since is None:
        return None
    return FAILING if now - failing_since >= FAILING_FOR else None
