"""One send of a delivery as the deliveries log keeps it and the API shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from shared.clock import to_iso
from shared.rules.delivery_retries import DeliveryState


class Trigger(StrEnum):
    """What made the attempt happen."""

    EVENT = "event"  # the first send of an event
    RETRY = "retry"  # a scheduled retry from the delay queue
    TEST = "test"  # POST .../webhooks/{id}/test
    REDELIVER = "redeliver"  # POST .../deliveries/{id}/redeliver


def _iso(moment: datetime | None) -> str | None:
    return to_iso(moment) if moment else None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    delivery_id: str
    event_id: str
    event_type: str
    attempt: int
    trigger: Trigger
    status_code: int | None
    latency_ms: float
    error: str | None
    attempted_at: datetime
    state: DeliveryState  # the delivery's state once this attempt was made
    next_attempt_at: datetime | None = None
    # The answer's body as text, its first 64 KiB (None when no answer came), and whether
    # more came than that.
    response_body: str | None = None
    response_truncated: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def view(self) -> dict[str, Any]:
        """The documented shape of one entry of the deliveries log."""
        return {
            "delivery_id": self.delivery_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "attempt": self.attempt,
            "trigger": self.trigger.value,
            "success": self.succeeded,
            "status_code": self.status_code,
            "latency_ms": round(self.latency_ms, 1),
            "error": self.error,
            "attempted_at": _iso(self.attempted_at),
            "state": self.state.value,
            "next_attempt_at": _iso(self.next_attempt_at),
            "response_body": self.response_body,
            "response_truncated": self.response_truncated,
        }

    def to_json(self) -> str:
        return orjson.dumps(self.view()).decode()

    @classmethod
    def from_json(cls, raw: str | bytes) -> AttemptRecord:
        data = orjson.loads(raw)
        next_at = data.get("next_attempt_at")
        return cls(
            delivery_id=data["delivery_id"],
            event_id=data["event_id"],
            event_type=data["event_type"],
            attempt=int(data["attempt"]),
            trigger=Trigger(data["trigger"]),
            status_code=data["status_code"],
            latency_ms=float(data["latency_ms"]),
            error=data["error"],
            attempted_at=datetime.fromisoformat(data["attempted_at"]),
            state=DeliveryState(data["state"]),
            next_attempt_at=datetime.fromisoformat(next_at) if next_at else None,
            # Entries recorded before the body was kept have neither key.
            response_body=data.get("response_body"),
            response_truncated=bool(data.get("response_truncated", False)),
        )
