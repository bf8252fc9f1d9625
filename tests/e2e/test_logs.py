"""Every service logs one JSON object per line, with the call it is about and never a full
phone number; ingest writes an access line per request with the route's template."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from devstack.processes import SERVICES
from shared.topics import CALLS_EVENTS
from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.stack import Stack
from tests.support import Api, Receiver

pytestmark = pytest.mark.e2e

NUMBER = "+12125550101"  # the sandbox completes a number ending in 1
OWN_KEYS = {"ts", "level", "service", "instance", "logger", "event"}
CALL_ROUTE = "/api/v1/campaigns/{campaign_id}/call"
ONE_CALL_ROUTE = "/api/v1/campaigns/{campaign_id}/calls/{call_id}"


@pytest.fixture
def stack(kafka_server: KafkaServer, redis_server: RedisServer, tmp_path: Path) -> Iterator[Stack]:
    running = Stack(
        kafka_server.bootstrap, redis_server.url, tmp_path, extra_env={"LOG_JSON": "true"}
    ).start()
    yield running
    running.stop()


def entries(stack: Stack, name: str) -> list[dict[str, Any]]:
    """Every line of the service's log, each parsed as one JSON object."""
    lines = stack.log_of(name, 0).read_text(errors="replace").splitlines()
    parsed = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            raise AssertionError(f"{name} wrote a line that is not JSON: {line!r}") from None
        assert isinstance(entry, dict), line
        parsed.append(entry)
    return parsed


def every_log(folder: Path) -> dict[str, str]:
    return {path.name: path.read_text(errors="replace") for path in folder.glob("*.log")}


async def publish(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


async def test_logs_are_json_lines_naming_the_call_with_its_number_masked(
    stack: Stack, kafka_server: KafkaServer, tmp_path: Path
) -> None:
    # The webhook refuses its first delivery, echoing the number: the notifier logs that.
    receiver = await Receiver(
        statuses=[500], answer_body=f'{{"error": "no such lead {NUMBER}"}}'.encode()
    ).start()
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, stack.base_url)
            campaign = await api.active_campaign()
            await api.webhook(campaign["id"], receiver.url)
            status, body = await api.call(
                "POST", f"/campaigns/{campaign['id']}/call", {"to": NUMBER}
            )
            assert status == 201, body
            call_id = body["campaign_call"]["id"]

            async def completed() -> bool:
                return bool(receiver.of_type("campaign_call.completed"))

            try:
                await wait_until(completed, within=60)
            except AssertionError:
                raise AssertionError(stack.logs_text()) from None
            status, _ = await api.call("GET", f"/campaigns/{campaign['id']}/calls/{call_id}")
            assert status == 200
    finally:
        await receiver.stop()

    # A malformed event with the number in it: its validation error quotes the whole input.
    await publish(kafka_server.bootstrap, CALLS_EVENTS, orjson.dumps({"to": NUMBER}))

    async def both_logged() -> bool:
        events = [entry["event"] for entry in entries(stack, "notifier")]
        return any(event.startswith("attempt 1 of delivery") for event in events) and any(
            "sent to the DLQ" in event for event in events
        )

    await wait_until(both_logged, within=30)
    stack.stop()  # every line written and flushed, the ones of stopping too

    for name in SERVICES:
        logged = entries(stack, name)
        assert logged, name
        for entry in logged:
            assert entry.keys() >= OWN_KEYS, (name, entry)
            assert entry["service"] == name
            assert entry["instance"] == f"{name}-0"
            assert "trace_id" not in entry  # nothing sets one yet

    ingest = entries(stack, "ingest")
    access = [entry for entry in ingest if entry["logger"] == "ingest.access"]
    (made,) = [entry for entry in access if entry["route"] == CALL_ROUTE]
    assert made["method"] == "POST"
    assert made["status"] == 201
    assert made["duration_ms"] >= 0
    (read,) = [entry for entry in access if entry["route"] == ONE_CALL_ROUTE]
    assert read["status"] == 200
    assert not any(campaign["id"] in entry["event"] for entry in access)

    # The refused delivery's line names the call it was for.
    (refused,) = [
        entry
        for entry in entries(stack, "notifier")
        if entry["event"].startswith("attempt 1 of delivery")
    ]
    assert refused["call_id"] == call_id
    assert refused["campaign_id"] == campaign["id"]
    assert refused["status_code"] == 500

    (parked,) = [
        entry for entry in entries(stack, "notifier") if "sent to the DLQ" in entry["event"]
    ]
    assert "+*******0101" in parked["event"]  # the number reached the log, masked

    # Not one log holds the number whole, in any form it was given or stored in.
    logs = every_log(tmp_path)
    assert logs.keys() == {f"{name}-0.log" for name in SERVICES}
    for name, text in logs.items():
        assert NUMBER[1:] not in text, name
        assert NUMBER[2:] not in text, name
