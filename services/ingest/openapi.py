"""The OpenAPI 3.1 document of the public API, generated from one table of operations.

`OPERATIONS` is the only description of the API's surface besides the route registrations in
`app.py` (a unit test keeps the two equal). Each row names the request model, the query model
and the response models per status; every schema in the document comes from those pydantic
models through `models_json_schema`, so changing a model changes the document. The answers
every operation shares (401 and 429; 408, 413 and 422 for a body; the Idempotency-Key
refusals of a POST) are added here once, not written in each row. Nothing is stored: the
document is built on the first request and kept in memory.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonSchemaMode, SkipJsonSchema, models_json_schema

from services.ingest.domain.pagination import DEFAULT_PER_PAGE, MAX_PAGE, MAX_PER_PAGE
from services.ingest.domain.query import MAX_ID_LENGTH, MAX_NUMBER_LENGTH, MAX_SEARCH_LENGTH
from services.ingest.domain.requests import (
    CampaignBody,
    ChangeCampaignStatus,
    CreateAgent,
    CreateCampaign,
    MakeCall,
)
from services.ingest.domain.responses import (
    AgentPage,
    AgentResponse,
    BatchBody,
    CallCreated,
    CallDetailResponse,
    CallPage,
    CallResponse,
    CampaignPage,
    CampaignResponse,
    DeletedResponse,
    DeliveryAttemptPage,
    DeliveryAttemptResponse,
    DncEntryList,
    DuplicateCall,
    ErrorBody,
    NumbersAddedResponse,
    NumbersRemovedResponse,
    RedeliveryQueuedResponse,
    UnauthenticatedBody,
    ValidationErrorBody,
    WebhookPage,
    WebhookResponse,
    without_default,
)
from services.ingest.handlers.calls import MAX_BATCH, CallBatch
from services.ingest.handlers.dnc import AddNumbers
from services.ingest.handlers.webhooks import WebhookBody
from services.ingest.idempotency import HEADER as IDEMPOTENCY_HEADER
from services.ingest.idempotency import MAX_KEY_LENGTH
from shared.models import CallStatus, CampaignStatus, CampaignType
from shared.rules.input_bounds import MAX_CALL_JSON_BYTES, MAX_WEBHOOKS_PER_CAMPAIGN
from shared.rules.prompts import MAX_PROMPT_BYTES
from shared.rules.webhook_payloads import WebhookEvent

API_PREFIX: Final = "/api/v1"
OPENAPI_PATH: Final = f"{API_PREFIX}/openapi.json"
DOCS_PATH: Final = "/docs"
REF_TEMPLATE: Final = "#/components/schemas/{model}"
JSON: Final = "application/json"

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


def _optional(description: str, max_length: int | None = None) -> Any:
    """A query parameter that may be left out (it is never `null`, nor empty)."""
    return Field(
        default=None,
        description=description,
        min_length=1 if max_length is not None else None,
        max_length=max_length,
        json_schema_extra=without_default,
    )


# --- Requests as documented, derived from the models the handlers parse them with -------------


class MakeCallBody(MakeCall):
    """The Make Campaign Call body; the handler checks `to` itself, for its documented messages."""

    to: str = Field(
        description="A dialable phone number; stored and compared in E.164.",
        examples=["+12125550123", "+1 (212) 555-0123"],
    )


class CallBatchBody(CallBatch):
    """Each item is checked on its own and answered in `results`, in request order."""

    # Any item is taken: one that is not a valid `MakeCallBody` is answered with its own 422
    # in `results`, so the batch as a whole refuses only a missing, empty or long `calls`.
    calls: list[Any] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=(
            "Make Campaign Call bodies (`MakeCallBody`); an invalid item gets its own 422 in "
            "`results` and the others go ahead."
        ),
    )


def _every_field_optional(schema: dict[str, Any]) -> None:
    schema.pop("required", None)


class UpdateCampaign(CampaignBody):
    """A partial update: the fields sent replace the stored ones, then every rule is checked."""

    model_config = ConfigDict(json_schema_extra=_every_field_optional)


class CreateWebhookBody(WebhookBody):
    """The webhook body, with the event names the handler accepts spelled out."""

    events: list[WebhookEvent] = Field(min_length=1)  # type: ignore[assignment]


class UpdateWebhook(CreateWebhookBody):
    """A partial update; `webhook_secret` left out or `null` keeps the secret. A credential
    (`webhook_secret`, `authorization_value`, a custom header's `value`, that header matched by
    `key`) sent back as the masked hint reads show keeps the stored value."""

    model_config = ConfigDict(json_schema_extra=_every_field_optional)


class PageQuery(BaseModel):
    page: int = Field(default=1, ge=1, le=MAX_PAGE, description="1-based page number.")
    per_page: int = Field(default=DEFAULT_PER_PAGE, ge=1, le=MAX_PER_PAGE)


class CampaignFilters(PageQuery):
    status: CampaignStatus | SkipJsonSchema[None] = _optional("Only campaigns in this status.")
    campaign_type: CampaignType | SkipJsonSchema[None] = _optional("Only this type.")
    agent_id: str | SkipJsonSchema[None] = _optional(
        "Only campaigns of this agent.", max_length=MAX_ID_LENGTH
    )
    search: str | SkipJsonSchema[None] = _optional(
        "Text in the name or the description.", max_length=MAX_SEARCH_LENGTH
    )


class CallFilters(PageQuery):
    status: CallStatus | SkipJsonSchema[None] = _optional("Only calls in this status.")
    to: str | SkipJsonSchema[None] = _optional(
        "Only calls to this number (any format).", max_length=MAX_NUMBER_LENGTH
    )


class DncLookup(BaseModel):
    number: str = Field(
        min_length=1,
        max_length=MAX_NUMBER_LENGTH,
        description="The number to look up, in any format.",
    )


class DncRemoval(BaseModel):
    campaign_id: str | SkipJsonSchema[None] = _optional(
        "Take the number off this campaign's list only; without it, off every list.",
        max_length=MAX_ID_LENGTH,
    )


# --- The table ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """One documented status: what it means and the bodies it may carry (`anyOf` when several)."""

    description: str
    models: tuple[type[BaseModel], ...]
    headers: Mapping[str, Any] = field(default_factory=dict)  # response headers it documents


def answer(
    description: str, *models: type[BaseModel], headers: Mapping[str, Any] | None = None
) -> Answer:
    return Answer(description, models, dict(headers or {}))


@dataclass(frozen=True, slots=True)
class Operation:
    method: Method
    path: str  # under API_PREFIX
    operation_id: str
    summary: str
    tag: str
    responses: Mapping[int, Answer]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    description: str = ""
    path_parameters: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path_parameters", tuple(re.findall(r"{(\w+)}", self.path)))

    @property
    def route(self) -> tuple[str, str]:
        return self.method, API_PREFIX + self.path


def _invalid(what: str = "A field is missing or invalid") -> Answer:
    return answer(f"{what}; `errors` names each field.", ValidationErrorBody)


def _missing(*codes: str) -> Answer:
    return answer(" or ".join(f"`{code}`" for code in codes) + ".", ErrorBody)


_CAMPAIGN_404 = _missing("CAMPAIGN_NOT_FOUND")
_WEBHOOK_404 = _missing("CAMPAIGN_NOT_FOUND", "WEBHOOK_NOT_FOUND")
_BAD_PAGE = _invalid("`page` or `per_page` is out of range")

OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation(
        "POST",
        "/agents",
        "createAgent",
        "Create an agent",
        "Agents",
        {201: answer("The agent.", AgentResponse), 422: _invalid()},
        body=CreateAgent,
        description=(
            "`prompt` may hold `{{placeholders}}` filled from a call's `payload`; it may not be "
            f"longer than {MAX_PROMPT_BYTES:,} bytes of UTF-8, as written or as a call's payload "
            "fills it in."
        ),
    ),
    Operation(
        "GET",
        "/agents",
        "listAgents",
        "List agents",
        "Agents",
        {200: answer("A page of agents, newest first.", AgentPage), 422: _BAD_PAGE},
        query=PageQuery,
    ),
    Operation(
        "GET",
        "/agents/{agent_id}",
        "getAgent",
        "Get an agent",
        "Agents",
        {200: answer("The agent.", AgentResponse), 404: _missing("AGENT_NOT_FOUND")},
    ),
    Operation(
        "POST",
        "/campaigns",
        "createCampaign",
        "Create a campaign",
        "Campaigns",
        {
            201: answer("The campaign, in status `draft`.", CampaignResponse),
            422: _invalid("A field is invalid, or `agent_id` names no agent of this environment"),
        },
        body=CreateCampaign,
    ),
    Operation(
        "GET",
        "/campaigns",
        "listCampaigns",
        "List campaigns",
        "Campaigns",
        {200: answer("A page of campaigns, newest first.", CampaignPage), 422: _BAD_PAGE},
        query=CampaignFilters,
        description="Newest first, by creation time (then id).",
    ),
    Operation(
        "GET",
        "/campaigns/{campaign_id}",
        "getCampaign",
        "Get a campaign",
        "Campaigns",
        {200: answer("The campaign with its stats.", CampaignResponse), 404: _CAMPAIGN_404},
    ),
    Operation(
        "PUT",
        "/campaigns/{campaign_id}",
        "updateCampaign",
        "Update a campaign",
        "Campaigns",
        {
            200: answer("The updated campaign.", CampaignResponse),
            404: _CAMPAIGN_404,
            409: answer("`CAMPAIGN_CLOSED`: completed or cancelled.", ErrorBody),
            422: _invalid("A field is invalid once merged with the stored ones"),
        },
        body=UpdateCampaign,
    ),
    Operation(
        "DELETE",
        "/campaigns/{campaign_id}",
        "deleteCampaign",
        "Delete a campaign",
        "Campaigns",
        {
            200: answer(
                "Deleted: it reads as gone from now on; its queued calls are cancelled and "
                "its data removed in the background.",
                DeletedResponse,
            ),
            403: answer("`CAMPAIGN_ACTIVE`: pause it first.", ErrorBody),
            404: _CAMPAIGN_404,
            409: answer("`CALLS_IN_PROGRESS`.", ErrorBody),
        },
        description=(
            "Answers at once. The campaign, its calls and webhooks read as gone (404) from "
            "then on; in the background its queued calls are cancelled (each with a "
            "`campaign_call.cancelled` event, reason `campaign_cancelled`) and every record of "
            "it is removed. Asked again while that runs, the answer is the same."
        ),
    ),
    Operation(
        "PATCH",
        "/campaigns/{campaign_id}/status",
        "changeCampaignStatus",
        "Move a campaign to another status",
        "Campaigns",
        {
            200: answer("The campaign in its new status.", CampaignResponse),
            400: answer("`INVALID_TRANSITION`.", ErrorBody),
            404: _CAMPAIGN_404,
            422: _invalid(),
        },
        body=ChangeCampaignStatus,
        description=(
            "draft → active | cancelled; active → paused | completed | cancelled; "
            "paused → active | completed | cancelled. Completing or cancelling answers once "
            "the move is stored; every queued call is then cancelled in the background, each "
            "with a `campaign_call.cancelled` event (reason `campaign_completed` or "
            "`campaign_cancelled`)."
        ),
    ),
    Operation(
        "POST",
        "/campaigns/{campaign_id}/webhooks",
        "createWebhook",
        "Create a webhook",
        "Webhooks",
        {
            201: answer(
                "The webhook, its credentials masked; a generated secret is shown once, in full.",
                WebhookResponse,
            ),
            404: _CAMPAIGN_404,
            409: answer(
                f"`WEBHOOK_LIMIT_REACHED`: the campaign has {MAX_WEBHOOKS_PER_CAMPAIGN} "
                "webhooks already.",
                ErrorBody,
            ),
            422: _invalid(
                "A field is invalid (a custom header under `custom_headers.<index>.key` or "
                "`.value`), or the URL points at a private address"
            ),
        },
        body=CreateWebhookBody,
        description=f"A campaign may have at most {MAX_WEBHOOKS_PER_CAMPAIGN} webhooks.",
    ),
    Operation(
        "GET",
        "/campaigns/{campaign_id}/webhooks",
        "listWebhooks",
        "List a campaign's webhooks",
        "Webhooks",
        {
            200: answer("A page of webhooks; credentials only as masked hints.", WebhookPage),
            404: _CAMPAIGN_404,
            422: _BAD_PAGE,
        },
        query=PageQuery,
    ),
    Operation(
        "GET",
        "/campaigns/{campaign_id}/webhooks/{webhook_id}",
        "getWebhook",
        "Get a webhook",
        "Webhooks",
        {
            200: answer("The webhook; credentials only as masked hints.", WebhookResponse),
            404: _WEBHOOK_404,
        },
    ),
    Operation(
        "PUT",
        "/campaigns/{campaign_id}/webhooks/{webhook_id}",
        "updateWebhook",
        "Update a webhook",
        "Webhooks",
        {
            200: answer("The updated webhook; credentials only as masked hints.", WebhookResponse),
            404: _WEBHOOK_404,
            422: _invalid("A field is invalid once merged with the stored ones"),
        },
        body=UpdateWebhook,
    ),
    Operation(
        "DELETE",
        "/campaigns/{campaign_id}/webhooks/{webhook_id}",
        "deleteWebhook",
        "Delete a webhook",
        "Webhooks",
        {200: answer("Deleted, with its deliveries log.", DeletedResponse), 404: _WEBHOOK_404},
    ),
    Operation(
        "PATCH",
        "/campaigns/{campaign_id}/webhooks/{webhook_id}/toggle",
        "toggleWebhook",
        "Enable a disabled webhook, or disable an enabled one",
        "Webhooks",
        {
            200: answer("The webhook with `enabled` flipped; credentials masked.", WebhookResponse),
            404: _WEBHOOK_404,
        },
    ),
    Operation(
        "POST",
        "/campaigns/{campaign_id}/webhooks/{webhook_id}/test",
        "testWebhook",
        "Send a signed `webhook.test` event now",
        "Webhooks",
        {
            200: answer(
                "How the attempt went; within 10 s, or `success: false` with an error saying "
                "the attempt is still on its way (the deliveries log gets its result).",
                DeliveryAttemptResponse,
            ),
            404: _WEBHOOK_404,
        },
        description="Sent by the notifier, enabled or not, with at most an 8 s timeout.",
    ),
    Operation(
        "GET",
        "/campaigns/{campaign_id}/webhooks/{webhook_id}/deliveries",
        "listWebhookDeliveries",
        "List a webhook's delivery attempts",
        "Webhooks",
        {
            200: answer("A page of attempts, newest first.", DeliveryAttemptPage),
            404: _WEBHOOK_404,
            422: _BAD_PAGE,
        },
        query=PageQuery,
    ),
    Operation(
        "POST",
        "/campaigns/{campaign_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
        "redeliverWebhookDelivery",
        "Send a stored delivery again",
        "Webhooks",
        {
            202: answer("Queued; the deliveries log shows the attempt.", RedeliveryQueuedResponse),
            404: _missing("CAMPAIGN_NOT_FOUND", "WEBHOOK_NOT_FOUND", "DELIVERY_NOT_FOUND"),
            409: answer("`DELIVERY_IN_PROGRESS`: an attempt is under way.", ErrorBody),
        },
        description=(
            "The notifier sends the same body and `webhook-id` with a new timestamp and "
            "signature, enabled or not."
        ),
    ),
    Operation(
        "POST",
        "/campaigns/{campaign_id}/call",
        "makeCampaignCall",
        "Make Campaign Call",
        "Calls",
        {
            201: answer("Queued, with the earliest moment every rule allows.", CallCreated),
            404: _CAMPAIGN_404,
            409: answer(
                "The number already has a live call in this campaign (`existing_call`), "
                "or `CAMPAIGN_CLOSED`.",
                DuplicateCall,
                ErrorBody,
            ),
            422: _invalid(
                "`to` is missing, invalid or on the do-not-call list, `payload` makes the agent's "
                f"prompt longer than {MAX_PROMPT_BYTES:,} bytes, `payload` or `context` is over "
                f"{MAX_CALL_JSON_BYTES:,} bytes as JSON, or a field is"
            ),
            503: answer("`UNAVAILABLE`: the campaign kept changing; retry.", ErrorBody),
        },
        body=MakeCallBody,
    ),
    Operation(
        "POST",
        "/campaigns/{campaign_id}/calls/batch",
        "makeCampaignCalls",
        "Make many campaign calls",
        "Calls",
        {
            207: answer("One result per call, each its own 201/409/422/503 body.", BatchBody),
            404: _CAMPAIGN_404,
            422: _invalid("`calls` is missing, empty or too long"),
        },
        body=CallBatchBody,
    ),
    Operation(
        "GET",
        "/campaigns/{campaign_id}/calls",
        "listCalls",
        "List a campaign's calls",
        "Calls",
        {
            200: answer("A page of calls, newest first.", CallPage),
            404: _CAMPAIGN_404,
            422: _invalid("A filter or the page is invalid"),
        },
        query=CallFilters,
        description=(
            "Newest first, by creation time (then id). A call that has been ended for the "
            "retention period (`CALL_RETENTION_SECONDS`, 30 days by default) is no longer "
            "listed, nor counted in `total`; the campaign's `stats` still count it."
        ),
    ),
    Operation(
        "GET",
        "/campaigns/{campaign_id}/calls/{call_id}",
        "getCall",
        "Get a call with its attempts",
        "Calls",
        {
            200: answer("The call.", CallDetailResponse),
            404: _missing("CAMPAIGN_NOT_FOUND", "CALL_NOT_FOUND"),
        },
        description=(
            "A call that has been ended for the retention period (`CALL_RETENTION_SECONDS`, "
            "30 days by default) is removed: `CALL_NOT_FOUND`."
        ),
    ),
    Operation(
        "DELETE",
        "/campaigns/{campaign_id}/calls/{call_id}",
        "cancelCall",
        "Cancel a queued call",
        "Calls",
        {
            200: answer("The cancelled call.", CallResponse),
            404: _missing("CAMPAIGN_NOT_FOUND", "CALL_NOT_FOUND"),
            409: answer("`CALL_NOT_CANCELLABLE`: it is dialing or has ended.", ErrorBody),
        },
    ),
    Operation(
        "POST",
        "/dnc",
        "addDncNumbers",
        "Add numbers to a do-not-call list",
        "Do-not-call list",
        {
            201: answer("How many were added; invalid numbers by index.", NumbersAddedResponse),
            404: _CAMPAIGN_404,
            422: _invalid(),
        },
        body=AddNumbers,
    ),
    Operation(
        "GET",
        "/dnc",
        "getDncEntries",
        "Look a number up on the do-not-call lists",
        "Do-not-call list",
        {200: answer("Every live entry of the number.", DncEntryList), 422: _invalid()},
        query=DncLookup,
    ),
    Operation(
        "DELETE",
        "/dnc/{number}",
        "removeDncNumber",
        "Take a number off the do-not-call lists",
        "Do-not-call list",
        {
            200: answer("How many entries were removed.", NumbersRemovedResponse),
            404: _missing("DNC_ENTRY_NOT_FOUND"),
            422: _invalid("The number or `campaign_id` is invalid"),
        },
        query=DncRemoval,
    ),
)

_PATH_PARAMETERS: Final = {
    "agent_id": "The agent's id.",
    "campaign_id": "The campaign's id.",
    "call_id": "The call's id.",
    "webhook_id": "The webhook's id.",
    "delivery_id": "The delivery's id, from the deliveries log.",
    "number": "The number, in any format (`+12125550123`).",
}

# --- What every operation shares ---------------------------------------------------------------

_UNAUTHENTICATED = answer("The bearer token is missing or unknown.", UnauthenticatedBody)
_TOO_LARGE = answer("`TOO_LARGE`: the body is over the size limit.", ErrorBody)
_BODY_TIMEOUT = answer(
    "`REQUEST_TIMEOUT`: the body did not arrive in time; the connection is closed.", ErrorBody
)
_RATE_LIMITED = answer(
    "`RATE_LIMITED`: the environment is over its request rate (every authenticated request "
    "counts, a batch one per item); nothing was done. Retry after `Retry-After` seconds.",
    ErrorBody,
    headers={
        "Retry-After": {
            "description": "Whole seconds until the environment's allowance takes the request.",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    },
)
_BAD_BODY = answer(
    "A body that is not a JSON object, or not sent as JSON, is reported under `body`.",
    ValidationErrorBody,
)
_KEY_REUSED = answer(
    f"`IDEMPOTENCY_KEY_REUSED`: the {IDEMPOTENCY_HEADER} came with another body; "
    f"or the {IDEMPOTENCY_HEADER} itself is invalid.",
    ErrorBody,
    ValidationErrorBody,
)
_KEY_IN_PROGRESS = answer(
    f"`IDEMPOTENCY_KEY_IN_PROGRESS`: a request with this {IDEMPOTENCY_HEADER} is running.",
    ErrorBody,
)


def _merged(first: Answer | None, second: Answer) -> Answer:
    if first is None:
        return second
    models = tuple(dict.fromkeys(first.models + second.models))
    headers = {**first.headers, **second.headers}
    if second.description in first.description:
        return Answer(first.description, models, headers)
    return Answer(f"{first.description} {second.description}", models, headers)


def responses_of(operation: Operation) -> dict[int, Answer]:
    """The operation's own answers plus those every operation of its kind shares."""
    shared: list[tuple[int, Answer]] = [(401, _UNAUTHENTICATED), (429, _RATE_LIMITED)]
    if operation.body is not None:
        shared += [(408, _BODY_TIMEOUT), (413, _TOO_LARGE), (422, _BAD_BODY)]
    if operation.method == "POST":
        shared += [(409, _KEY_IN_PROGRESS), (422, _KEY_REUSED)]
    answers = dict(operation.responses)
    for status, extra in shared:
        answers[status] = _merged(answers.get(status), extra)
    return dict(sorted(answers.items()))


