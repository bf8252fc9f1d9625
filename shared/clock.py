"""Time, injected: services ask a clock; tests hand in a frozen one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


def to_iso(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as every timestamp of the API and the events is written."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
