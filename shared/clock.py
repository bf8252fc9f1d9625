"""Time, injected: services ask a clock; tests hand in a frozen one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def to_iso(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as every timestamp of the API and the events is written."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def to_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (no float on the way)."""
    return (moment - _EPOCH) // _MICROSECOND


def from_us(us: int) -> datetime:
    """The UTC instant `to_us` gave, exactly."""
    return _EPOCH + us * _MICROSECOND


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
