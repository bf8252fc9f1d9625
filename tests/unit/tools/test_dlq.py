"""The DLQ replay's rules: which records it replays, how it reads --since, what the copy carries."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from shared.bus import DLQ_CONSUMER_HEADER, DLQ_ERROR_HEADER, DLQ_TOPIC_HEADER
from tools.dlq import REPLAYED_HEADER, Selection, parse_since, replay_headers, why_not_replayed

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
FROM_REQUESTS = [(DLQ_TOPIC_HEADER, b"campaign-calls.requested"), (DLQ_ERROR_HEADER, b"boom")]
AT_NOON_MS = int(NOW.timestamp() * 1000)


@pytest.mark.parametrize(
    ("text", "since"),
    [
        ("90s", NOW - timedelta(seconds=90)),
        ("30m", NOW - timedelta(minutes=30)),
        ("2h", NOW - timedelta(hours=2)),
        ("7d", NOW - timedelta(days=7)),
        ("1w", NOW - timedelta(weeks=1)),
        ("2026-12-01T08:30:00Z", datetime(2026, 12, 1, 8, 30, tzinfo=UTC)),
        ("2026-12-01T09:30:00+01:00", datetime(2026, 12, 1, 8, 30, tzinfo=UTC)),
        ("2026-12-01T08:30:00", datetime(2026, 12, 1, 8, 30, tzinfo=UTC)),
    ],
)
def test_since_is_a_duration_back_or_an_instant(text: str, since: datetime) -> None:
    assert parse_since(text, NOW) == since


@pytest.mark.parametrize("text", ["", "yesterday", "2h30m", "-2h", "12"])
def test_since_refuses_anything_else(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_since(text, NOW)


@pytest.mark.parametrize(
    ("headers", "timestamp_ms", "wanted", "reason"),
    [
        (FROM_REQUESTS, AT_NOON_MS, Selection(), None),
        (FROM_REQUESTS, AT_NOON_MS, Selection(topic="campaign-calls.requested"), None),
        (
            FROM_REQUESTS,
            AT_NOON_MS,
            Selection(topic="campaign-calls.events"),
            "from campaign-calls.requested",
        ),
        (FROM_REQUESTS, AT_NOON_MS, Selection(since=NOW), None),
        (
            FROM_REQUESTS,
            AT_NOON_MS - 1,
            Selection(since=NOW),
            "dead-lettered before --since",
        ),
        ([(DLQ_ERROR_HEADER, b"boom")], AT_NOON_MS, Selection(), "no source topic"),
        ([(DLQ_TOPIC_HEADER, b"")], AT_NOON_MS, Selection(), "no source topic"),
    ],
)
def test_which_records_are_replayed(
    headers: list[tuple[str, bytes]], timestamp_ms: int, wanted: Selection, reason: str | None
) -> None:
    assert why_not_replayed(headers, timestamp_ms, wanted) == reason


def test_the_copy_keeps_the_original_headers_and_says_where_it_was_parked() -> None:
    headers = [
        ("content-type", b"application/json"),
        *FROM_REQUESTS,
        (DLQ_CONSUMER_HEADER, b"scheduler"),
        (REPLAYED_HEADER, b"0@1"),
    ]
    assert replay_headers(headers, 3, 42) == [
        ("content-type", b"application/json"),
        (REPLAYED_HEADER, b"3@42"),
    ]
