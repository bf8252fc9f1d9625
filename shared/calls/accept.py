"""Accepting a call: one use case, whether the request came over HTTP or from the topic.

Its entry points only translate: ingest's handler turns an HTTP body into a `NewCall` and the
result into an answer (and hands an accepted call on to the scheduler); the scheduler's consumer
turns a `CallRequested` message into a `NewCall` and the result into events (and queues an
accepted call). Here: the checks against the campaign's rules (status, do-not-call list, the
number's rest, calling windows), the decision of when the call may first ring, and one atomic
store that reserves the number unless the campaign allows duplicates.

A campaign read a moment ago may have changed since. The call is stored only if the campaign is
still the version it was checked against (the store compares them), and a refusal that follows
from the campaign is given only after checking against a fresh read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from shared.clock import Clock, to_iso
from shared.models import Call, Campaign
from shared.rules.acceptance import Refusal, decide_first_attempt
from shared.rules.policy import CLOSED_STATUSES, calling_policy
from shared.rules.windows import CallingPolicy
from shared.store.calls import CallStore
from shared.store.catalog import CatalogStore
from shared.store.dnc import DncStore

# How often one request is checked again because its campaign changed while it was stored.
CHECKS: Final = 3


# The request and the results are made once per call on the API's hot path: plain slotted
# classes, since a frozen dataclass sets each field through `object.__setattr__`.
@dataclass(slots=True)
class NewCall:
    """A call request as the entry points hand it in, its number already in E.164."""

    id: str
    to: str
    payload: dict[str, Any]
    context: dict[str, Any]
    is_testing: bool
    allow_duplicates: bool
    requested_at: datetime | None = None  # when the requester asked; default: when accepted
    trace: str | None = None  # the request's trace context, stored with the call


@dataclass(slots=True)
class Accepted:
    call: Call
    campaign: Campaign  # the version the call was checked against
    first: bool = True  # False: an earlier delivery of the same request stored the call


@dataclass(slots=True)
class Refused:
    reason: Refusal
    campaign: Campaign | None
    holder: str | None = None  # a duplicate's: the live call that holds the number


@dataclass(frozen=True, slots=True)
class Unsettled:
    """The campaign changed under every check; nothing was stored, and asking again may do."""


UNSETTLED: Final = Unsettled()


@dataclass(frozen=True, slots=True)
class CampaignRead:
    """What checking a call derives from one read of a campaign."""

    campaign: Campaign
    policy: CallingPolicy
    version: str  # the stored `updated_at`, as the store compares it

    @classmethod
    def of(cls, campaign: Campaign) -> CampaignRead:
        return cls(campaign, calling_policy(campaign), to_iso(campaign.updated_at))


class Campaigns(Protocol):
    """Where the use case reads a campaign again and what it derives from one."""

    async def refresh(self, campaign_id: str) -> Campaign | None:
        """The campaign as stored now, or None if it no longer exists."""
        ...

    def derived(self, campaign: Campaign) -> CampaignRead: ...


class StoredCampaigns:
    """Campaigns read from the store each time, deriving from each read anew."""

    def __init__(self, catalog: CatalogStore) -> None:
        self._catalog = catalog

    async def refresh(self, campaign_id: str) -> Campaign | None:
        return await self._catalog.get_campaign(campaign_id)

    def derived(self, campaign: Campaign) -> CampaignRead:
        return CampaignRead.of(campaign)


class AcceptCall:
    """Checks a call request against its campaign's rules, decides when it first rings and
    stores it with its number's reservation, or says why not."""

    def __init__(
        self,
        calls: CallStore,
        dnc: DncStore,
        campaigns: Campaigns,
        clock: Clock,
        reservation_ttl_ms: int,
    ) -> None:
        self._calls = calls
        self._dnc = dnc
        self._campaigns = campaigns
        self._clock = clock
        self._reservation_ttl_ms = reservation_ttl_ms

    async def __call__(
        self, campaign: Campaign, request: NewCall, *, current: bool
    ) -> Accepted | Refused | Unsettled:
        """`campaign` is the request's, as read a moment ago; `current` says it was read just
        now, so that a refusal it gives needs no fresh read to confirm it.

        Nothing is sent: an accepted call is stored marked as waiting for the scheduler."""
        # One frame for every check (no helper coroutine): this runs for every API call.
        for _ in range(CHECKS):
            now = self._clock.now()
            # A closed campaign refuses before the lists count: no need to look them up.
            if campaign.status in CLOSED_STATUSES:
                entry, rests_until = None, None
            else:
                entry, rests_until = await self._dnc.check_new_call(campaign, request.to, now)
            read = self._campaigns.derived(campaign)
            decision = decide_first_attempt(
                campaign,
                campaign.status,
                request.to,
                now,
                on_dnc=entry is not None,
                rests_until=rests_until,
                policy=read.policy,
            )
            if isinstance(decision, Refusal):
                if current:
                    return Refused(decision, campaign)
            else:
                call = Call(
                    id=request.id,
                    campaign_id=campaign.id,
                    environment_id=campaign.environment_id,
                    to=request.to,
                    payload=request.payload,
                    context=request.context,
                    is_testing=request.is_testing,
                    allow_duplicates=request.allow_duplicates,
                    attempt=1,
                    scheduled_at=decision.at,
                    scheduling_reason=decision.reason.value,
                    created_at=request.requested_at or now,
                    updated_at=now,
                    trace=request.trace,
                )
                stored = await self._calls.accept(
                    call, self._reservation_ttl_ms, now, campaign_version=read.version
                )
                if stored.outcome == "accepted":
                    return Accepted(call, campaign)
                if stored.outcome == "duplicate":
                    return Refused(Refusal.DUPLICATE, campaign, stored.other)
                if stored.outcome == "exists":
                    return Accepted(call, campaign, first=False)
                # "campaign_changed": checked against an older version than the stored one.
            fresh = await self._campaigns.refresh(campaign.id)
            if fresh is None or fresh.environment_id != campaign.environment_id:
                return Refused(Refusal.CAMPAIGN_NOT_FOUND, None)
            campaign, current = fresh, True
        return UNSETTLED
