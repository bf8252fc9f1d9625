"""python -m tools.dlq replay against the real broker: a dead-lettered message goes back on
its topic under its key, once."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import Sequence

import pytest
from aiokafka import ConsumerRecord

from shared.bus import DLQ_TOPIC_HEADER, create_broker, send_to_dlq
from shared.partitioner import partition_of
from shared.settings import KafkaSettings
from shared.topics import CALLS_EVENTS, CALLS_REQUESTED
from tests.conftest import KafkaServer
from tests.support import read_topic
from tools.dlq import REPLAYED_HEADER, Selection, replay

pytestmark = pytest.mark.integration

Records = list[ConsumerRecord[bytes, bytes]]


async def _dead_letter(
    settings: KafkaSettings, records: Sequence[tuple[str, bytes, bytes]]
) -> None:
    """Parks messages on the DLQ as a consumer does: (source topic, key, value)."""
    broker = create_broker(settings, "dlq-test")
    await broker.start()
    try:
        for topic, key, value in records:
            await send_to_dlq(broker, value, key, topic, "scheduler", "unhandled error: boom")
    finally:
        await broker.stop()


def _with_key(records: Records, key: bytes) -> Records:
    return [record for record in records if record.key == key]


async def test_a_dead_lettered_message_is_replayed_onto_its_topic_once(
    kafka_server: KafkaServer, unique: str
) -> None:
    settings = kafka_server.settings()
    key = f"campaign-{unique}:+12125550123".encode()
    value = b'{"campaign_id": "c", "to": "+12125550123"}'
    await _dead_letter(
        settings, [(CALLS_REQUESTED, key, value), (CALLS_EVENTS, b"call-1", b'{"type": "x"}')]
    )

    out = io.StringIO()
    group = f"replay-{unique}"
    report = await replay(settings, Selection(topic=CALLS_REQUESTED), group=group, out=out)
    assert (report.replayed, report.passed_over) == (1, 1), out.getvalue()

    records = await read_topic_until(kafka_server.bootstrap, CALLS_REQUESTED, key)
    [copy] = _with_key(records, key)
    assert copy.value == value
    # Under its key, so on the partition the original had; the DLQ's own headers are gone.
    assert copy.partition == partition_of(key, settings.partitions)
    headers = dict(copy.headers)
    assert DLQ_TOPIC_HEADER not in headers
    assert headers[REPLAYED_HEADER].decode().count("@") == 1

    # The group remembers: a second run replays nothing, and nothing more arrives.
    again = await replay(settings, group=group, out=io.StringIO())
    assert (again.replayed, again.passed_over) == (0, 0)
    records = await read_topic_until(kafka_server.bootstrap, CALLS_REQUESTED, key)
    assert len(_with_key(records, key)) == 1


async def read_topic_until(bootstrap: str, topic: str, key: bytes) -> Records:
    return await read_topic(bootstrap, topic, lambda records: bool(_with_key(records, key)))


async def _command(bootstrap: str, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tools.dlq",
        "replay",
        *args,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, output.decode()
    return output.decode()


async def test_the_command_replays_up_to_its_limit_and_a_dry_run_commits_nothing(
    kafka_server: KafkaServer, unique: str
) -> None:
    settings = kafka_server.settings()
    keys = [f"{unique}-{index}".encode() for index in range(3)]
    await _dead_letter(settings, [(CALLS_EVENTS, key, b"{}") for key in keys])
    group = ("--group", f"replay-{unique}")

    assert "would replay 3, passed over 0" in await _command(
        kafka_server.bootstrap, "--dry-run", *group
    )
    assert "replayed 2, passed over 0" in await _command(
        kafka_server.bootstrap, "--limit", "2", *group
    )
    assert "replayed 1, passed over 0" in await _command(kafka_server.bootstrap, *group)
    assert "replayed 0, passed over 0" in await _command(kafka_server.bootstrap, *group)
    for key in keys:
        records = await read_topic_until(kafka_server.bootstrap, CALLS_EVENTS, key)
        assert len(_with_key(records, key)) == 1
