"""A dialer copy that stops, gracefully or not, before or while a carrier takes a call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from aiokafka import ConsumerRecord

from shared.events import CallEvent, CallEventType
from shared.topics import CALLS_EVENTS
from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.fake_carrier import FakeCarrier, dialer_env
from tests.stack import Stack
from tests.support import Api, read_topic

pytestmark = pytest.mark.fault
Records = list[ConsumerRecord[bytes, bytes]]


def _events(records: Records, call_id: str) -> list[CallEvent]:
    events = (CallEvent.model_validate_json(r.value) for r in records)
    return [e for e in events if e.call_id == call_id]


def _has(call_id: str, *types: CallEventType) -> Callable[[Records], bool]:
    def check(records: Records) -> bool:
        return set(types) <= {e.type for e in _events(records, call_id)}

    return check


async def _call(api: Api, campaign_id: str, to: str) -> str:
    status, body = await api.call("POST", f"/campaigns/{campaign_id}/call", {"to": to})
    assert status == 201, body
    return str(body["campaign_call"]["id"])


@pytest.mark.redis_backends("single")
async def test_a_stopping_dialer_takes_no_new_call_and_finishes_the_ones_it_has(
    kafka_server: KafkaServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    stack = Stack(
        kafka_server.bootstrap,
        redis_server.url,
        tmp_path,
        extra_env={"DIALER_SANDBOX_RING_MS": "3000", "DIALER_SANDBOX_TALK_MS": "1000"},
    ).start(["ingest", "scheduler", "dialer"])
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, stack.base_url)
            campaign = await api.active_campaign(max_retries=0)
            first = await _call(api, campaign["id"], "+12125550101")
            await read_topic(
                kafka_server.bootstrap, CALLS_EVENTS, _has(first, CallEventType.STARTED)
            )
            (stopping,) = stack.processes["dialer"]
            assert stopping.process is not None
            stopping.process.terminate()
            second = await _call(api, campaign["id"], "+12125550102")

            async def exited() -> bool:
                return not stopping.alive()

            await wait_until(exited, within=30)
            records = await read_topic(
                kafka_server.bootstrap, CALLS_EVENTS, _has(first, CallEventType.COMPLETED)
            )
            # The first call was let finish; the second was never taken by the stopping copy.
            assert CallEventType.STARTED not in {e.type for e in _events(records, second)}
            stack.start_one("dialer")
            records = await read_topic(
                kafka_server.bootstrap, CALLS_EVENTS, _has(second, CallEventType.COMPLETED)
            )
        assert [e.attempt for e in _events(records, second) if e.type is CallEventType.STARTED] == [
            1
        ]
    finally:
        stack.stop()


@pytest.mark.redis_backends("single")
async def test_a_dialer_killed_while_the_carrier_takes_the_call_ends_the_attempt_lost(
    kafka_server: KafkaServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Whether the carrier rang the number is unknown: the attempt ends `dialer_lost` once its
    slot lapses, and the campaign's retry policy applies."""
    carrier = await FakeCarrier().start()
    carrier.create_delay_seconds = 60
    stack = Stack(
        kafka_server.bootstrap,
        redis_server.url,
        tmp_path,
        extra_env=dialer_env(
            carrier,
            "http://127.0.0.1:9",
            DIAL_SLOT_LEASE_MS="2000",
            SCHEDULER_REAP_INTERVAL_MS="200",
        ),
    ).start(["ingest", "scheduler", "dialer"])
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, stack.base_url)
            campaign = await api.active_campaign(max_retries=1)
            call_id = await _call(api, campaign["id"], "+12125550101")
            await carrier.wait_for(lambda: len(carrier.creates) == 1, within=30)
            (dialer,) = stack.processes["dialer"]
            dialer.kill()
            records = await read_topic(
                kafka_server.bootstrap,
                CALLS_EVENTS,
                _has(call_id, CallEventType.FAILED, CallEventType.RETRY_SCHEDULED),
                within=30,
            )
        (failed,) = [e for e in _events(records, call_id) if e.type is CallEventType.FAILED]
        assert failed.error == "dialer_lost"
        assert failed.will_retry
    finally:
        stack.stop()
        await carrier.stop()
