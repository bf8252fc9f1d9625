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


# Every error an ended attempt can carry besides its outcome: the dialer's (carrier
# unreachable or failing, the number invalid, no outcome ever reported, a prompt over the
# carrier's limit) and the scheduler's (the dialer lost the attempt). A campaign's
# `auto_dnc_trigger_errors` may name these only.
KNOWN_ERRORS: tuple[str, ...] = (
    "carrier_unavailable",
    "carrier_error",
    "invalid_number",
    "outcome_unknown",
    "prompt_too_large",
    "dialer_lost",
)
