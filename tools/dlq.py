"""python -m tools.dlq replay: puts dead-lettered messages back on the topic they came from.

Each DLQ record names its source topic in the `x-dlq-source-topic` header (shared/bus.py); a
replay publishes its value again on that topic under the same key (so on the partition the
original had) with its other headers, and marks it `x-dlq-replayed-from: <partition>@<offset>`.

The DLQ is read by a consumer group of its own (`<KAFKA_CLIENT_ID_PREFIX>-dlq-replay`, or
`--group`), from the earliest record it has not passed yet up to the end the DLQ had when the
run began. The group's offset is committed after each record is replayed (once the broker
has the copy), so a second run does not replay a record again, and a run that stops half way
goes on where it stopped. A record the filters (`--topic`, `--since`) leave out, or one without
a source topic, is passed over for good by that group: another `--group` reads the DLQ from
its start again. `--dry-run` shows what would be replayed and commits nothing.

    python -m tools.dlq replay [--topic T] [--since 2h|2026-12-03T10:00:00Z] [--limit N]
                               [--group G] [--dry-run]

The connection comes from the services' Kafka settings (KAFKA_BOOTSTRAP_SERVERS, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, TextIO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from shared import kafka_security
from shared.bus import DLQ_CONSUMER_HEADER, DLQ_ERROR_HEADER, DLQ_TOPIC_HEADER
from shared.partitioner import KeyPartitioner
from shared.settings import KafkaSettings
from shared.topics import CALLS_DLQ

REPLAYED_HEADER: Final = "x-dlq-replayed-from"
_DLQ_HEADERS: Final = frozenset({DLQ_ERROR_HEADER, DLQ_TOPIC_HEADER, DLQ_CONSUMER_HEADER})
_DURATION: Final = re.compile(r"(?P<amount>\d+)(?P<unit>[smhdw])")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# How long one fetch waits for records before the run checks whether it reached the end.
_FETCH_MS: Final = 500

Headers = Sequence[tuple[str, bytes]]


# --- The rules: which records to replay, and how ------------------------------------------------


def parse_since(text: str, now: datetime) -> datetime:
    """`--since`: a duration back from `now` (`90s`, `30m`, `2h`, `7d`, `1w`) or an RFC 3339
    instant (`2026-12-03T10:00:00Z`; a time without an offset is read as UTC)."""
    duration = _DURATION.fullmatch(text.strip())
    if duration is not None:
        return now - timedelta(**{_UNITS[duration["unit"]]: int(duration["amount"])})
    try:
        instant = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--since takes a duration (30m, 2h, 7d) or an RFC 3339 time, not {text!r}"
        ) from exc
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


def header(headers: Headers, name: str) -> str | None:
    """A header's value as text, or None when the record lacks it."""
    for key, value in headers:
        if key == name:
            return value.decode("utf-8", "replace")
    return None


@dataclass(frozen=True, slots=True)
class Selection:
    topic: str | None = None
    since: datetime | None = None


def why_not_replayed(record_headers: Headers, timestamp_ms: int, wanted: Selection) -> str | None:
    """Why a DLQ record is passed over, or None when it is to be replayed."""
    source = header(record_headers, DLQ_TOPIC_HEADER)
    if not source:
        return "no source topic"
    if wanted.topic is not None and source != wanted.topic:
        return f"from {source}"
    if wanted.since is not None and timestamp_ms < wanted.since.timestamp() * 1000:
        return "dead-lettered before --since"
    return None


def replay_headers(record_headers: Headers, partition: int, offset: int) -> list[tuple[str, bytes]]:
    """The headers of the copy: the original's, without the DLQ's own, marked as replayed."""
    kept = [(key, value) for key, value in record_headers if key not in _DLQ_HEADERS]
    kept = [(key, value) for key, value in kept if key != REPLAYED_HEADER]
    return [*kept, (REPLAYED_HEADER, f"{partition}@{offset}".encode())]


# --- The run ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Report:
    replayed: int = 0
    passed_over: int = 0


def default_group(settings: KafkaSettings) -> str:
    return f"{settings.client_id_prefix}-dlq-replay"


