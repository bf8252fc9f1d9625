"""The ingest's hand-off of accepted requests: answered at once, fed to the producer in order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import cast

import pytest
from faststream.kafka import KafkaBroker

from services.ingest.adapters.requests_kafka import CallRequestPublisher
from shared.bus import BulkSender
from shared.events import CallRequested
from shared.models import Call
from shared.topics import CALLS_REQUESTED, requested_key
from tests.conftest import wait_until


class Sender:
    """The producer as the publisher sees it: records handed to it, and failures on demand."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.refuse: set[str] = set()
        self.gate = asyncio.Event()
        self.gate.set()

    async def send_soon(self, topic: str, key: bytes, value: bytes) -> None:
        await self.gate.wait()
        if CallRequested.model_validate_json(value).call_id in self.refuse:
            raise RuntimeError("refused")
        self.sent.append((topic, key, value))


def _request(call_id: str, to: str = "+12125550123") -> Call:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    return Call(
        id=call_id,
        campaign_id="c1",
        environment_id="env-a",
        to=to,
        scheduled_at=now,
        scheduling_reason="immediate",
        created_at=now,
        updated_at=now,
    )


def _publisher(sender: Sender, backlog: int = 100) -> CallRequestPublisher:
    return CallRequestPublisher(cast(KafkaBroker, None), cast(BulkSender, sender), backlog)


def _ids(sender: Sender) -> list[str | None]:
    return [CallRequested.model_validate_json(value).call_id for _, _, value in sender.sent]


async def test_requests_are_fed_in_the_order_they_were_handed_on() -> None:
    sender = Sender()
    publisher = _publisher(sender)
    publisher.start()
    for i in range(5):
        publisher.hand_on(_request(f"call-{i}", f"+1212555010{i}"))

    async def all_sent() -> bool:
        return len(sender.sent) == 5

    await wait_until(all_sent, within=5)
    await publisher.stop()
    assert _ids(sender) == [f"call-{i}" for i in range(5)]
    assert sender.sent[0][:2] == (CALLS_REQUESTED, requested_key("c1", "+12125550100"))
    assert CallRequested.model_validate_json(sender.sent[0][2]).accepted


async def test_a_refused_record_is_skipped_and_the_rest_still_go(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender = Sender()
    sender.refuse.add("call-1")
    publisher = _publisher(sender)
    publisher.start()
    for i in range(3):
        publisher.hand_on(_request(f"call-{i}"))

    async def two_sent() -> bool:
        return len(sender.sent) == 2

    await wait_until(two_sent, within=5)
    await publisher.stop()
    assert _ids(sender) == ["call-0", "call-2"]
    assert "could not be handed to the producer" in caplog.text


async def test_past_the_backlog_requests_are_left_to_the_scheduler() -> None:
    sender = Sender()
    sender.gate.clear()  # the broker is away
    publisher = _publisher(sender, backlog=3)
    publisher.start()
    for i in range(5):
        publisher.hand_on(_request(f"call-{i}"))

    assert publisher.dropped == 2
    sender.gate.set()
    await publisher.stop()
    assert _ids(sender) == ["call-0", "call-1", "call-2"]


async def test_stop_sends_what_is_still_waiting() -> None:
    sender = Sender()
    publisher = _publisher(sender)
    publisher.start()
    publisher.hand_on(_request("call-0"))
    publisher.hand_on(_request("call-1"))

    await publisher.stop()

    assert _ids(sender) == ["call-0", "call-1"]
