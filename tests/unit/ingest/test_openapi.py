"""The OpenAPI document: valid 3.1, in step with the app's routes, true to the handlers' views."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import jsonschema_rs
import orjson
import pytest
import schemathesis
from schemathesis.core.result import Ok

from services.ingest.app import create_app
from services.ingest.domain.errors import Invalid
from services.ingest.domain.pagination import MAX_PAGE, PageRequest
from services.ingest.domain.stats import campaign_stats
from services.ingest.handlers.calls import _attempts, _created_body
from services.ingest.handlers.common import agent_view, call_view, campaign_view
from services.ingest.handlers.dnc import entry_view
from services.ingest.handlers.docs import PAGE
from services.ingest.handlers.webhooks import webhook_view
from services.ingest.openapi import (
    API_PREFIX,
    DOCS_PATH,
    OPENAPI_PATH,
    OPERATIONS,
    build_document,
    document_bytes,
    documented_routes,
)
from services.ingest.settings import IngestSettings
from shared.models import Agent, Call, CallStatus, Campaign, CampaignStatus, Webhook
from shared.rules.delivery_attempts import AttemptRecord, Trigger
from shared.rules.delivery_retries import DeliveryState
from shared.rules.dnc import DncEntry, EntrySource, campaign_scope, scope_for
from shared.rules.input_bounds import (
    MAX_CALL_JSON_BYTES,
    MAX_CUSTOM_HEADERS,
    MAX_DESCRIPTION_CHARS,
    MAX_INITIAL_CALL_DELAY_S,
)
from shared.rules.outcomes import KNOWN_ERRORS, Outcome

NOW = datetime(2026, 3, 2, 14, 30, 5, 123456, tzinfo=UTC)
METHODS = ("get", "post", "put", "patch", "delete")
# Health, the document and its page, and the route that answers 404 or 405 for the rest.
# The operations routes (health, readiness, metrics) are not part of the API.
UNDOCUMENTED = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", DOCS_PATH),
    ("GET", OPENAPI_PATH),
    ("*", "/{path}"),
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert method in METHODS
            yield method, path, operation


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _validator(document: dict[str, Any], component: str) -> jsonschema_rs.Validator:
    """A validator for one component, its references resolved inside the document."""
    root = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": f"#/components/schemas/{component}",
        "components": document["components"],
    }
    return jsonschema_rs.validator_for(root, validate_formats=True)


def _conforms(document: dict[str, Any], component: str, body: Any) -> None:
    """The body as the handler would send it (through JSON) satisfies the component."""
    errors = [
        str(error)
        for error in _validator(document, component).iter_errors(orjson.loads(orjson.dumps(body)))
    ]
    assert not errors, errors


# --- The document itself --------------------------------------------------------------------


def test_it_is_a_valid_openapi_3_1_document(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    schema = schemathesis.openapi.from_dict(document)
    schema.validate()  # the OpenAPI 3.1 meta-schema
    results = list(schema.get_all_operations())
    assert len(results) == len(OPERATIONS)
    assert all(isinstance(result, Ok) for result in results), results


@pytest.mark.parametrize("name", sorted(build_document()["components"]["schemas"]))
def test_every_component_is_a_valid_json_schema(document: dict[str, Any], name: str) -> None:
    jsonschema_rs.meta.validate(document["components"]["schemas"][name])


def test_every_reference_resolves_and_every_component_is_used(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    referenced = {ref.removeprefix("#/components/schemas/") for ref in _refs(document)}
    assert referenced <= set(schemas)
    assert set(schemas) <= referenced


def test_it_is_generated_the_same_every_time(document: dict[str, Any]) -> None:
    assert orjson.loads(document_bytes()) == document == build_document()


# --- In step with the app -------------------------------------------------------------------


def _app_routes() -> set[tuple[str, str]]:
    app = create_app(IngestSettings(api_tokens="", dev_api_token=None))
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }


def test_every_route_of_the_app_is_documented_and_nothing_else() -> None:
    routes = _app_routes()
    assert routes >= UNDOCUMENTED
    assert routes - UNDOCUMENTED == documented_routes()


def test_the_table_names_each_route_once_under_the_base_path() -> None:
    assert len(documented_routes()) == len(OPERATIONS)
    assert all(path.startswith(API_PREFIX + "/") for _, path in documented_routes())
    ids = [operation.operation_id for operation in OPERATIONS]
    assert len(ids) == len(set(ids))


def test_the_document_has_one_entry_per_row(document: dict[str, Any]) -> None:
    listed = {(method.upper(), API_PREFIX + path) for method, path, _ in _operations(document)}
    assert listed == documented_routes()
    assert document["servers"] == [{"url": API_PREFIX}]


# --- What every operation promises ----------------------------------------------------------


def test_every_operation_needs_the_bearer_token_and_documents_401(
    document: dict[str, Any],
) -> None:
    assert document["security"] == [{"bearerAuth": []}]
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {"type": "http", "scheme": "bearer"}
    for _, _, operation in _operations(document):
        body = operation["responses"]["401"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/UnauthenticatedBody"}


def test_every_operation_documents_its_refusals(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        statuses = set(operation["responses"])
        parameters = {(p["in"], p["name"]) for p in operation.get("parameters", [])}
        label = f"{method} {path}"
        if "{" in path:
            assert "404" in statuses, label
            for name in path.replace("}", "{").split("{")[1::2]:
                assert ("path", name) in parameters, label
        if "requestBody" in operation:
            assert {"408", "413", "422"} <= statuses, label
        if method == "post":
            assert {"409", "422"} <= statuses, label
            assert ("header", "Idempotency-Key") in parameters, label
        if any(where == "query" and name == "page" for where, name in parameters):
            assert "422" in statuses, label
        successes = [status for status in statuses if status.startswith("2")]
        assert len(successes) == 1, label
        for status, answer in operation["responses"].items():
            assert answer["description"], (label, status)
            assert "schema" in answer["content"]["application/json"], (label, status)


def test_every_operation_documents_429_with_its_retry_after(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        refused = operation["responses"]["429"]
        assert refused["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"
        }, (method, path)
        assert "RATE_LIMITED" in refused["description"], (method, path)
        retry_after = refused["headers"]["Retry-After"]
        assert retry_after["required"] is True
        assert retry_after["schema"] == {"type": "integer", "minimum": 1}


def test_make_campaign_call_documents_both_409_bodies_and_its_own_201(
    document: dict[str, Any],
) -> None:
    operation = document["paths"]["/campaigns/{campaign_id}/call"]["post"]
    conflict = operation["responses"]["409"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/DuplicateCall"} in conflict["anyOf"]
    assert {"$ref": "#/components/schemas/ErrorBody"} in conflict["anyOf"]
    created = operation["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/CallCreated"}
    body = document["components"]["schemas"]["MakeCallBody"]
    assert "to" in body["required"]


def test_list_operations_document_the_paging_parameters(document: dict[str, Any]) -> None:
    operation = document["paths"]["/campaigns"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert parameters["per_page"]["schema"]["maximum"] == 100
    assert parameters["per_page"]["schema"]["default"] == 20
    assert set(parameters) == {"page", "per_page", "status", "campaign_type", "agent_id", "search"}
    assert not any(p["required"] for p in parameters.values())
    lookup = document["paths"]["/dnc"]["get"]["parameters"]
    assert [(p["name"], p["required"]) for p in lookup] == [("number", True)]


@pytest.mark.parametrize(
    "page",
    ["", "0", "-1", "1.5", "²", "٣", str(MAX_PAGE + 1), "9" * 5000],
    ids=["empty", "zero", "negative", "decimal", "superscript", "arabic-indic", "past-max", "huge"],
)
def test_a_page_out_of_the_documented_range_is_a_422(document: dict[str, Any], page: str) -> None:
    parameters = document["paths"]["/agents"]["get"]["parameters"]
    assert parameters[0]["name"] == "page"
    assert parameters[0]["schema"]["maximum"] == MAX_PAGE
    with pytest.raises(Invalid) as caught:
        PageRequest.from_query({"page": page})
    assert list(caught.value.errors) == ["page"]


def test_the_largest_documented_page_is_answered() -> None:
    request = PageRequest.from_query({"page": f"00{MAX_PAGE}", "per_page": "100"})
    _, envelope = request.slice([])
    assert envelope["current_page"] == MAX_PAGE
    assert orjson.dumps(envelope)


def test_a_partial_update_requires_no_field(document: dict[str, Any]) -> None:
    update = document["components"]["schemas"]["UpdateCampaign"]
    assert "required" not in update
    assert "name" in update["properties"]


# --- True to what the handlers build ---------------------------------------------------------


def _agent() -> Agent:
    return Agent(
        id="agent-1", environment_id="env-a", name="A", prompt="Hi", voice=None, created_at=NOW
    )


def _campaign(**overrides: Any) -> Campaign:
    fields: dict[str, Any] = {
        "id": "campaign-1",
        "environment_id": "env-a",
        "name": "Spring",
        "campaign_type": "sales",
        "agent_id": "agent-1",
        "start_date": "2026-01-01",
        "status": CampaignStatus.ACTIVE,
        "created_at": NOW,
        "updated_at": NOW,
        **overrides,
    }
    return Campaign.model_validate(fields)


def _call(**overrides: Any) -> Call:
    fields: dict[str, Any] = {
        "id": "call-1",
        "campaign_id": "campaign-1",
        "environment_id": "env-a",
        "to": "+12125550123",
        "scheduled_at": NOW,
        "scheduling_reason": "outside_call_hours",
        "created_at": NOW,
        "updated_at": NOW,
        **overrides,
    }
    return Call.model_validate(fields)


def test_an_agent_answer_conforms(document: dict[str, Any]) -> None:
    _conforms(document, "AgentResponse", {"success": True, "data": agent_view(_agent())})


@pytest.mark.parametrize(
    "campaign",
    [
        _campaign(),
        _campaign(
            end_date="2026-12-31",
            description="d",
            call_time_ranges=[
                {"start": "13:00", "end": "24:00"},
                {"start": "08:00", "end": "12:00"},
            ],
            recipient_local_hours=None,
            success_cooldown_hours=2.5,
            status=CampaignStatus.DRAFT,
        ),
    ],
    ids=["defaults", "every-field"],
)
@pytest.mark.parametrize("with_agent", [True, False], ids=["agent", "agent-gone"])
def test_a_campaign_answer_conforms(
    document: dict[str, Any], campaign: Campaign, with_agent: bool
) -> None:
    view = campaign_view(campaign, _agent() if with_agent else None)
    view["stats"] = campaign_stats(
        {"total": 3, "completed": 1, "failed": 1, "queued": 1, "completed_duration_ms": 61_500}
    )
    _conforms(document, "CampaignResponse", {"success": True, "data": view})
    page = {
        "success": True,
        "data": [view],
        "pagination": {
            "current_page": 1,
            "last_page": 1,
            "per_page": 20,
            "total": 1,
            "from": 1,
            "to": 1,
        },
    }
    _conforms(document, "CampaignPage", page)


def test_a_campaign_answer_with_an_unknown_key_breaks_the_document(
    document: dict[str, Any],
) -> None:
    view = campaign_view(_campaign(), _agent())
    view["stats"] = campaign_stats({})
    view["surprise"] = 1
    with pytest.raises(AssertionError):
        _conforms(document, "CampaignResponse", {"success": True, "data": view})


def test_call_answers_conform(document: dict[str, Any]) -> None:
    campaign = _campaign()
    _conforms(document, "CallCreated", _created_body(_call(), campaign))
    _conforms(document, "CallResponse", {"success": True, "data": call_view(_call())})
    history = {
        "started:1": "2026-03-02T14:30:05.123456Z",
        "outcome:1": orjson.dumps(
            {
                "status": "queued",
                "outcome": "no_answer",
                "error": None,
                "duration_seconds": 0,
                "ended_at": "2026-03-02T14:31:00Z",
            }
        ).decode(),
        "started:2": "2026-03-03T14:30:05Z",
    }
    detail = call_view(
        _call(status=CallStatus.IN_PROGRESS, attempt=2, scheduling_reason="cooldown")
    )
    detail["attempts"] = _attempts(history)
    _conforms(document, "CallDetailResponse", {"success": True, "data": detail})


def test_a_duplicate_answer_conforms_with_and_without_the_existing_state(
    document: dict[str, Any],
) -> None:
    summary: dict[str, Any] = {"id": "call-0", "campaign_id": "campaign-1", "to": "+12125550123"}
    body = {
        "success": False,
        "message": "A call to this number already exists in this campaign",
        "existing_call": summary,
    }
    _conforms(document, "DuplicateCall", body)
    summary.update(status="queued", created_at="2026-03-02T14:30:05Z")
    _conforms(document, "DuplicateCall", body)


def test_dnc_answers_conform(document: dict[str, Any]) -> None:
    entries = [
        DncEntry("+12125550123", scope_for(None), EntrySource.API, None, NOW),
        DncEntry(
            "+12125550123", campaign_scope("c"), EntrySource.AUTO, "outcome:completed", NOW, NOW
        ),
    ]
    _conforms(document, "DncEntryList", {"success": True, "data": [entry_view(e) for e in entries]})
    added = {"added": 1, "invalid": [{"index": 1, "number": 42, "message": "The to must be..."}]}
    _conforms(document, "NumbersAddedResponse", {"success": True, "data": added})


def test_webhook_answers_conform(document: dict[str, Any]) -> None:
    webhook = Webhook(
        id="hook-1",
        campaign_id="campaign-1",
        environment_id="env-a",
        name="CRM",
        webhook_url="https://hooks.example.com/x",
        events=["campaign.started"],
        webhook_secret="whsec_c2VjcmV0",
        authorization_scheme="bearer",
        authorization_value="tok_live_0123456789",
        custom_headers=[{"key": "X-A", "value": "1"}, {"key": "X-B", "value": ""}],
        created_at=NOW,
    )
    view = webhook_view(webhook)
    _conforms(document, "WebhookResponse", {"success": True, "data": view})
    view["webhook_secret"] = "whsec_c2VjcmV0"  # a created webhook shows its generated secret
    _conforms(document, "WebhookResponse", {"success": True, "data": view})
    disabled = webhook.model_copy(
        update={"enabled": False, "disabled_reason": "The endpoint answered 410 Gone."}
    )
    _conforms(document, "WebhookResponse", {"success": True, "data": webhook_view(disabled)})
    unset = webhook_view(webhook.model_copy(update={"authorization_value": None}))
    _conforms(document, "WebhookResponse", {"success": True, "data": unset})
    record = AttemptRecord(
        "delivery-1",
        "event-1",
        "webhook.test",
        1,
        Trigger.TEST,
        None,
        12.34,
        "timeout",
        NOW,
        DeliveryState.PENDING,
        NOW,
    )
    _conforms(document, "DeliveryAttemptResponse", {"success": True, "data": record.view()})
    answered = replace(
        record, status_code=503, error=None, response_body="busy", response_truncated=True
    )
    _conforms(document, "DeliveryAttemptResponse", {"success": True, "data": answered.view()})


@pytest.mark.parametrize(
    ("field", "leaked"),
    [
        ("authorization_value", "tok_live_0123456789"),
        ("custom_headers", [{"key": "X-A", "value": "1"}]),
    ],
)
def test_a_webhook_answer_that_shows_a_credential_breaks_the_document(
    document: dict[str, Any], field: str, leaked: Any
) -> None:
    webhook = Webhook(
        id="hook-1",
        campaign_id="campaign-1",
        environment_id="env-a",
        name="CRM",
        webhook_url="https://hooks.example.com/x",
        events=["campaign.started"],
        webhook_secret="whsec_c2VjcmV0",
        created_at=NOW,
    )
    view = {**webhook_view(webhook), field: leaked}

    with pytest.raises(AssertionError):
        _conforms(document, "WebhookResponse", {"success": True, "data": view})


# --- The page -------------------------------------------------------------------------------


def test_the_docs_page_is_self_contained_and_reads_the_document() -> None:
    assert f'"{OPENAPI_PATH}"' in PAGE
    for external in ("http://", "https://", "src=", "<link", "@import"):
        assert external not in PAGE


def test_the_document_shows_the_input_bounds(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    campaign = schemas["CreateCampaign"]["properties"]
    assert campaign["initial_call_delay"]["maximum"] == MAX_INITIAL_CALL_DELAY_S
    assert campaign["description"]["anyOf"][0]["maxLength"] == MAX_DESCRIPTION_CHARS
    assert campaign["auto_dnc_trigger_statuses"]["items"]["enum"] == list(Outcome)
    assert campaign["auto_dnc_trigger_errors"]["items"]["enum"] == list(KNOWN_ERRORS)
    webhook = schemas["CreateWebhookBody"]["properties"]
    assert webhook["custom_headers"]["maxItems"] == MAX_CUSTOM_HEADERS
    call = schemas["MakeCallBody"]["properties"]
    assert f"{MAX_CALL_JSON_BYTES:,} bytes" in call["payload"]["description"]
    create = document["paths"]["/campaigns/{campaign_id}/webhooks"]["post"]["responses"]
    assert "WEBHOOK_LIMIT_REACHED" in create["409"]["description"]
    listing = document["paths"]["/campaigns"]["get"]["parameters"]
    texts = {p["name"]: p["schema"] for p in listing if p["name"] in ("agent_id", "search")}
    assert all(schema["minLength"] == 1 for schema in texts.values())