def _describe(record: ConsumerRecord[bytes, bytes]) -> str:
    headers = record.headers or ()
    key = record.key.decode("utf-8", "replace") if record.key is not None else "-"
    return (
        f"{record.partition}@{record.offset} {header(headers, DLQ_TOPIC_HEADER) or '?'} "
        f"key={key} consumer={header(headers, DLQ_CONSUMER_HEADER) or '?'} "
        f"error={header(headers, DLQ_ERROR_HEADER) or '?'}"
    )


async def replay(
    settings: KafkaSettings,
    wanted: Selection = Selection(),
    *,
    limit: int | None = None,
    group: str | None = None,
    dry_run: bool = False,
    out: TextIO = sys.stdout,
) -> Report:
    """Replays the DLQ records `wanted` selects, up to `limit`, onto their source topics."""
    group_id = group or default_group(settings)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id_prefix}-dlq-replay-{uuid.uuid4().hex[:8]}",
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        **kafka_security.client_options(settings),
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id_prefix}-dlq-replay",
        acks="all",
        enable_idempotence=settings.enable_idempotence,
        partitioner=KeyPartitioner(),
        **kafka_security.client_options(settings),
    )
    report = Report()
    await consumer.start()
    try:
        if CALLS_DLQ not in await consumer.topics():
            raise SystemExit(f"{CALLS_DLQ}: no such topic")
        numbers = sorted(consumer.partitions_for_topic(CALLS_DLQ) or ())
        partitions = [TopicPartition(CALLS_DLQ, number) for number in numbers]
        # Read alone, by assignment: no rebalance in the middle of a run.
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        if not dry_run:
            await producer.start()
        try:
            await _run(consumer, producer, ends, wanted, limit, dry_run, report, out)
        finally:
            if not dry_run:
                await producer.stop()
    finally:
        await consumer.stop()
    verb = "would replay" if dry_run else "replayed"
    print(f"{verb} {report.replayed}, passed over {report.passed_over}", file=out)
    return report


async def _run(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    ends: dict[TopicPartition, int],
    wanted: Selection,
    limit: int | None,
    dry_run: bool,
    report: Report,
    out: TextIO,
) -> None:
    left = {tp: end for tp, end in ends.items() if end > 0}
    while left:
        for tp in list(left):
            if await consumer.position(tp) >= left[tp]:
                del left[tp]
        if not left:
            return
        batches = await consumer.getmany(*left, timeout_ms=_FETCH_MS)
        for tp, records in batches.items():
            for record in records:
                if record.offset >= ends[tp]:
                    break
                if limit is not None and report.replayed >= limit:
                    return
                headers = list(record.headers or ())
                reason = why_not_replayed(headers, record.timestamp, wanted)
                if reason is not None:
                    report.passed_over += 1
                    print(f"passed over {_describe(record)} ({reason})", file=out)
                elif dry_run:
                    report.replayed += 1
                    print(f"would replay {_describe(record)}", file=out)
                else:
                    source = header(headers, DLQ_TOPIC_HEADER) or ""
                    await producer.send_and_wait(
                        source,
                        record.value,
                        key=record.key,
                        headers=replay_headers(headers, record.partition, record.offset),
                    )
                    report.replayed += 1
                    print(f"replayed {_describe(record)}", file=out)
                if not dry_run:
                    await consumer.commit({tp: record.offset + 1})


def main(argv: Sequence[str] | None = None) -> int:
    summary = (__doc__ or "").split("\n", 1)[0]
    parser = argparse.ArgumentParser(prog="python -m tools.dlq", description=summary)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("replay", help="put dead-lettered messages back on their topics")
    run.add_argument("--topic", help="only messages that came from this topic")
    run.add_argument(
        "--since", help="only messages dead-lettered since then: 30m, 2h, 7d or an RFC 3339 time"
    )
    run.add_argument("--limit", type=int, help="replay at most this many")
    run.add_argument("--group", help="the consumer group that remembers how far the DLQ was read")
    run.add_argument("--dry-run", action="store_true", help="show what would be replayed")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    try:
        since = parse_since(args.since, datetime.now(UTC)) if args.since else None
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    wanted = Selection(topic=args.topic, since=since)
    asyncio.run(
        replay(KafkaSettings(), wanted, limit=args.limit, group=args.group, dry_run=args.dry_run)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
