"""Kafka plumbing shared by the services: broker factory, topic creation and the DLQ."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final, Literal, TypedDict, TypeVar

from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.producer.message_accumulator import BatchBuilder
from faststream import AckPolicy
from faststream._internal.types import CustomCallable
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from faststream.message import StreamMessage

from shared import kafka_security, tracing
from shared.events import CallEvent
from shared.faults import TryAgain as TryAgain
from shared.faults import is_transient
from shared.metrics import parked_on_dlq
from shared.observability import FIELDS
from shared.partitioner import KeyPartitioner, partition_of
from shared.settings import KafkaSettings
from shared.topics import ALL_TOPICS, CALLS_DLQ, CALLS_EVENTS, call_key

log = logging.getLogger(__name__)

T = TypeVar("T")

DLQ_ERROR_HEADER = "x-dlq-error"
DLQ_TOPIC_HEADER = "x-dlq-source-topic"
DLQ_CONSUMER_HEADER = "x-dlq-consumer"


# A transient failure is retried in place, the pause doubling from the first to the most;
# after TRANSIENT_RETRY_BUDGET_S the batch is handed back unacknowledged instead (the consumer
# reads it again from the same offsets), so a long outage never keeps one poll open for good.
TRANSIENT_BACKOFF_S = 0.1
TRANSIENT_BACKOFF_MAX_S = 2.0
TRANSIENT_RETRY_BUDGET_S = 30.0


async def consume_guarded(
    broker: KafkaBroker,
    body: bytes,
    key: bytes | None,
    topic: str,
    consumer: str,
    handle: Callable[[], Awaitable[None]],
) -> None:
    """Runs a handler so that one bad message never blocks its partition, and a passing
    failure never loses one.

    A transient failure (`shared.faults.is_transient`: Redis or Kafka away, Redis out of
    memory, read-only, loading or busy) is retried with a growing pause; past the retry
    budget it is raised, so the batch is not acknowledged and is delivered again. It never
    reaches the DLQ. Any other failure is a defect in the message or the code: the message is
    parked on the DLQ with the error, and the consumer moves on.
    """
    failure = await retrying_transient(handle, topic)
    if failure is not None:
        log.error(
            "unexpected failure consuming %s; parking the message",
            topic,
            exc_info=failure,
        )
        await send_to_dlq(broker, body, key, topic, consumer, f"unhandled error: {failure!r}")


async def retrying_transient(run: Callable[[], Awaitable[None]], topic: str) -> Exception | None:
    """Runs `run`, again after a growing pause while it fails transiently
    (`shared.faults.is_transient`); a transient failure that outlasts TRANSIENT_RETRY_BUDGET_S
    is raised. Returns any other failure (None when it ran through): what to do with it is the
    caller's."""
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + TRANSIENT_RETRY_BUDGET_S
    pause = TRANSIENT_BACKOFF_S
    while True:
        try:
            await run()
            return None
        except Exception as exc:
            if not is_transient(exc):
                return exc
            log.warning(
                "transient failure consuming %s (%r); retrying in %.1f s", topic, exc, pause
            )
            await asyncio.sleep(pause)
            if loop.time() >= give_up_at:
                raise
            pause = min(pause * 2, TRANSIENT_BACKOFF_MAX_S)


async def consume_batch(
    broker: KafkaBroker,
    records: Sequence[ConsumerRecord[bytes, bytes]],
    topic: str,
    consumer: str,
    handle: Callable[[ConsumerRecord[bytes, bytes]], Awaitable[None]],
    concurrency: int,
) -> None:
    """Handles a fetched batch: records of one key in order, different keys side by side.

    Keys carry the ordering that matters (one number in one campaign, one call), so records
    sharing a key run one after another; the rest run concurrently, `concurrency` at a time.
    A transient failure that outlasts `consume_guarded`'s retries cancels the batch and raises,
    so the whole batch is delivered again; every handler is idempotent, so the records already
    done are no-ops the second time.
    A batch done is logged in one line (`log_batch`).
    """
    groups: dict[bytes | None, list[ConsumerRecord[bytes, bytes]]] = {}
    for index, record in enumerate(records):
        # Records without a key promise no order: each is a group of its own.
        group_key = record.key if record.key is not None else f"\0{index}".encode()
        groups.setdefault(group_key, []).append(record)
    # `concurrency` workers take the groups in turn: a task per worker, not per group.
    waiting = iter(groups.values())

    async def work() -> None:
        for group in waiting:
            for record in group:
                await consume_guarded(
                    broker,
                    record.value or b"",
                    record.key,
                    topic,
                    consumer,
                    functools.partial(handle, record),
                )

    async with asyncio.TaskGroup() as tasks:
        for _ in range(min(concurrency, len(groups))):
            tasks.create_task(work())
    log_batch(records, topic)


