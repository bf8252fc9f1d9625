"""Schemathesis against the live ingest service: no 5xx, no answer that breaks the document, and
no request that breaks the document accepted (`negative_data_rejection`).

The service runs as its own process, as in production, with the real broker and Redis, and the
document is read from the service itself.

The fuzzing runs with the garbage collector paused. On CPython 3.11.7 a collection that starts
inside hypothesis's `ast.parse` may finalize a leftover socket of an earlier test; pytest then
formats that warning's traceback, which parses source again, and the interrupted parse fails
with "AST constructor recursion depth mismatch" (a CPython bug, fixed in 3.11.8).
Every operation is fuzzed with valid and invalid inputs, once with the ids schemathesis makes up
(mostly 404s) and once with path ids pinned to a seeded agent, campaign, call and DNC number.
Answers that made-up data rarely reaches (a 201 call, a 409 duplicate, a 207 batch, a webhook's
deliveries) are then checked against the document with hand-picked requests.
"""

from __future__ import annotations

import asyncio
import gc
import re
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import SearchStrategy
from schemathesis import APIOperation, BaseSchema, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from services.ingest.openapi import DOCS_PATH, OPENAPI_PATH, OPERATIONS, Operation
from tests.conftest import KafkaServer, RedisServer
from tests.stack import Stack
from tests.support import ALWAYS_OPEN, AUTH, Receiver

pytestmark = pytest.mark.integration
Result = TypeVar("Result")
MAX_EXAMPLES = 15


