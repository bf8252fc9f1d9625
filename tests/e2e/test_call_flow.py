"""The whole pipeline with every service in its own process, on a real broker and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from standardwebhooks.webhooks import Webhook as SignatureVerifier

from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.integration.pipeline import publish_requests, request
from tests.stack import Stack
from tests.support import Api, Receiver

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(kafka_server: KafkaServer, redis_server: RedisServer, tmp_path: Path) -> Iterator[Stack]:
    running = Stack(kafka_server.bootstrap, redis_server.url, tmp_path).start()
    yield running
    running.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, stack.base_url)


async def test_a_call_is_placed_and_the_customer_hears_about_it(
    stack: Stack, api: Api, receiver: Receiver
) -> None:
    campaign = await api.active_campaign()
    hook = await api.webhook(campaign["id"], receiver.url)
    context = {"crm_id": "lead-42", "nested": {"tags": ["a", "ü"], "score": 7}}

    status, body = await api.call(
        "POST",
        f"/campaigns/{campaign['id']}/call",
        {"to": "+1 (212) 555-0120", "payload": {"first_name": "Ada"}, "context": context},
    )

    assert status == 201, body
    call = body["campaign_call"]
    assert set(call) >= {"id", "campaign_id", "to", "status", "scheduled_at", "created_at"}
    assert call["to"] == "+12125550120"
    assert call["status"] == "queued"
    assert call["scheduled_at"].endswith("Z")
    assert body["campaign"] == {"id": campaign["id"], "name": campaign["name"], "status": "active"}

    async def completed() -> bool:
        return bool(receiver.of_type("campaign_call.completed"))

    try:
        await wait_until(completed, within=30)
    except AssertionError:
        raise AssertionError(stack.logs_text()) from None

    verifier = SignatureVerifier(hook["webhook_secret"])
    for event_type in ("campaign_call.started", "campaign_call.completed"):
        (delivery,) = receiver.of_type(event_type)
        verifier.verify(delivery.body, delivery.headers)
        event = delivery.json()
        assert delivery.headers["webhook-id"] == event["id"]
        assert event["campaign_id"] == campaign["id"]
        assert event["data"]["id"] == call["id"]
        assert event["context"] == context
        assert event["attempt"] == 1
    done = receiver.of_type("campaign_call.completed")[0].json()
    assert done["will_retry"] is False
    assert done["data"]["status"] == "completed"

    status, stored = await api.call("GET", f"/campaigns/{campaign['id']}/calls/{call['id']}")
    assert status == 200
    assert stored["data"]["status"] == "completed"
    assert all(process.alive() for process in stack.all()), stack.logs_text()


async def test_a_request_refused_on_the_topic_reaches_the_webhook_with_its_context(
    stack: Stack, api: Api, receiver: Receiver, kafka_server: KafkaServer
) -> None:
    """A rejected call is never stored; its webhook event still echoes the request's context."""
    campaign = await api.active_campaign()
    hook = await api.webhook(campaign["id"], receiver.url)
    context = {"crm_id": "lead-43", "nested": {"tags": ["a", "ü"], "score": 7, "none": None}}

    await publish_requests(
        kafka_server.bootstrap,
        request(campaign["id"], "12", "call-refused", context=context, payload={"p": 1}),
    )

    async def rejected() -> bool:
        return bool(receiver.of_type("campaign_call.rejected"))

    try:
        await wait_until(rejected, within=30)
    except AssertionError:
        raise AssertionError(stack.logs_text()) from None

    (delivery,) = receiver.of_type("campaign_call.rejected")
    SignatureVerifier(hook["webhook_secret"]).verify(delivery.body, delivery.headers)
    event = delivery.json()
    assert event["context"] == context
    assert event["campaign_id"] == campaign["id"]
    assert (event["data"]["id"], event["data"]["status"]) == ("call-refused", "rejected")
    assert event["data"]["reason"] == "invalid_number"
    status, stored = await api.call("GET", f"/campaigns/{campaign['id']}/calls/call-refused")
    assert status == 404, stored
