"""python -m tools.asyncapi: the topics' contract as an AsyncAPI 3.0 document, on stdout.

Built from the code itself: the topic names (shared/topics.py), the message models
(shared/events.py, their pydantic JSON schemas as validated by the consumers), the trace
context headers (shared/tracing.py) and the DLQ's headers (shared/bus.py, tools/dlq.py). The
committed copy is docs/asyncapi.json; a unit test fails when it differs from what this prints,
and `--write` (or `make asyncapi`) brings it up to date:

    python -m tools.asyncapi            # print it
    python -m tools.asyncapi --write    # rewrite docs/asyncapi.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.bus import DLQ_CONSUMER_HEADER, DLQ_ERROR_HEADER, DLQ_TOPIC_HEADER
from shared.events import SCHEMA_VERSION, CallDue, CallEvent, CallRequested, CampaignEvent
from shared.settings import KafkaSettings
from shared.topics import (
    ALL_TOPICS,
    CALLS_DLQ,
    CALLS_DUE,
    CALLS_EVENTS,
    CALLS_REQUESTED,
    CAMPAIGN_EVENTS,
)
from shared.tracing import TRACEPARENT, TRACESTATE
from tools.dlq import REPLAYED_HEADER

DOCUMENT: Final = Path(__file__).resolve().parent.parent / "docs" / "asyncapi.json"
_KAFKA_BINDING: Final = "0.5.0"
_MODELS: Final[tuple[type[BaseModel], ...]] = (CallRequested, CallDue, CallEvent, CampaignEvent)
_DLQ_MESSAGE: Final = "DeadLetter"
_REPLAY: Final = "tools.dlq"

# Each topic: its channel id, what it carries, its record key, who sends and who receives
# (service, consumer group).
_TOPICS: Final[tuple[dict[str, Any], ...]] = (
    {
        "id": "calls-requested",
        "topic": CALLS_REQUESTED,
        "message": CallRequested,
        "description": (
            "Requests to call a number in a campaign: ingest hands on every call it accepted "
            "(`call_id` set, `accepted` true); other services may publish the Make Campaign "
            "Call body plus `campaign_id` here directly. Unlimited by the API's rate limit; "
            "a refusal becomes a `campaign_call.rejected` event."
        ),
        "key": "`{campaign_id}:{to in E.164}`: all requests for one number in one campaign "
        "meet in one partition (shared.topics.requested_key).",
        "senders": ("ingest", _REPLAY),
        "receivers": (("scheduler", "scheduler"),),
    },
    {
        "id": "calls-due",
        "topic": CALLS_DUE,
        "message": CallDue,
        "description": "Attempts whose time has come, released by the scheduler's due pump; "
        "the dialer places them.",
        "key": "the call id (shared.topics.call_key).",
        "senders": ("scheduler", _REPLAY),
        "receivers": (("dialer", "dialer"),),
    },
    {
        "id": "calls-events",
        "topic": CALLS_EVENTS,
        "message": CallEvent,
        "description": (
            "Facts in a call's life. `campaign_call.*` events are the webhook events; "
            "`internal.attempt_ended` is the dialer's report of an attempt's outcome, which "
            "the scheduler turns into the public outcome event."
        ),
        "key": "the call id (shared.topics.call_key): one call's events stay in order.",
        "senders": ("ingest", "scheduler", "dialer", _REPLAY),
        "receivers": (("scheduler", "scheduler-outcomes"), ("notifier", "notifier")),
    },
    {
        "id": "campaign-events",
        "topic": CAMPAIGN_EVENTS,
        "message": CampaignEvent,
        "description": "A campaign's status moves (`campaign.*` webhook events).",
        "key": "the campaign id (shared.topics.campaign_key): its moves stay in order.",
        "senders": ("ingest", _REPLAY),
        "receivers": (("notifier", "notifier-campaigns"),),
    },
    {
        "id": "calls-dlq",
        "topic": CALLS_DLQ,
        "message": None,
        "description": (
            "Messages a consumer could not process (unparseable, invalid, or a defect met "
            "while handling them), parked so the consumer moves on. "
            "`python -m tools.dlq replay` puts them back on their source topics."
        ),
        "key": "the parked message's own key, unchanged.",
        "senders": ("scheduler", "dialer", "notifier"),
        "receivers": ((_REPLAY, "<KAFKA_CLIENT_ID_PREFIX>-dlq-replay"),),
    },
)


def _camel(text: str) -> str:
    head, *rest = text.replace(".", "-").split("-")
    return head + "".join(part.capitalize() for part in rest)


def _message_headers() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            TRACEPARENT: {
                "type": "string",
                "description": "W3C trace context (shared/tracing.py): the trace the message "
                "belongs to, continued by its consumer; set while tracing is on, and taken "
                "from a request published to the topic by another service. Without it a "
                "consumer that traces starts a new trace.",
            },
            TRACESTATE: {
                "type": "string",
                "description": "W3C trace state that goes with `traceparent`, if any.",
            },
            REPLAYED_HEADER: {
                "type": "string",
                "description": "Set on a copy put back by `python -m tools.dlq replay`: "
                "`<dlq partition>@<offset>` of the record it was replayed from.",
            },
        },
    }


def _dlq_message() -> dict[str, Any]:
    return {
        "name": _DLQ_MESSAGE,
        "title": "Dead-lettered message",
        "summary": "A parked message: its value and key unchanged, the reason in headers.",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "required": [DLQ_ERROR_HEADER, DLQ_TOPIC_HEADER, DLQ_CONSUMER_HEADER],
            "properties": {
                DLQ_ERROR_HEADER: {
                    "type": "string",
                    "maxLength": 2000,
                    "description": "Why the message was parked.",
                },
                DLQ_TOPIC_HEADER: {
                    "type": "string",
                    "enum": [topic for topic in ALL_TOPICS if topic != CALLS_DLQ],
                    "description": "The topic the message was read from, and goes back to.",
                },
                DLQ_CONSUMER_HEADER: {
                    "type": "string",
                    "description": "The service whose consumer parked it.",
                },
            },
        },
        "payload": {
            "description": "The parked record's value, byte for byte: usually one of the "
            "other messages' JSON, but it may be anything a producer sent."
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The parked record's key, unchanged."},
                "bindingVersion": _KAFKA_BINDING,
            }
        },
    }


def document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every topic."""
    _, schemas = models_json_schema(
        [(model, "validation") for model in _MODELS],
        ref_template="#/components/schemas/{model}",
    )
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in _TOPICS:
        model: type[BaseModel] | None = topic["message"]
        name = model.__name__ if model is not None else _DLQ_MESSAGE
        if model is None:
            messages[name] = _dlq_message()
        else:
            messages[name] = {
                "name": name,
                "title": name,
                "summary": (model.__doc__ or "").strip().splitlines()[0],
                "contentType": "application/json",
                "headers": _message_headers(),
                "payload": {"$ref": f"#/components/schemas/{name}"},
                "bindings": {
                    "kafka": {
                        "key": {"type": "string", "description": topic["key"]},
                        "bindingVersion": _KAFKA_BINDING,
                    }
                },
            }
        channel = topic["id"]
        channels[channel] = {
            "address": topic["topic"],
            "title": topic["topic"],
            "description": f"{topic['description']} Key: {topic['key']}",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {"kafka": {"topic": topic["topic"], "bindingVersion": _KAFKA_BINDING}},
        }
        message_ref = [{"$ref": f"#/channels/{channel}/messages/{name}"}]
        for sender in topic["senders"]:
            operations[f"{_camel(sender)}Sends{_camel('-' + channel)}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{channel}"},
                "summary": (
                    f"`python -m tools.dlq replay` puts parked messages back on {topic['topic']}."
                    if sender == _REPLAY
                    else f"{sender} publishes to {topic['topic']}."
                ),
                "messages": message_ref,
            }
        for receiver, group in topic["receivers"]:
            operations[f"{_camel(receiver)}Receives{_camel('-' + channel)}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{channel}"},
                "summary": f"{receiver} consumes {topic['topic']} as group `{group}`.",
                "messages": message_ref,
                "bindings": {
                    "kafka": {
                        "groupId": {"type": "string", "enum": [group]},
                        "bindingVersion": _KAFKA_BINDING,
                    }
                },
            }
    kafka_default = KafkaSettings.model_fields["bootstrap_servers"].default
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "campaign-calls topics",
            "version": str(SCHEMA_VERSION),
            "description": (
                "The Kafka topics the services share. Every message is JSON with a "
                "`schema_version`; consumers reject versions they do not know and ignore "
                "unknown fields. Generated by `python -m tools.asyncapi` from shared/topics.py "
                "and shared/events.py; do not edit by hand."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": kafka_default,
                "protocol": "kafka",
                "description": "KAFKA_BOOTSTRAP_SERVERS (the default shown); each topic has "
                "KAFKA_PARTITIONS partitions.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas["$defs"]},
    }


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.asyncapi", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--write", action="store_true", help=f"rewrite {DOCUMENT.name}")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        DOCUMENT.parent.mkdir(exist_ok=True)
        DOCUMENT.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
