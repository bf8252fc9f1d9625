"""Each outcome an attempt can end with has its public event and its call status."""

from __future__ import annotations

import pytest

from services.scheduler.handlers import _OUTCOME_EVENTS
from shared.events import CallEventType
from shared.models import CallStatus
from shared.rules.outcomes import Outcome


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_outcome_ends_a_call_in_its_own_status(outcome: Outcome) -> None:
    assert CallStatus(outcome.value).value == outcome.value


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_outcome_has_its_public_event(outcome: Outcome) -> None:
    event = _OUTCOME_EVENTS[outcome]

    assert event.is_public
    assert event.value == f"campaign_call.{outcome.value}"


def test_a_cancelled_outcome_is_told_as_campaign_call_cancelled() -> None:
    assert _OUTCOME_EVENTS[Outcome.CANCELLED] is CallEventType.CANCELLED
