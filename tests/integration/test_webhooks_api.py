"""Webhook management through the API, on the real broker and Redis, with a local receiver."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis
from standardwebhooks.webhooks import Webhook as SignatureVerifier

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.models import WebhookHeader
from shared.rules.webhook_health import FAILING, GONE
from shared.rules.webhook_payloads import EVENT_NAMES
from shared.rules.webhook_targets import REFUSED_TARGET
from shared.store.catalog import CatalogStore
from tests.conftest import KafkaServer, RedisServer, wait_until
from tests.integration.conftest import OTHER_AUTH, IngestClient, StartNotifier
from tests.support import TOKEN, Receiver

pytestmark = pytest.mark.integration


def _settings(
    kafka_server: KafkaServer, redis_server: RedisServer, allow_private: bool
) -> IngestSettings:
    return IngestSettings(
        kafka=kafka_server.settings(),
        redis=redis_server.settings(),
        api_tokens=f"{TOKEN}:env-a,other-token:env-b",
        dev_api_token=None,
        allow_private_webhook_targets=allow_private,
    )


@pytest.fixture
async def api(kafka_server: KafkaServer, redis_server: RedisServer) -> AsyncIterator[IngestClient]:
    """The API as on a developer machine: webhooks may point at loopback."""
    app = create_app(_settings(kafka_server, redis_server, allow_private=True))
    async with TestClient(TestServer(app)) as client:
        yield IngestClient(client)


@pytest.fixture
async def strict_api(
    kafka_server: KafkaServer, redis_server: RedisServer
) -> AsyncIterator[IngestClient]:
    """A second API on the same Redis as an operator runs it: private targets refused."""
    app = create_app(_settings(kafka_server, redis_server, allow_private=False))
    async with TestClient(TestServer(app)) as client:
        yield IngestClient(client)


@pytest.fixture
async def notifier(start_notifier: StartNotifier) -> None:
    """A notifier beside the API: it sends the test events and redeliveries the API queues."""
    await start_notifier()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


async def _webhook(api: IngestClient, campaign_id: str, url: str, **fields: Any) -> dict[str, Any]:
    body = {"name": "CRM", "webhook_url": url, "events": ["campaign_call.completed"], **fields}
    status, created = await api.call("POST", f"/campaigns/{campaign_id}/webhooks", body)
    assert status == 201, created
    return dict(created["data"])


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"


async def test_a_webhook_is_created_read_listed_edited_toggled_and_deleted(
    api: IngestClient, receiver: Receiver
) -> None:
    campaign = await api.campaign()
    base = f"/campaigns/{campaign['id']}/webhooks"
    created = await _webhook(
        api,
        campaign["id"],
        receiver.url,
        timeout=10,
        custom_headers=[{"key": "X-Tenant", "value": "acme"}],
    )
    secret = created["webhook_secret"]
    assert secret.startswith("whsec_")
    assert created["custom_headers"] == [{"key": "X-Tenant", "value": "****"}]
    hook = f"{base}/{created['id']}"

    status, read = await api.call("GET", hook)
    assert status == 200, read
    # The generated secret was shown once; from then on only its hint.
    assert read["data"] == {**created, "webhook_secret": "****" + secret[-4:]}

    status, listed = await api.call("GET", base)
    assert status == 200, listed
    assert listed["data"] == [read["data"]]
    assert listed["pagination"]["total"] == 1

    status, updated = await api.call(
        "PUT", hook, {"name": "CRM v2", "events": ["campaign.started"], "max_retries": 5}
    )
    assert status == 200, updated
    data = updated["data"]
    assert (data["name"], data["events"], data["max_retries"]) == (
        "CRM v2",
        ["campaign.started"],
        5,
    )
    assert data["timeout"] == 10
    assert data["custom_headers"] == [{"key": "X-Tenant", "value": "****"}]
    assert data["created_at"] == created["created_at"]
    assert data["webhook_secret"] == "****" + secret[-4:]

    status, toggled = await api.call("PATCH", f"{hook}/toggle")
    assert (status, toggled["data"]["enabled"]) == (200, False)
    status, toggled = await api.call("PATCH", f"{hook}/toggle")
    assert (status, toggled["data"]["enabled"]) == (200, True)

    status, deleted = await api.call("DELETE", hook)
    assert status == 200, deleted
    assert deleted["data"] == {"id": created["id"], "deleted": True}
    status, gone = await api.call("GET", hook)
    assert (status, gone["code"]) == (404, "WEBHOOK_NOT_FOUND")
    _, listed = await api.call("GET", base)
    assert listed["data"] == []


async def test_a_webhook_disabled_by_the_notifier_shows_why_until_enabled_again(
    api: IngestClient, receiver: Receiver, redis: Redis
) -> None:
    campaign = await api.campaign()
    # Read-only: a reason sent with the webhook is not taken.
    created = await _webhook(api, campaign["id"], receiver.url, disabled_reason="made up")
    assert (created["enabled"], created["disabled_reason"]) == (True, None)
    hook = f"/campaigns/{campaign['id']}/webhooks/{created['id']}"
    catalog = CatalogStore(redis)

    disabled = await catalog.disable_webhook(campaign["id"], created["id"], GONE)

    assert disabled is not None
    assert (disabled.enabled, disabled.disabled_reason) == (False, GONE)
    status, read = await api.call("GET", hook)
    assert status == 200, read
    assert (read["data"]["enabled"], read["data"]["disabled_reason"]) == (False, GONE)
    # Already off: the first reason stays.
    again = await catalog.disable_webhook(campaign["id"], created["id"], FAILING)
    assert again is not None
    assert again.disabled_reason == GONE

    status, toggled = await api.call("PATCH", f"{hook}/toggle")
    assert status == 200, toggled
    assert (toggled["data"]["enabled"], toggled["data"]["disabled_reason"]) == (True, None)
    stored = await catalog.get_webhook(campaign["id"], created["id"])
    assert stored is not None
    assert (stored.enabled, stored.disabled_reason) == (True, None)

    # Switched off by its owner, it has no reason, and the notifier does not give it one.
    status, toggled = await api.call("PATCH", f"{hook}/toggle")
    assert (status, toggled["data"]["disabled_reason"]) == (200, None)
    owner_off = await catalog.disable_webhook(campaign["id"], created["id"], FAILING)
    assert owner_off is not None
    assert (owner_off.enabled, owner_off.disabled_reason) == (False, None)
    assert await catalog.disable_webhook(campaign["id"], "no-such-webhook", GONE) is None


async def test_an_update_is_checked_like_a_create(api: IngestClient, receiver: Receiver) -> None:
    campaign = await api.campaign()
    created = await _webhook(api, campaign["id"], receiver.url)
    hook = f"/campaigns/{campaign['id']}/webhooks/{created['id']}"

    status, body = await api.call(
        "PUT", hook, {"timeout": 2, "http_method": "GET", "webhook_url": "ftp://x"}
    )

    assert status == 422, body
    assert set(body["errors"]) == {"timeout", "http_method", "webhook_url"}
    _, read = await api.call("GET", hook)
    assert read["data"]["timeout"] == 30


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_events_must_be_documented_names(
    api: IngestClient, receiver: Receiver, method: str
) -> None:
    campaign = await api.campaign()
    path = f"/campaigns/{campaign['id']}/webhooks"
    if method == "PUT":
        created = await _webhook(api, campaign["id"], receiver.url)
        path = f"{path}/{created['id']}"
    body = {
        "name": "CRM",
        "webhook_url": receiver.url,
        "events": ["campaign_call.completed", "call.done", "webhook.test"],
    }

    status, answer = await api.call(method, path, body)

    assert status == 422, answer
    (message,) = answer["errors"]["events"]
    assert all(name in message for name in EVENT_NAMES)
    assert "unknown: call.done, webhook.test" in message


async def test_a_secret_sent_on_update_signs_from_then_on_and_is_never_shown(
    api: IngestClient, receiver: Receiver, notifier: None
) -> None:
    campaign = await api.campaign()
    created = await _webhook(api, campaign["id"], receiver.url, webhook_secret="first-secret")
    # Shorter than 16 characters: the hint shows none of them.
    assert created["webhook_secret"] == "****"
    hook = f"/campaigns/{campaign['id']}/webhooks/{created['id']}"

    status, updated = await api.call("PUT", hook, {"webhook_secret": "whsec_c2Vjb25kLXNlY3JldA"})
    assert status == 200, updated
    assert updated["data"]["webhook_secret"] == "****JldA"
    status, tested = await api.call("POST", f"{hook}/test")
    assert status == 200, tested

    (delivery,) = receiver.deliveries
    SignatureVerifier("whsec_c2Vjb25kLXNlY3JldA").verify(delivery.body, delivery.headers)


async def test_private_targets_are_refused_on_update_when_not_allowed(
    strict_api: IngestClient,
) -> None:
    campaign = await strict_api.campaign()
    created = await _webhook(strict_api, campaign["id"], "https://hooks.example.com/in")
    hook = f"/campaigns/{campaign['id']}/webhooks/{created['id']}"

    for url in ("http://127.0.0.1:9/x", "http://localhost./x", "http://[::1]/x"):
        status, body = await strict_api.call("PUT", hook, {"webhook_url": url})
        assert status == 422, (url, body)
        assert list(body["errors"]) == ["webhook_url"]
    status, body = await strict_api.call("PUT", hook, {"name": "renamed"})
    assert status == 200, body


async def test_webhooks_of_another_campaign_or_environment_are_not_found(
    api: IngestClient, receiver: Receiver, notifier: None
) -> None:
    campaign = await api.campaign()
    sibling = await api.campaign()
    created = await _webhook(api, campaign["id"], receiver.url)
    status, tested = await api.call(
        "POST", f"/campaigns/{campaign['id']}/webhooks/{created['id']}/test"
    )
    assert status == 200, tested
    delivery_id = tested["data"]["delivery_id"]
    status, theirs = await api.call(
        "POST", "/agents", {"name": "B", "prompt": "p"}, headers=OTHER_AUTH
    )
    assert status == 201, theirs
    status, their_campaign = await api.call(
        "POST",
        "/campaigns",
        {
            "name": "B",
            "campaign_type": "sales",
            "start_date": "2026-01-01",
            "agent_id": theirs["data"]["id"],
        },
        headers=OTHER_AUTH,
    )
    assert status == 201, their_campaign
    wid = created["id"]
    suffixes = [
        ("GET", "", None),
        ("PUT", "", {"name": "stolen"}),
        ("DELETE", "", None),
        ("PATCH", "/toggle", None),
        ("POST", "/test", None),
        ("GET", "/deliveries", None),
        ("POST", f"/deliveries/{delivery_id}/redeliver", None),
    ]
    attempts = [
        # Another campaign of the same environment.
        (f"/campaigns/{sibling['id']}/webhooks/{wid}", None, "WEBHOOK_NOT_FOUND"),
        # Another environment's own campaign.
        (
            f"/campaigns/{their_campaign['data']['id']}/webhooks/{wid}",
            OTHER_AUTH,
            "WEBHOOK_NOT_FOUND",
        ),
        # Another environment naming this campaign.
        (f"/campaigns/{campaign['id']}/webhooks/{wid}", OTHER_AUTH, "CAMPAIGN_NOT_FOUND"),
    ]
    for prefix, headers, code in attempts:
        for method, suffix, body in suffixes:
            status, answer = await api.call(method, prefix + suffix, body, headers=headers)
            assert (status, answer.get("code")) == (404, code), (method, prefix + suffix)
    status, listed = await api.call(
        "GET", f"/campaigns/{campaign['id']}/webhooks", headers=OTHER_AUTH
    )
    assert (status, listed["code"]) == (404, "CAMPAIGN_NOT_FOUND")
    _, sibling_hooks = await api.call("GET", f"/campaigns/{sibling['id']}/webhooks")
    assert sibling_hooks["data"] == []

    status, read = await api.call("GET", f"/campaigns/{campaign['id']}/webhooks/{wid}")
    assert status == 200
    assert (read["data"]["name"], read["data"]["enabled"]) == ("CRM", True)
    assert len(receiver.deliveries) == 1


async def test_the_test_endpoint_sends_a_signed_test_event_and_reports_the_attempt(
    api: IngestClient, receiver: Receiver, notifier: None
) -> None:
    campaign = await api.campaign()
    created = await _webhook(
        api,
        campaign["id"],
        receiver.url,
        http_method="PATCH",
        authorization_scheme="bearer",
        authorization_value="tok",
    )
    hook = f"/campaigns/{campaign['id']}/webhooks/{created['id']}"

    status, answer = await api.call("POST", f"{hook}/test")

    assert status == 200, answer
    result = answer["data"]
    assert result["status_code"] == 200
    assert result["success"] is True
    assert result["error"] is None
    assert result["latency_ms"] >= 0
    assert result["event_type"] == "webhook.test"
    assert (result["attempt"], result["trigger"]) == (1, "test")
    assert result["state"] == "delivered"
    (delivery,) = receiver.deliveries
    SignatureVerifier(created["webhook_secret"]).verify(delivery.body, delivery.headers)
    assert delivery.method == "PATCH"
    assert delivery.headers["Authorization"] == "Bearer tok"
    event = delivery.json()
    assert event["type"] == "webhook.test"
    assert event["id"] == result["event_id"] == delivery.headers["webhook-id"]
    assert event["data"]["webhook_id"] == created["id"]


async def test_the_test_endpoint_reports_a_failure_and_sends_while_disabled(
    api: IngestClient, receiver: Receiver, notifier: None
) -> None:
    campaign = await api.campaign()
    created = await _webhook(api, campaign["id"], receiver.url, enabled=False)
    hook = f"/campaigns/{campaign['id']}/webhooks/{created['id']}"
    receiver.statuses = [500]

    status, answer = await api.call("POST", f"{hook}/test")

    assert status == 200, answer
    assert (answer["data"]["status_code"], answer["data"]["success"]) == (500, False)
    assert answer["data"]["state"] == "failed"
    assert len(receiver.deliveries) == 1

    status, updated = await api.call("PUT", hook, {"webhook_url": _closed_port_url()})
    assert status == 200, updated
    status, answer = await api.call("POST", f"{hook}/test")
    assert status == 200, answer
    assert answer["data"]["status_code"] is None
    assert "Cannot connect" in answer["data"]["error"]


async def test_a_target_that_is_private_at_send_time_is_refused(
    api: IngestClient, start_notifier: StartNotifier, receiver: Receiver
) -> None:
    # Saved where private targets were allowed; sent by a notifier that refuses them.
    await start_notifier(allow_private_targets=False)
    campaign = await api.campaign()
    created = await _webhook(api, campaign["id"], receiver.url)

    status, answer = await api.call(
        "POST", f"/campaigns/{campaign['id']}/webhooks/{created['id']}/test"
    )

    assert status == 200, answer
    assert answer["data"]["error"] == REFUSED_TARGET
    assert answer["data"]["status_code"] is None
    assert answer["data"]["state"] == "failed"
    assert receiver.deliveries == []


async def test_deliveries_log_is_newest_first_and_paginated(
    api: IngestClient, receiver: Receiver, notifier: None
) -> None:
    campaign = await api.campaign()
    created = await _webhook(api, campaign["id"], receiver.url)
    hook = f"/campaigns/{campaign['id']}/webhooks/{created['id']}"
    receiver.statuses = [200, 404, 200]
    results = []
    for _ in range(3):
        status, answer = await api.call("POST", f"{hook}/test")
        assert status == 200, answer
        results.append(answer["data"])

    status, page = await api.call("GET", f"{hook}/deliveries?per_page=2")
    assert status == 200, page
    assert page["data"] == results[::-1][:2]
    assert page["pagination"] == {
        "current_page": 1,
        "last_page": 2,
        "per_page": 2,
        "total": 3,
        "from": 1,
        "to": 2,
    }
    status, second = await api.call("GET", f"{hook}/deliveries?per_page=2&page=2")
    assert status == 200, second
    assert second["data"] == [results[0]]
    entry = second["data"][0]
    assert set(entry) == {
        "delivery_id",
        "event_id",
        "event_type",
        "attempt",
        "trigger",
        "success",
        "status_code",
        "latency_ms",
        "error",
        "attempted_at",
        "state",
        "next_attempt_at",
        "response_body",
        "response_truncated",
    }
    assert [r["status_code"] for r in results] == [200, 404, 200]
    status, bad = await api.call("GET", f"{hook}/deliveries?per_page=101")
    assert status == 422, bad


async def test_a_delivery_is_redelivered_with_its_webhook_id_and_a_new_signature(
    api: IngestClient, receiver: Receiver, notifier: None
) -> None:
    campaign = await api.campaign()
    created = await _webhook(api, campaign["id"], receiver.url)
    hook = f"/campaigns/{campaign['id']}/webhooks/{created['id']}"
    receiver.statuses = [503]
    status, tested = await api.call("POST", f"{hook}/test")
    assert (status, tested["data"]["state"]) == (200, "failed"), tested
    delivery_id = tested["data"]["delivery_id"]

    status, again = await api.call("POST", f"{hook}/deliveries/{delivery_id}/redeliver")

    assert status == 202, again
    assert again["data"] == {"delivery_id": delivery_id, "state": "queued"}

    async def redelivered() -> bool:
        _, log = await api.call("GET", f"{hook}/deliveries")
        return len(log["data"]) == 2

    await wait_until(redelivered, within=20)
    _, log = await api.call("GET", f"{hook}/deliveries")
    result = log["data"][0]
    assert (result["delivery_id"], result["event_id"]) == (delivery_id, tested["data"]["event_id"])
    assert (result["attempt"], result["trigger"], result["status_code"]) == (2, "redeliver", 200)
    assert result["state"] == "delivered"
    first, second = receiver.deliveries
    assert second.body == first.body
    assert second.headers["webhook-id"] == first.headers["webhook-id"] == result["event_id"]
    assert int(second.headers["webhook-timestamp"]) >= int(first.headers["webhook-timestamp"])
    verifier = SignatureVerifier(created["webhook_secret"])
    verifier.verify(first.body, first.headers)
    verifier.verify(second.body, second.headers)
    _, log = await api.call("GET", f"{hook}/deliveries")
    assert [(e["attempt"], e["state"]) for e in log["data"]] == [(2, "delivered"), (1, "failed")]

    status, missing = await api.call("POST", f"{hook}/deliveries/no-such-delivery/redeliver")
    assert (status, missing["code"]) == (404, "DELIVERY_NOT_FOUND")


async def test_a_test_event_nobody_sends_is_answered_within_ten_seconds(
    api: IngestClient, receiver: Receiver
) -> None:
    # No notifier runs: the API answers in time that the attempt is still on its way, and the
    # test event stays queued for a notifier to send.
    campaign = await api.campaign()
    created = await _webhook(api, campaign["id"], receiver.url)
    hook = f"/campaigns/{campaign['id']}/webhooks/{created['id']}"
    started = time.monotonic()

    status, answer = await api.call("POST", f"{hook}/test")

    assert time.monotonic() - started < 10
    assert status == 200, answer
    result = answer["data"]
    assert (result["success"], result["status_code"], result["state"]) == (False, None, "pending")
    assert "has not reported" in result["error"]
    assert receiver.deliveries == []
    _, log = await api.call("GET", f"{hook}/deliveries")
    assert log["data"] == []


async def test_a_receiver_slower_than_the_test_timeout_is_reported_as_timed_out(
    api: IngestClient, receiver: Receiver, notifier: None
) -> None:
    campaign = await api.campaign()
    created = await _webhook(api, campaign["id"], receiver.url, timeout=60)
    hook = f"/campaigns/{campaign['id']}/webhooks/{created['id']}"
    receiver.delay_s = 9
    started = time.monotonic()

    status, answer = await api.call("POST", f"{hook}/test")

    assert time.monotonic() - started < 10
    assert status == 200, answer
    assert answer["data"]["error"] == "Timed out after 8 s."
    assert answer["data"]["state"] == "failed"
    assert len(receiver.deliveries) == 1


# --- Credentials: write-only, shown as masked hints -----------------------------------------

SECRET = "whsec_c2VjcmV0LWZvci1tYXNraW5n"
TOKEN_VALUE = "tok_live_4f9a8b7c6d5e"
HEADER_VALUE = "hdr_live_0123456789"
CREDENTIALS: dict[str, Any] = {
    "webhook_secret": SECRET,
    "authorization_scheme": "bearer",
    "authorization_value": TOKEN_VALUE,
    "custom_headers": [
        {"key": "X-Api-Secret", "value": HEADER_VALUE},
        {"key": "X-Tenant", "value": "acme"},
    ],
}
HINTS: dict[str, Any] = {
    "webhook_secret": "****" + SECRET[-4:],
    "authorization_value": "****" + TOKEN_VALUE[-4:],
    "custom_headers": [
        {"key": "X-Api-Secret", "value": "****" + HEADER_VALUE[-4:]},
        # Shorter than 16 characters: no character shown.
        {"key": "X-Tenant", "value": "****"},
    ],
}


def _hints_of(view: dict[str, Any]) -> dict[str, Any]:
    return {name: view[name] for name in HINTS}


def _lowered(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


async def _sent_headers(api: IngestClient, hook: str, receiver: Receiver) -> dict[str, str]:
    """The headers, names in lower case, of a test event sent now and answered 200."""
    status, tested = await api.call("POST", f"{hook}/test")
    assert (status, tested["data"]["status_code"]) == (200, 200), tested
    return _lowered(receiver.deliveries[-1].headers)


async def test_credentials_show_only_as_hints_at_create_and_on_every_read(
    api: IngestClient, receiver: Receiver
) -> None:
    campaign = await api.campaign()
    base = f"/campaigns/{campaign['id']}/webhooks"
    created = await _webhook(api, campaign["id"], receiver.url, **CREDENTIALS)
    hook = f"{base}/{created['id']}"
    _, read = await api.call("GET", hook)
    _, listed = await api.call("GET", base)
    _, updated = await api.call("PUT", hook, {"name": "renamed"})
    _, toggled = await api.call("PATCH", f"{hook}/toggle")

    answers = {
        "create": created,
        "get": read["data"],
        "list": listed["data"][0],
        "update": updated["data"],
        "toggle": toggled["data"],
    }
    for path, view in answers.items():
        assert _hints_of(view) == HINTS, path
        for credential in (SECRET, TOKEN_VALUE, HEADER_VALUE, "acme"):
            assert credential not in orjson.dumps(view).decode(), (path, credential)


async def test_a_webhook_read_and_written_back_keeps_its_credentials(
    api: IngestClient, receiver: Receiver, notifier: None
) -> None:
    campaign = await api.campaign()
    created = await _webhook(api, campaign["id"], receiver.url, **CREDENTIALS)
    hook = f"/campaigns/{campaign['id']}/webhooks/{created['id']}"
    _, read = await api.call("GET", hook)

    # A client changes one field and writes back all it read: hints, reordered headers, a
    # header name in another case.
    written = dict(read["data"])
    written["name"] = "CRM v2"
    secret_header, tenant = written["custom_headers"]
    written["custom_headers"] = [{"key": "x-tenant", "value": tenant["value"]}, secret_header]
    status, updated = await api.call("PUT", hook, written)

    assert status == 200, updated
    assert updated["data"]["name"] == "CRM v2"
    assert updated["data"]["custom_headers"] == [
        {"key": "x-tenant", "value": "****"},
        {"key": "X-Api-Secret", "value": "****" + HEADER_VALUE[-4:]},
    ]
    headers = await _sent_headers(api, hook, receiver)
    assert headers["authorization"] == f"Bearer {TOKEN_VALUE}"
    assert (headers["x-api-secret"], headers["x-tenant"]) == (HEADER_VALUE, "acme")
    SignatureVerifier(SECRET).verify(receiver.deliveries[-1].body, receiver.deliveries[-1].headers)


async def test_new_credentials_sent_on_update_replace_the_stored_ones(
    api: IngestClient, receiver: Receiver, notifier: None
) -> None:
    campaign = await api.campaign()
    created = await _webhook(api, campaign["id"], receiver.url, **CREDENTIALS)
    hook = f"/campaigns/{campaign['id']}/webhooks/{created['id']}"
    new_secret = "whsec_cm90YXRlZC1zZWNyZXQtdmFsdWU"

    status, updated = await api.call(
        "PUT",
        hook,
        {
            "webhook_secret": new_secret,
            "authorization_value": "tok_rotated_000000001",
            "custom_headers": [
                {"key": "X-Api-Secret", "value": "hdr_rotated_00000002"},
                {"key": "X-Tenant", "value": "****"},
            ],
        },
    )

    assert status == 200, updated
    assert updated["data"]["webhook_secret"] == "****" + new_secret[-4:]
    assert updated["data"]["authorization_value"] == "****0001"
    headers = await _sent_headers(api, hook, receiver)
    assert headers["authorization"] == "Bearer tok_rotated_000000001"
    assert (headers["x-api-secret"], headers["x-tenant"]) == ("hdr_rotated_00000002", "acme")
    SignatureVerifier(new_secret).verify(
        receiver.deliveries[-1].body, receiver.deliveries[-1].headers
    )


async def test_a_hint_that_is_not_the_stored_values_is_refused_never_stored(
    api: IngestClient, receiver: Receiver, redis: Redis
) -> None:
    campaign = await api.campaign()
    created = await _webhook(api, campaign["id"], receiver.url, **CREDENTIALS)
    hook = f"/campaigns/{campaign['id']}/webhooks/{created['id']}"
    catalog = CatalogStore(redis)
    before = await catalog.get_webhook(campaign["id"], created["id"])

    # Hints of another webhook's credentials, or of values changed since they were read.
    status, body = await api.call(
        "PUT",
        hook,
        {
            "webhook_secret": "****",
            "authorization_value": "****zzzz",
            "custom_headers": [{"key": "X-New", "value": "****"}],
        },
    )

    hint = "must be the credential itself, not its masked hint."
    assert (status, body) == (
        422,
        {
            "success": False,
            "message": "The given data was invalid.",
            "errors": {
                "webhook_secret": [f"The webhook secret {hint}"],
                "authorization_value": [f"The authorization value {hint}"],
                "custom_headers.0.value": [f"The value {hint}"],
            },
        },
    )
    assert await catalog.get_webhook(campaign["id"], created["id"]) == before


async def test_credentials_never_reach_the_logs(
    api: IngestClient, receiver: Receiver, caplog: pytest.LogCaptureFixture, notifier: None
) -> None:
    caplog.set_level(logging.DEBUG)
    campaign = await api.campaign()
    base = f"/campaigns/{campaign['id']}/webhooks"
    created = await _webhook(api, campaign["id"], receiver.url, **CREDENTIALS)
    hook = f"{base}/{created['id']}"
    receiver.statuses = [500]

    await api.call("GET", hook)
    await api.call("PUT", hook, {**CREDENTIALS, "timeout": 1})
    await api.call("POST", base, {**CREDENTIALS, "name": "x", "webhook_url": "ftp://x"})
    status, tested = await api.call("POST", f"{hook}/test")

    assert (status, tested["data"]["status_code"]) == (200, 500)
    # The failed attempt is logged, with nothing of the webhook's credentials.
    assert any("failed" in record.getMessage() for record in caplog.records)
    for credential in (SECRET, TOKEN_VALUE, HEADER_VALUE):
        assert credential not in caplog.text


# --- Custom header rules ---------------------------------------------------------------------

CONTROL = (
    "The value must not contain control characters (CR, LF, NUL and the like; tab is allowed)."
)
HEADER_RULES = [
    pytest.param(
        [{"key": "X Tenant", "value": "acme"}],
        {
            "custom_headers.0.key": [
                "The key must be an HTTP header name: letters, digits and !#$%&'*+-.^_`|~ only, "
                "no spaces."
            ]
        },
        id="not-a-token",
    ),
    pytest.param(
        [{"key": "X-A", "value": "1"}, {"key": "host", "value": "evil.example"}],
        {"custom_headers.1.key": ["The key must not be Host: the sender sets it."]},
        id="host",
    ),
    pytest.param(
        [{"key": "Content-Type", "value": "text/plain"}],
        {"custom_headers.0.key": ["The key must not be Content-Type: the sender sets it."]},
        id="content-type",
    ),
    pytest.param(
        [{"key": "Transfer-Encoding", "value": "chunked"}],
        {"custom_headers.0.key": ["The key must not be Transfer-Encoding: the sender sets it."]},
        id="transfer-encoding",
    ),
    pytest.param(
        [{"key": "WEBHOOK-SIGNATURE", "value": "v1,forged"}],
        {
            "custom_headers.0.key": [
                "The key must not start with webhook-: the signature headers are the sender's."
            ]
        },
        id="signature",
    ),
    pytest.param(
        [{"key": "X-A", "value": "1"}, {"key": "x-a", "value": "2"}],
        {
            "custom_headers.1.key": [
                "The key must not repeat the name of header 0 (names ignore case)."
            ]
        },
        id="repeated",
    ),
    pytest.param(
        [{"key": "X-A", "value": "a\r\nX-Injected: 1"}],
        {"custom_headers.0.value": [CONTROL]},
        id="crlf",
    ),
    pytest.param(
        [{"key": "X-A", "value": "a\x00"}], {"custom_headers.0.value": [CONTROL]}, id="nul"
    ),
]


@pytest.mark.parametrize(("headers", "errors"), HEADER_RULES)
async def test_a_header_breaking_a_rule_is_refused_at_create_and_nothing_is_stored(
    api: IngestClient, receiver: Receiver, headers: list[dict[str, str]], errors: dict[str, Any]
) -> None:
    campaign = await api.campaign()
    base = f"/campaigns/{campaign['id']}/webhooks"
    body = {"name": "CRM", "webhook_url": receiver.url, "events": ["campaign.started"]}

    status, answer = await api.call("POST", base, {**body, "custom_headers": headers})

    assert (status, answer) == (
        422,
        {"success": False, "message": "The given data was invalid.", "errors": errors},
    )
    _, listed = await api.call("GET", base)
    assert listed["data"] == []


@pytest.mark.parametrize(("headers", "errors"), HEADER_RULES)
async def test_a_header_breaking_a_rule_is_refused_at_update_and_nothing_is_stored(
    api: IngestClient,
    receiver: Receiver,
    redis: Redis,
    headers: list[dict[str, str]],
    errors: dict[str, Any],
) -> None:
    campaign = await api.campaign()
    created = await _webhook(api, campaign["id"], receiver.url, **CREDENTIALS)
    hook = f"/campaigns/{campaign['id']}/webhooks/{created['id']}"
    catalog = CatalogStore(redis)
    before = await catalog.get_webhook(campaign["id"], created["id"])

    status, answer = await api.call("PUT", hook, {"name": "renamed", "custom_headers": headers})

    assert (status, answer) == (
        422,
        {"success": False, "message": "The given data was invalid.", "errors": errors},
    )
    assert await catalog.get_webhook(campaign["id"], created["id"]) == before


async def test_stored_headers_that_break_the_rules_are_not_sent_and_must_be_mended_on_edit(
    api: IngestClient, receiver: Receiver, redis: Redis, notifier: None
) -> None:
    campaign = await api.campaign()
    created = await _webhook(api, campaign["id"], receiver.url)
    hook = f"/campaigns/{campaign['id']}/webhooks/{created['id']}"
    catalog = CatalogStore(redis)
    stored = await catalog.get_webhook(campaign["id"], created["id"])
    assert stored is not None
    # Saved before the rules existed.
    legacy = [
        WebhookHeader(key="X-Tenant", value="acme"),
        WebhookHeader(key="Content-Type", value="text/plain"),
        WebhookHeader(key="webhook-id", value="forged"),
        WebhookHeader(key="X-Injected", value="a\r\nX-Evil: 1"),
        WebhookHeader(key="x-tenant", value="second"),
    ]
    await catalog.save_webhook(stored.model_copy(update={"custom_headers": legacy}))

    headers = await _sent_headers(api, hook, receiver)

    delivery = receiver.deliveries[-1]
    SignatureVerifier(created["webhook_secret"]).verify(delivery.body, delivery.headers)
    assert headers["x-tenant"] == "acme"
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"] == delivery.json()["id"]
    assert "x-injected" not in headers
    assert "x-evil" not in headers

    # An edit checks the whole webhook, stored headers included: they are named until mended.
    status, answer = await api.call("PUT", hook, {"name": "renamed"})
    assert status == 422, answer
    assert set(answer["errors"]) == {
        "custom_headers.1.key",
        "custom_headers.2.key",
        "custom_headers.3.value",
        "custom_headers.4.key",
    }
    status, mended = await api.call(
        "PUT", hook, {"name": "renamed", "custom_headers": [{"key": "X-Tenant", "value": "****"}]}
    )
    assert status == 200, mended
    assert (await _sent_headers(api, hook, receiver))["x-tenant"] == "acme"
