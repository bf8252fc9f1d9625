"""A campaign's `stats` block, from the per-status call counts kept in Redis."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_FINISHED = ("completed", "failed", "no_answer", "busy", "voicemail")


def campaign_stats(counts: Mapping[str, int]) -> dict[str, Any]:
    """Success rate is completed over calls that finished dialing; test calls are not counted."""
    finished = sum(counts.get(status, 0) for status in _FINISHED)
    completed = counts.get("completed", 0)
    total_ms = counts.get("completed_duration_ms", 0)
    return {
        "total_calls": counts.get("total", 0),
        "queued_calls": counts.get("queued", 0),
        "in_progress_calls": counts.get("in_progress", 0),
        "completed_calls": completed,
        "failed_calls": counts.get("failed", 0),
        "no_answer_calls": counts.get("no_answer", 0),
        "busy_calls": counts.get("busy", 0),
        "voicemail_calls": counts.get("voicemail", 0),
        "success_rate": round(completed / finished, 4) if finished else 0.0,
        "average_duration": round(total_ms / completed / 1000, 1) if completed else 0.0,
    }
