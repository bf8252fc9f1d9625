"""What SREs read: every service's /healthz, /readyz and /metrics, with the services as
processes on a real broker and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.processes import SERVICES
from shared.topics import CALLS_DUE, CALLS_EVENTS, CALLS_REQUESTED
from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.integration.pipeline import publish_requests
from tests.stack import Stack
from tests.support import Api, Receiver

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def stack(kafka_server: KafkaServer, redis_server: RedisServer, tmp_path: Path) -> Iterator[Stack]:
    running = Stack(
        kafka_server.bootstrap,
        redis_server.url,
        tmp_path,
        extra_env={"DIALER_SANDBOX_RING_MS": "20", "DIALER_SANDBOX_TALK_MS": "50"},
    ).start()
    yield running
    running.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    try:
        async with session.get(url) as response:
            return response.status, await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return 0, ""


async def _scrape(session: aiohttp.ClientSession, base: str) -> tuple[str, Samples]:
    status, text = await _get(session, f"{base}/metrics")
    assert status == 200, text
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return text, samples


def _total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for (n, have), value in samples.items() if n == name and wanted <= have)


async def _all_ready(session: aiohttp.ClientSession, stack: Stack) -> None:
    async def ready() -> bool:
        for name in SERVICES:
            status, _ = await _get(session, f"{stack.ops_url(name)}/readyz")
            if status != 200:
                return False
        return True

    try:
        await wait_until(ready, within=60, interval=0.2)
    except AssertionError:
        raise AssertionError(stack.logs_text()) from None


async def test_every_service_counts_what_a_run_did(
    stack: Stack, session: aiohttp.ClientSession, receiver: Receiver, kafka_server: KafkaServer
) -> None:
    await _all_ready(session, stack)
    api = Api(session, stack.base_url)
    campaign = await api.active_campaign()
    campaign_id = campaign["id"]
    await api.webhook(campaign_id, receiver.url)

    status, body = await api.call("POST", f"/campaigns/{campaign_id}/call", {"to": "+12125550101"})
    assert status == 201, body
    batch = {
        "calls": [
            {"to": "+12125550102"},
            {"to": "+12125550103"},
            {"to": "+12125550104"},
            {"to": "+12125550102"},  # the same number again: a duplicate
            {"to": "not a number"},
        ]
    }
    status, body = await api.call("POST", f"/campaigns/{campaign_id}/calls/batch", batch)
    assert status == 207, body
    assert [item["status"] for item in body["data"]["results"]] == [201, 201, 201, 409, 422]
    status, _ = await api.call("POST", "/campaigns/no-such-campaign/call", {"to": "+12125550105"})
    assert status == 404
    # A request no one can read: the scheduler parks it on the DLQ.
    await publish_requests(kafka_server.bootstrap, (b"{not json", b"k"))
    accepted = 4

    async def all_ended() -> bool:
        _, listed = await api.call("GET", f"/campaigns/{campaign_id}/calls")
        calls = listed["data"]
        ended = [call for call in calls if call["status"] not in ("queued", "in_progress")]
        return len(calls) == len(ended) == accepted

    try:
        await wait_until(all_ended, within=60, interval=0.2)
    except AssertionError:
        _, listed = await api.call("GET", f"/campaigns/{campaign_id}/calls")
        seen = [d.json()["type"] for d in receiver.deliveries]
        raise AssertionError(f"{listed}\n{seen}\n{stack.logs_text()}") from None

    ingest_text, ingest = await _scrape(session, stack.ops_url("ingest"))
    assert _total(ingest, "campaign_calls_call_requests_total", result="accepted") == accepted
    assert _total(ingest, "campaign_calls_call_requests_total", result="duplicate") == 1
    assert _total(ingest, "campaign_calls_call_requests_total", result="invalid") == 1
    assert _total(ingest, "campaign_calls_call_requests_total", result="not_found") == 1
    one_call = "/api/v1/campaigns/{campaign_id}/call"
    requests = "campaign_calls_http_requests_total"
    assert _total(ingest, requests, method="POST", route=one_call, status="201") == 1
    assert _total(ingest, requests, method="POST", route=one_call, status="404") == 1
    assert _total(ingest, "campaign_calls_http_request_duration_seconds_count", route=one_call) == 2

    scheduler_text, scheduler = await _scrape(session, stack.ops_url("scheduler"))
    assert _total(scheduler, "campaign_calls_released_total") == accepted
    consumed = "campaign_calls_messages_consumed_total"
    assert _total(scheduler, consumed, topic=CALLS_REQUESTED) == accepted + 1
    assert _total(scheduler, "campaign_calls_dlq_messages_total", topic=CALLS_REQUESTED) == 1
    assert _total(scheduler, "campaign_calls_due_queue_depth") == 0
    assert _total(scheduler, "campaign_calls_due_oldest_lag_seconds") == 0
    assert (
        "campaign_calls_consumer_lag",
        frozenset({("topic", CALLS_REQUESTED), ("group", "scheduler")}),
    ) in scheduler

    dialer_text, dialer = await _scrape(session, stack.ops_url("dialer"))
    assert _total(dialer, "campaign_calls_dial_attempts_total") == accepted
    assert (
        _total(dialer, "campaign_calls_dial_attempts_total", provider="sandbox", outcome="placed")
        == accepted
    )
    assert _total(dialer, "campaign_calls_dial_duration_seconds_count") == accepted
    assert _total(dialer, "campaign_calls_dials_in_flight") == 0
    assert _total(dialer, consumed, topic=CALLS_DUE) == accepted
    assert _total(dialer, "campaign_calls_dlq_messages_total") == 0

    async def notifier_caught_up() -> bool:
        _, samples = await _scrape(session, stack.ops_url("notifier"))
        delivered = _total(samples, "campaign_calls_webhook_deliveries_total", result="delivered")
        under_way = ("campaign_call.queued", "campaign_call.started", "campaign_call.answered")
        endings = [d for d in receiver.deliveries if d.json()["type"] not in under_way]
        return len(endings) == accepted and delivered == len(receiver.deliveries)

    await wait_until(notifier_caught_up, within=20, interval=0.2)
    notifier_text, notifier = await _scrape(session, stack.ops_url("notifier"))
    deliveries = "campaign_calls_webhook_deliveries_total"
    # Each call's queued, started and ending events, at least.
    assert len(receiver.deliveries) >= 3 * accepted
    assert _total(notifier, deliveries) == len(receiver.deliveries)
    assert _total(notifier, "campaign_calls_webhook_delivery_duration_seconds_count") == len(
        receiver.deliveries
    )
    assert _total(notifier, "campaign_calls_webhook_retries_pending") == 0
    assert _total(notifier, consumed, topic=CALLS_EVENTS) > 0

    # Labels name routes, topics and outcomes: never a campaign or call id.
    call_ids = [
        call["id"] for call in (await api.call("GET", f"/campaigns/{campaign_id}/calls"))[1]["data"]
    ]
    for text in (ingest_text, scheduler_text, dialer_text, notifier_text):
        assert campaign_id not in text
        assert not any(call_id in text for call_id in call_ids)


@pytest.mark.redis_backends("single")
async def test_readiness_follows_redis_and_health_does_not(
    stack: Stack, session: aiohttp.ClientSession, redis_server: RedisServer
) -> None:
    await _all_ready(session, stack)
    assert redis_server.process is not None
    redis_server.process.stop()
    try:
        for name in SERVICES:
            base = stack.ops_url(name)

            async def names_redis(base: str = base) -> bool:
                status, body = await _get(session, f"{base}/readyz")
                return status == 503 and '"redis"' in body

            await wait_until(names_redis, within=20, interval=0.2)
            status, body = await _get(session, f"{base}/healthz")
            assert status == 200, (name, body)
    finally:
        redis_server.process.start()

    await _all_ready(session, stack)
    assert all(process.alive() for process in stack.all()), stack.logs_text()