def _models(operations: tuple[Operation, ...]) -> Iterator[tuple[type[BaseModel], JsonSchemaMode]]:
    for operation in operations:
        if operation.body is not None:
            yield operation.body, "validation"
        if operation.query is not None:
            yield operation.query, "validation"
        for status_answer in responses_of(operation).values():
            for model in status_answer.models:
                yield model, "serialization"


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": schema}}


def _one_of(refs: list[dict[str, Any]]) -> dict[str, Any]:
    return refs[0] if len(refs) == 1 else {"anyOf": refs}


def _query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", ()))
    parameters = []
    for name, property_schema in schema["properties"].items():
        property_schema = {k: v for k, v in property_schema.items() if k != "title"}
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        description = property_schema.pop("description", None)
        if description:
            parameter["description"] = description
        parameter["schema"] = property_schema
        parameters.append(parameter)
    return parameters


def build_document(operations: tuple[Operation, ...] = OPERATIONS) -> dict[str, Any]:
    """The whole OpenAPI 3.1.0 document, as a JSON-ready dict."""
    wanted = list(dict.fromkeys(_models(operations)))
    refs, top = models_json_schema(wanted, ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    queries = {op.query for op in operations if op.query is not None}
    # Query models become parameters, not components.
    query_schemas = {query: schemas.pop(query.__name__) for query in queries}

    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        parameters: list[dict[str, Any]] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": _PATH_PARAMETERS.get(name, name),
                "schema": {"type": "string", "minLength": 1},
            }
            for name in operation.path_parameters
        ]
        if operation.query is not None:
            parameters += _query_parameters(query_schemas[operation.query])
        if operation.method == "POST":
            parameters.append(
                {
                    "name": IDEMPOTENCY_HEADER,
                    "in": "header",
                    "required": False,
                    "description": (
                        "Extension: the same key with the same body within 24 h replays the "
                        "first answer (header `Idempotent-Replayed: true`) and does nothing else."
                    ),
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_KEY_LENGTH,
                        "pattern": "^[ -~]+$",
                    },
                }
            )
        entry: dict[str, Any] = {
            "operationId": operation.operation_id,
            "summary": operation.summary,
            "tags": [operation.tag],
        }
        if operation.description:
            entry["description"] = operation.description
        if parameters:
            entry["parameters"] = parameters
        if operation.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": _content(refs[(operation.body, "validation")]),
            }
        entry["responses"] = {
            str(status): {
                "description": status_answer.description,
                **({"headers": dict(status_answer.headers)} if status_answer.headers else {}),
                "content": _content(
                    _one_of([refs[(model, "serialization")] for model in status_answer.models])
                ),
            }
            for status, status_answer in responses_of(operation).items()
        }
        paths.setdefault(operation.path, {})[operation.method.lower()] = entry

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Campaign Calls API",
            "version": "v1",
            "description": (
                "Outbound call campaigns. Every object lives in the environment of the bearer "
                "token; another environment's objects answer 404. Timestamps are RFC 3339 in UTC."
            ),
        },
        "servers": [{"url": API_PREFIX}],
        "security": [{"bearerAuth": []}],
        "tags": [{"name": tag} for tag in dict.fromkeys(op.tag for op in operations)],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


def documented_routes(operations: tuple[Operation, ...] = OPERATIONS) -> set[tuple[str, str]]:
    """(method, full path) of every operation in the table."""
    return {operation.route for operation in operations}


@functools.cache
def document_bytes() -> bytes:
    """The document as served; built once per process."""
    return orjson.dumps(build_document())