def in_waves(keyed: Iterable[tuple[bytes | None, T]]) -> list[list[T]]:
    """Items of a batch in waves: the first item of each key, then the second, and so on, so
    that each wave holds at most one item of a key and a key's items keep their order. An item
    without a key (None) promises no order: it goes in the first wave."""
    waves: list[list[T]] = []
    seen: dict[bytes, int] = {}
    for key, item in keyed:
        wave = 0
        if key is not None:
            wave = seen.get(key, 0)
            seen[key] = wave + 1
        if wave == len(waves):
            waves.append([])
        waves[wave].append(item)
    return waves


async def guarded_wave(
    broker: KafkaBroker,
    topic: str,
    consumer: str,
    wave: Callable[[], Awaitable[None]],
    records: Sequence[ConsumerRecord[bytes, bytes]],
    one: Callable[[ConsumerRecord[bytes, bytes]], Awaitable[None]],
) -> None:
    """Runs a wave of a batch with `consume_guarded`'s retries of transient failures (raised
    past the retry budget, so the batch is delivered again); on any other failure, the wave's
    `records` one by one (`one`), each under `consume_guarded`, so only a record at fault goes
    to the DLQ. Every step is idempotent, so what the failed wave did is safe to do again."""
    failure = await retrying_transient(wave, topic)
    if failure is None:
        return
    log.warning("a wave of %d records of %s failed (%r); one by one", len(records), topic, failure)
    for record in records:
        await consume_guarded(
            broker,
            record.value or b"",
            record.key,
            topic,
            consumer,
            functools.partial(one, record),
        )


def log_batch(records: Sequence[ConsumerRecord[bytes, bytes]], topic: str) -> None:
    """One line per handled batch: which copy (the log's instance) handled which offsets."""
    if not records or not log.isEnabledFor(logging.INFO):
        return
    spans: dict[int, list[int]] = {}
    for record in records:
        span = spans.get(record.partition)
        if span is None:
            spans[record.partition] = [record.offset, record.offset]
        else:
            span[0] = min(span[0], record.offset)
            span[1] = max(span[1], record.offset)
    log.info(
        "handled %d records of %s: %s",
        len(records),
        topic,
        " ".join(f"{p}@{first}-{last}" for p, (first, last) in sorted(spans.items())),
        extra={
            FIELDS: {
                "event": "batch_handled",
                "topic": topic,
                "records": len(records),
                "offsets": {str(p): span for p, span in sorted(spans.items())},
            }
        },
    )


def records_of(message: KafkaMessage) -> tuple[ConsumerRecord[bytes, bytes], ...]:
    """The consumer records behind a batch message."""
    batch = message.raw_message
    if not isinstance(batch, tuple):
        raise TypeError("one message was delivered where a batch was expected")
    return batch


async def undecoded(message: StreamMessage[Any]) -> None:
    """A batch subscriber's decoder for a handler that reads the raw records (`records_of`):
    FastStream's own makes a message of every record and decodes its body as JSON first, for a
    body nobody reads."""
    return None


class BatchConsumerOptions(TypedDict):
    batch: Literal[True]
    max_records: int
    auto_offset_reset: Literal["earliest"]
    session_timeout_ms: int
    heartbeat_interval_ms: int
    fetch_max_wait_ms: int
    batch_timeout_ms: int
    ack_policy: AckPolicy
    decoder: CustomCallable


def batch_consumer(settings: KafkaSettings) -> BatchConsumerOptions:
    """Options every consumer group shares.

    Batches are acknowledged after every record in them is stored (NACK_ON_ERROR); a transient
    failure seeks back, so the batch is processed again. A new group starts at the earliest
    offset, so nothing published before it first joined is skipped.
    """
    return BatchConsumerOptions(
        batch=True,
        max_records=settings.batch_max_records,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        # FastStream's wait for a batch, and its pause after an empty one (200 ms each by
        # default, on every hop of a call): the fetch's wait is long enough.
        batch_timeout_ms=settings.fetch_max_wait_ms,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        # Handlers read the raw records (`records_of`).
        decoder=undecoded,
    )


_JSON_HEADERS: Final = [("content-type", b"application/json")]

# A record to send: (key, value), or (key, value, headers) to add headers (a trace context's)
# to the content type every record carries.
Record = tuple[bytes, bytes] | tuple[bytes, bytes, tracing.Headers]


