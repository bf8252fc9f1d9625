"""Which campaign status moves are allowed."""

from __future__ import annotations

from shared.models import CampaignStatus as S

ALLOWED_MOVES: dict[S, frozenset[S]] = {
    S.DRAFT: frozenset({S.ACTIVE, S.CANCELLED}),
    S.ACTIVE: frozenset({S.PAUSED, S.COMPLETED, S.CANCELLED}),
    S.PAUSED: frozenset({S.ACTIVE, S.COMPLETED, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
}


def allowed_sources(target: S) -> frozenset[S]:
    """The statuses a campaign may move to `target` from."""
    return frozenset(source for source, targets in ALLOWED_MOVES.items() if target in targets)
