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
    """The producer as the publisher sees it: lots of records handed over, failures on demand."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.lots: list[int] = []
        self.refuse: set[str] = set()
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()

    async def hand_over(self, topic: str, records: list[tuple[bytes, bytes]]) -> None:
        self.entered.set()
        await self.gate.wait()
        ids = {CallRequested.model_validate_json(value).call_id for _, value in records}
        if ids & self.refuse:
            raise RuntimeError("refused")
        self.lots.append(len(records))
        self.sent.extend((topic, key, value) for key, value in records)


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


def _publisher(sender: Sender, backlog: int = 100, linger: float = 0.0) -> CallRequestPublisher:
    return CallRequestPublisher(cast(KafkaBroker, None), cast(BulkSender, sender), backlog, linger)


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


async def test_a_refused_lot_is_logged_and_the_next_ones_still_go(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender = Sender()
    sender.refuse.add("call-1")
    publisher = _publisher(sender)
    publisher.start()
    publisher.hand_on(_request("call-0"))

    async def first_sent() -> bool:
        return len(sender.sent) == 1

    await wait_until(first_sent, within=5)
    publisher.hand_on(_request("call-1"))  # alone in its lot: refused
    await wait_until(lambda: _logged(caplog), within=5)
    publisher.hand_on(_request("call-2"))

    async def third_sent() -> bool:
        return len(sender.sent) == 2

    await wait_until(third_sent, within=5)
    await publisher.stop()
    assert _ids(sender) == ["call-0", "call-2"]


async def _logged(caplog: pytest.LogCaptureFixture) -> bool:
    return "could not be handed to the producer" in caplog.text


async def test_what_waits_goes_over_in_one_lot() -> None:
    sender = Sender()
    sender.gate.clear()  # the producer is busy with an earlier lot
    publisher = _publisher(sender)
    publisher.start()
    publisher.hand_on(_request("call-0"))
    await asyncio.wait_for(sender.entered.wait(), 5)  # the feeder took call-0 and waits
    for i in range(1, 5):
        publisher.hand_on(_request(f"call-{i}", f"+1212555010{i}"))

    sender.gate.set()

    async def all_sent() -> bool:
        return len(sender.sent) == 5

    await wait_until(all_sent, within=5)
    await publisher.stop()
    assert _ids(sender) == [f"call-{i}" for i in range(5)]
    assert sender.lots == [1, 4]


async def test_requests_handed_on_within_the_linger_go_over_as_one_lot() -> None:
    sender = Sender()
    publisher = _publisher(sender, linger=0.5)
    publisher.start()
    for i in range(5):
        publisher.hand_on(_request(f"call-{i}", f"+1212555010{i}"))
        await asyncio.sleep(0)  # one loop turn each: without the linger, a lot per turn

    async def all_sent() -> bool:
        return len(sender.sent) == 5

    await wait_until(all_sent, within=5)
    await publisher.stop()
    assert sender.lots == [5]
    assert _ids(sender) == [f"call-{i}" for i in range(5)]


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
