"""A fetched batch is handled by key: one key's records in order, different keys side by side,
at most `concurrency` of them at once, every record once."""

from __future__ import annotations

import asyncio
from typing import cast

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker

from shared.bus import consume_batch, in_waves

TOPIC = "campaign-calls.due"


def record(offset: int, key: bytes | None) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=TOPIC,
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=str(offset).encode(),
        checksum=None,
        serialized_key_size=-1 if key is None else len(key),
        serialized_value_size=len(str(offset)),
        headers=(),
    )


async def test_keys_run_side_by_side_up_to_the_concurrency_and_each_in_order() -> None:
    keys = [b"a", b"b", b"a", None, b"c", b"b", b"a", None, b"d", b"e", b"c", b"f"]
    records = [record(offset, key) for offset, key in enumerate(keys)]
    handled: list[tuple[bytes | None, int]] = []
    running = 0
    most = 0

    async def handle(one: ConsumerRecord[bytes, bytes]) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        # Two turns of the loop: the others get theirs while this one is under way.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        handled.append((one.key, one.offset))
        running -= 1

    # The broker is reached only to park a record whose handler failed: none does here.
    await consume_batch(cast(KafkaBroker, None), records, TOPIC, "test", handle, concurrency=3)

    assert sorted(offset for _, offset in handled) == list(range(len(keys)))
    for key in {k for k in keys if k is not None}:
        of_key = [offset for k, offset in handled if k == key]
        assert of_key == sorted(of_key), key
    assert most == 3


async def test_fewer_keys_than_the_concurrency() -> None:
    records = [record(offset, b"only") for offset in range(4)]
    handled: list[int] = []

    async def handle(one: ConsumerRecord[bytes, bytes]) -> None:
        await asyncio.sleep(0)
        handled.append(one.offset)

    await consume_batch(cast(KafkaBroker, None), records, TOPIC, "test", handle, concurrency=64)

    assert handled == [0, 1, 2, 3]


async def test_an_empty_batch() -> None:
    async def handle(one: ConsumerRecord[bytes, bytes]) -> None:
        raise AssertionError("no record to handle")

    await consume_batch(cast(KafkaBroker, None), [], TOPIC, "test", handle, concurrency=8)


def test_a_batch_in_waves_keeps_each_keys_items_in_order_one_per_wave() -> None:
    keyed = [(b"a", 1), (b"b", 2), (b"a", 3), (None, 4), (b"a", 5), (b"b", 6), (None, 7)]

    waves = in_waves(keyed)

    assert waves == [[1, 2, 4, 7], [3, 6], [5]]
    assert in_waves([]) == []
