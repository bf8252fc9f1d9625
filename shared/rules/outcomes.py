"""How a call attempt can end: what the dialer reports and the scheduler's retry rules take."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    COMPLETED = "completed"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    VOICEMAIL = "voicemail"
    FAILED = "failed"
    # The carrier reports the call cancelled before it was answered; final, never retried.
    CANCELLED = "cancelled"