class Loop:
    """An event loop in a thread of its own, for a webhook receiver while the test blocks."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ingest", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Result]) -> Result:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@dataclass
class LiveIngest:
    base_url: str
    seeded: dict[str, str]  # path parameter → id of a seeded object
    loop: Loop


async def _seed(base_url: str) -> dict[str, str]:
    """An agent, an active campaign and one queued call in it."""
    async with aiohttp.ClientSession(base_url, headers=AUTH) as session:

        async def call(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
            async with session.request(method, f"/api/v1{path}", json=body) as response:
                assert response.status < 300, await response.text()
                answer: dict[str, Any] = await response.json()
                return answer

        agent = (await call("POST", "/agents", {"name": "A", "prompt": "Hi"}))["data"]
        campaign = (await call("POST", "/campaigns", {**ALWAYS_OPEN, "agent_id": agent["id"]}))[
            "data"
        ]
        await call("PATCH", f"/campaigns/{campaign['id']}/status", {"status": "active"})
        made = await call("POST", f"/campaigns/{campaign['id']}/call", {"to": "+12125550123"})
        await call("POST", "/dnc", {"numbers": ["+12125550199"], "reason": "seed"})
    return {
        "agent_id": agent["id"],
        "campaign_id": campaign["id"],
        "call_id": made["campaign_call"]["id"],
        "number": "+12125550199",
    }


@pytest.fixture
def live_ingest(
    kafka_server: KafkaServer, redis_server: RedisServer, tmp_path: Path
) -> Iterator[LiveIngest]:
    # The stack lets the known-requests test point a webhook at a receiver on loopback.
    stack = Stack(
        kafka_server.bootstrap,
        redis_server.url,
        tmp_path,
        extra_env={"INGEST_MAX_BODY_BYTES": str(256 * 1024)},
    )
    try:
        # The notifier sends the test events and redeliveries the API queues.
        stack.start(["ingest", "notifier"])
        seeded = asyncio.run(_seed(stack.base_url))
        loop = Loop()
        try:
            yield LiveIngest(stack.base_url, seeded, loop)
        finally:
            loop.close()
        assert all(process.alive() for process in stack.all()), stack.logs_text()
    finally:
        stack.stop()


Case = schemathesis.Case[APIOperation[Any, Any, Any, Any]]
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    negative_data_rejection,
]


def _load_schema(live: LiveIngest) -> BaseSchema:
    config = schemathesis.Config.from_dict(
        {"base-url": f"{live.base_url}/api/v1", "headers": AUTH, "request-timeout": 30}
    )
    return schemathesis.openapi.from_url(f"{live.base_url}{OPENAPI_PATH}", config=config)


def _exercise(strategy: SearchStrategy[Case]) -> None:
    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case) -> None:
        case.call_and_validate(headers=AUTH, checks=CHECKS)

    run()


@pytest.fixture
def collector_paused() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.usefixtures("collector_paused")
def test_the_service_keeps_to_its_document(
    live_ingest: LiveIngest, subtests: pytest.Subtests
) -> None:
    """Every operation, valid and invalid inputs, with made-up ids and with the seeded ones."""
    schema = _load_schema(live_ingest)
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    assert len(operations) == len(OPERATIONS)
    rows: dict[tuple[str, str], Operation] = {(row.method, row.path): row for row in OPERATIONS}
    for operation in operations:
        names = re.findall(r"{(\w+)}", operation.path)
        # Webhooks are not seeded: a fuzzed update could point one at a host that never answers.
        seeded = {name: live_ingest.seeded[name] for name in names if name in live_ingest.seeded}
        variants = [("made-up ids", None), ("seeded ids", seeded)] if seeded else [("", None)]
        row = rows[(operation.method.upper(), operation.path)]
        # An id in the path has no invalid form to send: only a body or a query can be negated.
        negatable = row.body is not None or row.query is not None
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if negatable else [])
        for mode in modes:
            for label, path_parameters in variants:
                with subtests.test(msg=f"{operation.label} {mode.value} {label}".strip()):
                    _exercise(operation.as_strategy(mode, path_parameters=path_parameters))


def test_known_requests_get_the_documented_answers(live_ingest: LiveIngest) -> None:
    """One hand-picked request per success and refusal that made-up data rarely reaches."""
    schema = _load_schema(live_ingest)
    seeded = live_ingest.seeded
    campaign = {"campaign_id": seeded["campaign_id"]}

    def check(method: str, path: str, status: int, **case: Any) -> Any:
        headers = {**AUTH, **case.pop("headers", {})}
        operation = schema[path][method]
        response = operation.Case(**case).call_and_validate(headers=headers, checks=CHECKS)
        assert response.status_code == status, response.text
        return response.json()

    body = {**ALWAYS_OPEN, "agent_id": seeded["agent_id"], "description": "second"}
    draft = check("POST", "/campaigns", 201, body=body)["data"]
    check("GET", "/campaigns", 200, query={"status": "draft", "search": "SECOND"})
    hook = {
        "name": "CRM",
        "webhook_url": "https://hooks.example.com/x",
        "events": ["campaign.started"],
    }
    check("POST", "/campaigns/{campaign_id}/webhooks", 201, path_parameters=campaign, body=hook)
    hook["webhook_secret"] = "whsec_c2VjcmV0"
    check("POST", "/campaigns/{campaign_id}/webhooks", 201, path_parameters=campaign, body=hook)
    make = "/campaigns/{campaign_id}/call"
    check("POST", make, 409, path_parameters=campaign, body={"to": "+1 (212) 555-0123"})
    check("POST", make, 422, path_parameters=campaign, body={"to": seeded["number"]})
    created = check(
        "POST", make, 201, path_parameters=campaign, body={"to": "+12125550124", "context": {}}
    )
    call = {**campaign, "call_id": created["campaign_call"]["id"]}
    items = [{"to": "+12125550125"}, {"to": "+12125550125"}, {"to": "nope"}, 7]
    batch = check(
        "POST",
        "/campaigns/{campaign_id}/calls/batch",
        207,
        path_parameters=campaign,
        body={"calls": items},
    )
    assert [result["status"] for result in batch["data"]["results"]] == [201, 409, 422, 422]
    calls = "/campaigns/{campaign_id}/calls"
    check("GET", calls, 200, path_parameters=campaign, query={"to": "+12125550124"})
    check("GET", f"{calls}/{{call_id}}", 200, path_parameters=call)
    check("DELETE", f"{calls}/{{call_id}}", 200, path_parameters=call)
    check("DELETE", f"{calls}/{{call_id}}", 409, path_parameters=call)
    numbers = {"numbers": ["+12125550150", "x"], "campaign_id": seeded["campaign_id"]}
    check("POST", "/dnc", 201, body={**numbers, "expires_at": "2999-01-01T00:00:00Z"})
    check("GET", "/dnc", 200, query={"number": seeded["number"]})
    removal = {"path_parameters": {"number": "+12125550150"}, "query": campaign}
    check("DELETE", "/dnc/{number}", 200, **removal)
    check("DELETE", "/dnc/{number}", 404, **removal)
    check("POST", "/dnc", 413, body={"numbers": ["+12125550150"] * 20_000})
    status = "/campaigns/{campaign_id}/status"
    check("PATCH", status, 400, path_parameters=campaign, body={"status": "draft"})
    check("DELETE", "/campaigns/{campaign_id}", 403, path_parameters=campaign)
    closed = {"campaign_id": draft["id"]}
    check("PATCH", status, 200, path_parameters=closed, body={"status": "cancelled"})
    check("PUT", "/campaigns/{campaign_id}", 409, path_parameters=closed, body={"name": "n"})
    check("DELETE", "/campaigns/{campaign_id}", 200, path_parameters=closed)
    key = {"Idempotency-Key": "known-1"}
    check("POST", "/agents", 201, body={"name": "B", "prompt": "p"}, headers=key)
    check("POST", "/agents", 201, body={"name": "B", "prompt": "p"}, headers=key)
    check("POST", "/agents", 422, body={"name": "C", "prompt": "p"}, headers=key)
    check("GET", "/agents", 401, headers={"Authorization": "Bearer nope"})


def test_known_webhook_requests_get_the_documented_answers(live_ingest: LiveIngest) -> None:
    schema = _load_schema(live_ingest)
    receiver = live_ingest.loop.run(Receiver().start())
    campaign = {"campaign_id": live_ingest.seeded["campaign_id"]}

    def check(method: str, path: str, status: int, **case: Any) -> Any:
        operation = schema[f"/campaigns/{{campaign_id}}/webhooks{path}"][method]
        response = operation.Case(**case).call_and_validate(headers=AUTH, checks=CHECKS)
        assert response.status_code == status, response.text
        return response.json().get("data")

    try:
        body = {"name": "R", "webhook_url": receiver.url, "events": ["campaign.started"]}
        created = check("POST", "", 201, path_parameters=campaign, body=body)
        assert created["webhook_secret"].startswith("whsec_")
        hook = {**campaign, "webhook_id": created["id"]}
        bad_header = {"custom_headers": [{"key": "Host", "value": "x"}]}
        check("POST", "", 422, path_parameters=campaign, body={**body, **bad_header})
        credentials = {
            "authorization_scheme": "bearer",
            "authorization_value": "tok_live_0123456789",
            "custom_headers": [{"key": "X-Tenant", "value": "acme"}],
        }
        check("PUT", "/{webhook_id}", 200, path_parameters=hook, body=credentials)
        check("GET", "", 200, path_parameters=campaign)
        read = check("GET", "/{webhook_id}", 200, path_parameters=hook)
        assert read["authorization_value"] == "****6789"
        check("PUT", "/{webhook_id}", 200, path_parameters=hook, body={"timeout": 10})
        check("PUT", "/{webhook_id}", 422, path_parameters=hook, body={"events": ["nope"]})
        check("PUT", "/{webhook_id}", 422, path_parameters=hook, body=bad_header)
        assert check("PATCH", "/{webhook_id}/toggle", 200, path_parameters=hook)["enabled"] is False
        sent = check("POST", "/{webhook_id}/test", 200, path_parameters=hook)
        assert sent["success"] is True
        assert len(receiver.deliveries) == 1
        log = check("GET", "/{webhook_id}/deliveries", 200, path_parameters=hook)
        delivery = {**hook, "delivery_id": log[0]["delivery_id"]}
        redeliver = "/{webhook_id}/deliveries/{delivery_id}/redeliver"
        check("POST", redeliver, 202, path_parameters=delivery)
        check("POST", redeliver, 404, path_parameters={**delivery, "delivery_id": "nope"})
        check("DELETE", "/{webhook_id}", 200, path_parameters=hook)
        check("GET", "/{webhook_id}", 404, path_parameters=hook)
    finally:
        live_ingest.loop.run(receiver.stop())


def test_the_document_and_its_page_need_no_token(live_ingest: LiveIngest) -> None:
    async def fetch() -> list[tuple[int, str, str]]:
        async with aiohttp.ClientSession(live_ingest.base_url) as session:
            answers = []
            for path in (OPENAPI_PATH, DOCS_PATH, f"{OPENAPI_PATH}x", "/api/v1/agents"):
                async with session.get(path) as response:
                    answers.append((response.status, response.content_type, await response.text()))
            return answers

    document, page, near_miss, guarded = live_ingest.loop.run(fetch())
    assert document[:2] == (200, "application/json")
    assert '"openapi":"3.1.0"' in document[2]
    assert page[:2] == (200, "text/html")
    assert OPENAPI_PATH in page[2]
    # Only the document's own path is open; everything else under /api/v1 wants the token.
    assert near_miss[0] == 401
    assert guarded[0] == 401
