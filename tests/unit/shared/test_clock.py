from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.clock import from_us, to_us


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC),
        datetime(2026, 3, 2, 9, 30, 15, 999999, tzinfo=UTC),
        datetime(2286, 11, 20, 17, 46, 39, 999999, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_microseconds_read_back_exactly(moment: datetime) -> None:
    assert from_us(to_us(moment)) == moment


def test_an_instant_in_another_zone_is_the_same_number() -> None:
    utc = datetime(2026, 3, 2, 9, 30, 15, 1, tzinfo=UTC)
    paris = utc.astimezone(timezone(timedelta(hours=1)))

    assert to_us(paris) == to_us(utc) == 1772443815000001
    assert from_us(to_us(paris)).tzinfo is UTC
