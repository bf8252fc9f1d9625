"""Which campaign status moves are allowed, and the event each one is told as."""

from __future__ import annotations

from shared.events import CampaignEventType as E
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


def lifecycle_event(previous: S, current: S) -> E | None:
    """The `campaign.*` event a move from `previous` to `current` is, if any."""
    if current is S.ACTIVE:
        return E.RESUMED if previous is S.PAUSED else E.STARTED
    return {S.PAUSED: E.PAUSED, S.COMPLETED: E.COMPLETED, S.CANCELLED: E.CANCELLED}.get(current)