class BulkSender:
    """A producer for many records at once: every send is queued before any is awaited.

    Awaiting each publish in turn caps a stage at a few thousand records a second; handing the
    whole set to the producer lets it batch them per partition and wait for the acks together.
    """

    def __init__(self, settings: KafkaSettings, service: str) -> None:
        self._settings = settings
        self._client_id = f"{settings.client_id_prefix}-{service}-bulk"
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connects; the producer needs the running event loop, so it is made here."""
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.bootstrap_servers,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=self._settings.enable_idempotence,
            linger_ms=0,
            partitioner=KeyPartitioner(),
            **kafka_security.client_options(self._settings),
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def send_all(self, topic: str, records: Sequence[Record]) -> None:
        """Sends (key, value[, headers]) records, one batch per partition (`queue_batched`);
        returns once the broker acknowledged all of them, or raises if it refused any."""
        await asyncio.gather(*await self.queue_batched(topic, records))

    async def hand_over(self, topic: str, records: Sequence[Record]) -> None:
        """Hands keyed records to the producer, one batch per partition, without waiting for
        the broker's acknowledgement; each record goes to the partition `send` would choose. A
        batch the broker refuses is logged: a caller must have another way to recover it."""
        for delivery in await self.queue_batched(topic, records):
            delivery.add_done_callback(_log_refused)

    async def queue_batched(
        self, topic: str, records: Sequence[Record]
    ) -> list[asyncio.Future[Any]]:
        """Queues keyed records, in order, as one batch per partition (more when one fills);
        returns each batch's acknowledgement to await.

        Filling the batches here costs a fraction of `send` per record (no future, no lookup
        of the partitioner and no accumulator step per record)."""
        producer = self._started()
        count = len(await producer.partitions_for(topic))
        batches: dict[int, BatchBuilder] = {}
        deliveries: list[asyncio.Future[Any]] = []
        for record in records:
            key, value = record[0], record[1]
            # The content type, and the record's own headers if it has any.
            headers = _JSON_HEADERS if len(record) == 2 else [*_JSON_HEADERS, *record[2]]
            partition = partition_of(key, count)
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = producer.create_batch()
            if batch.append(timestamp=None, key=key, value=value, headers=headers) is None:
                # Full: it goes, and another starts.
                deliveries.append(await producer.send_batch(batch, topic, partition=partition))
                batch = batches[partition] = producer.create_batch()
                batch.append(timestamp=None, key=key, value=value, headers=headers)
        for partition, batch in batches.items():
            deliveries.append(await producer.send_batch(batch, topic, partition=partition))
        return deliveries

    def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("BulkSender.start() was not called")
        return self._producer


def _log_refused(delivery: asyncio.Future[Any]) -> None:
    if not delivery.cancelled() and delivery.exception() is not None:
        log.warning("the broker did not take a record: %s", delivery.exception())


# FastStream's own lines (the app's and the broker's) go through this logger, so through the
# service's log set-up: left to FastStream, they are written in its own text form.
FASTSTREAM_LOG = logging.getLogger("shared.bus.faststream")


def create_broker(
    settings: KafkaSettings, service: str, graceful_timeout: float = 15.0
) -> KafkaBroker:
    """A broker whose publishes wait for every in-sync replica (`acks=all`). Stopping, each
    subscriber reads no more and waits up to `graceful_timeout` for the batch it is handling
    (whose offsets are committed once it is done), then leaves its group."""
    return KafkaBroker(
        settings.bootstrap_servers,
        client_id=f"{settings.client_id_prefix}-{service}",
        acks="all",
        enable_idempotence=settings.enable_idempotence,
        linger_ms=0,
        partitioner=KeyPartitioner(),
        # Per-message INFO logs halve a subscriber's rate; keep them for debugging only.
        log_level=logging.DEBUG,
        logger=FASTSTREAM_LOG,
        graceful_timeout=graceful_timeout,
        # Its producer and every subscriber's consumer connect with it.
        security=kafka_security.broker_security(settings),
    )


async def send_to_dlq(
    broker: KafkaBroker,
    body: bytes,
    key: bytes | None,
    source_topic: str,
    consumer: str,
    error: str,
) -> None:
    """Parks a message nobody can process, with the reason, so the consumer can move on."""
    log.warning("message from %s sent to the DLQ: %s", source_topic, error)
    await broker.publish(
        body,
        topic=CALLS_DLQ,
        key=key,
        headers={
            DLQ_ERROR_HEADER: error[:2000],
            DLQ_TOPIC_HEADER: source_topic,
            DLQ_CONSUMER_HEADER: consumer,
        },
    )
    parked_on_dlq(source_topic)


async def ensure_topics(
    settings: KafkaSettings, topics: Iterable[str] = ALL_TOPICS, attempts: int = 30
) -> None:
    """Creates the topics (idempotently), retrying while the broker is still starting."""
    wanted = list(topics)
    for attempt in range(attempts):
        admin = AIOKafkaAdminClient(
            bootstrap_servers=settings.bootstrap_servers,
            **kafka_security.client_options(settings),
        )
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [
                NewTopic(name, settings.partitions, settings.replication_factor)
                for name in wanted
                if name not in existing
            ]
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(missing)
            return
        except (KafkaError, OSError) as exc:
            if attempt == attempts - 1:
                raise
            log.info("broker not ready (%s); retrying", exc)
            await asyncio.sleep(0.5)
        finally:
            await admin.close()


def trace_headers() -> dict[str, str] | None:
    """The current trace context as headers for `broker.publish`; None when there is none."""
    if not tracing.enabled:
        return None
    headers = tracing.current_headers()
    return {name: value.decode() for name, value in headers} if headers else None


async def publish_events(broker: KafkaBroker, events: Iterable[CallEvent]) -> None:
    """Publishes call events keyed by call id, with the current trace context; returns once
    the broker has all of them."""
    headers = trace_headers()
    await asyncio.gather(
        *(
            broker.publish(
                event.model_dump_json().encode(),
                topic=CALLS_EVENTS,
                key=call_key(event.call_id),
                headers=headers,
            )
            for event in events
        )
    )


class EventPublisher:
    """Publishes call events for many concurrent callers through one feeding task.

    Each caller waits for the broker to acknowledge its own events, as with `publish_events`;
    but the producer is fed by a single task, a lot at a time, so thousands of callers never
    queue on the producer's full batches together (each one woken whenever a batch drains).
    A caller's events go out in the order given, and a caller that awaits one publish before
    the next keeps its events in order on their partition.
    """

    def __init__(self, sender: BulkSender, topic: str = CALLS_EVENTS, lot: int = 2000) -> None:
        self._sender = sender
        self._topic = topic
        self._lot = lot
        self._waiting: list[tuple[list[Record], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._feeder: asyncio.Task[None] | None = None
        self._acks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._sender.start()
        self._feeder = asyncio.create_task(self._feed(), name="event-publisher")

    async def stop(self) -> None:
        if self._feeder is not None:
            self._feeder.cancel()
            await asyncio.gather(self._feeder, return_exceptions=True)
        await asyncio.gather(*self._acks, return_exceptions=True)
        for _, done in self._waiting:
            if not done.done():
                done.set_exception(KafkaError("the publisher stopped"))
        await self._sender.stop()

    async def publish(self, events: Iterable[CallEvent]) -> None:
        await self.publish_encoded(
            [(call_key(e.call_id), e.model_dump_json().encode()) for e in events]
        )

    async def publish_encoded(self, records: Sequence[Record]) -> None:
        """Publishes events already encoded, as (key, message) records (`encode_call_event`),
        with the current trace context (the caller's: the feeding task sends them)."""
        if tracing.enabled and (headers := tracing.current_headers()) is not None:
            records = [(record[0], record[1], headers) for record in records]
        if not records:
            return
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((list(records), done))
        self._wake.set()
        await done

    async def _feed(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                waiting = self._waiting
                # The callers in the order they came, up to a lot's worth of records (at least
                # one caller); the rest wait for the next lot.
                taken = size = 0
                while taken < len(waiting) and size < self._lot:
                    size += len(waiting[taken][0])
                    taken += 1
                lot, self._waiting = waiting[:taken], waiting[taken:]
                await self._send(lot)

    async def _send(self, lot: list[tuple[list[Record], asyncio.Future[None]]]) -> None:
        try:
            deliveries = await self._sender.queue_batched(
                self._topic, [record for records, _ in lot for record in records]
            )
        except Exception as exc:
            _settle(lot, exc)
            return
        acks = asyncio.create_task(self._acknowledge(lot, deliveries))
        self._acks.add(acks)
        acks.add_done_callback(self._acks.discard)

    @staticmethod
    async def _acknowledge(
        lot: list[tuple[list[Record], asyncio.Future[None]]],
        deliveries: list[asyncio.Future[Any]],
    ) -> None:
        results = await asyncio.gather(*deliveries, return_exceptions=True)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            # A batch mixes callers' records: each caller of the lot publishes again (events
            # keep their ids, so a record that did land is a duplicate consumers drop).
            _settle(lot, failure)
            return
        for _, done in lot:
            if not done.done():
                done.set_result(None)


def _settle(lot: list[tuple[list[Record], asyncio.Future[None]]], exc: BaseException) -> None:
    """Fails every caller of a lot that did not wholly land."""
    for _, done in lot:
        if not done.done():
            done.set_exception(exc)
