from __future__ import annotations

import pytest

from services.ingest.domain.campaign_status import ALLOWED_MOVES, lifecycle_event
from shared.events import CampaignEventType as E
from shared.models import CampaignStatus as S

EXPECTED = {
    (S.DRAFT, S.ACTIVE): E.STARTED,
    (S.DRAFT, S.CANCELLED): E.CANCELLED,
    (S.ACTIVE, S.PAUSED): E.PAUSED,
    (S.ACTIVE, S.COMPLETED): E.COMPLETED,
    (S.ACTIVE, S.CANCELLED): E.CANCELLED,
    (S.PAUSED, S.ACTIVE): E.RESUMED,
    (S.PAUSED, S.COMPLETED): E.COMPLETED,
    (S.PAUSED, S.CANCELLED): E.CANCELLED,
}


def test_every_allowed_move_is_told_as_one_documented_event() -> None:
    allowed = {(source, target) for source, targets in ALLOWED_MOVES.items() for target in targets}

    assert allowed == set(EXPECTED)


@pytest.mark.parametrize(("move", "event"), EXPECTED.items(), ids=lambda v: str(v))
def test_a_move_is_told_as_its_event(move: tuple[S, S], event: E) -> None:
    assert lifecycle_event(*move) is event


def test_resuming_differs_from_starting() -> None:
    assert lifecycle_event(S.PAUSED, S.ACTIVE) is not lifecycle_event(S.DRAFT, S.ACTIVE)
