"""The carrier port: what the dialer asks of a carrier and what comes back.

Placing a call returns as soon as the carrier has taken it, with the carrier's id for it. How
the call goes comes later, as `CarrierEvent`s: a carrier's signed callback to any copy of the
dialer, or the answer to a status look-up. Neither depends on the process that placed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.rules.outcomes import Outcome

# Error codes an attempt can end with, besides the outcomes themselves.
CARRIER_UNAVAILABLE = "carrier_unavailable"  # the carrier could not be reached or kept failing
CARRIER_ERROR = "carrier_error"  # the carrier took the call and then reported a failure
INVALID_NUMBER = "invalid_number"  # the carrier says the number cannot be called (final)
# The carrier could not say how a call went, look-up after look-up.
OUTCOME_UNKNOWN = "outcome_unknown"


@dataclass(frozen=True, slots=True)
class PlaceCall:
    call_id: str
    campaign_id: str
    attempt: int
    to: str
    # The campaign's own caller number (E.164), or None for the carrier's default.
    from_number: str | None
    prompt: str
    is_testing: bool


@dataclass(frozen=True, slots=True)
class Placed:
    """The carrier took the call: `carrier_call_id` names it in the carrier's callbacks.

    `ended` is how the call went when it was over as soon as it was taken (the sandbox with
    no ring and no talk time): nothing more is reported of it."""

    carrier_call_id: str
    ended: CarrierEvent | None = None


class PlacementFailed(Exception):
    """The carrier did not take the call; `error` is the attempt's error code."""

    def __init__(self, error: str, detail: str = "") -> None:
        super().__init__(f"{error}: {detail}" if detail else error)
        self.error = error
        self.detail = detail


class StatusUnavailable(Exception):
    """The carrier could not say how a call went (unreachable, or it does not know the id)."""


@dataclass(frozen=True, slots=True)
class CarrierEvent:
    """What the carrier reports of one call: answered, or ended (`outcome` set)."""

    carrier_call_id: str
    answered: bool
    outcome: Outcome | None = None
    duration_seconds: float = 0.0
    error: str | None = None

    @property
    def ended(self) -> bool:
        return self.outcome is not None


class Carrier(Protocol):
    """One carrier. `name` is stored with each call it places, so any copy can look it up."""

    @property
    def name(self) -> str: ...

    async def place_call(self, request: PlaceCall) -> Placed:
        """Asks the carrier to ring the number; raises `PlacementFailed` if it does not."""
        ...

    async def call_status(self, carrier_call_id: str) -> CarrierEvent | None:
        """How the call stands now: an ended event, an answered one, or None while it rings.
        Raises `StatusUnavailable` when the carrier cannot tell."""
        ...
