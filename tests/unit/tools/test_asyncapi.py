"""The AsyncAPI document: every topic, built from the models; the committed copy current."""

from __future__ import annotations

from shared.bus import DLQ_CONSUMER_HEADER, DLQ_ERROR_HEADER, DLQ_TOPIC_HEADER
from shared.events import CallDue, CallEvent, CallRequested, CampaignEvent
from shared.topics import ALL_TOPICS, CALLS_DLQ
from tools.asyncapi import DOCUMENT, document, render


def test_every_topic_is_a_channel_with_a_sender_and_a_receiver() -> None:
    spec = document()
    addresses = {channel["address"]: name for name, channel in spec["channels"].items()}
    assert set(addresses) == set(ALL_TOPICS)
    for name in addresses.values():
        actions = {
            operation["action"]
            for operation in spec["operations"].values()
            if operation["channel"]["$ref"] == f"#/channels/{name}"
        }
        assert actions == {"send", "receive"}, name


def test_message_payloads_are_the_models_schemas() -> None:
    spec = document()
    schemas = spec["components"]["schemas"]
    for model in (CallRequested, CallDue, CallEvent, CampaignEvent):
        message = spec["components"]["messages"][model.__name__]
        assert message["payload"] == {"$ref": f"#/components/schemas/{model.__name__}"}
        assert set(schemas[model.__name__]["properties"]) == set(model.model_fields)
    # The enums the events refer to are there too.
    assert "campaign_call.rejected" in schemas["CallEventType"]["enum"]
    assert "campaign.completed" in schemas["CampaignEventType"]["enum"]


def test_dead_letters_carry_their_reason_source_and_consumer_in_headers() -> None:
    spec = document()
    dlq = next(c for c in spec["channels"].values() if c["address"] == CALLS_DLQ)
    (ref,) = dlq["messages"].values()
    message = spec["components"]["messages"][ref["$ref"].rsplit("/", 1)[-1]]
    headers = message["headers"]
    assert set(headers["required"]) == {DLQ_ERROR_HEADER, DLQ_TOPIC_HEADER, DLQ_CONSUMER_HEADER}
    assert set(headers["properties"][DLQ_TOPIC_HEADER]["enum"]) == set(ALL_TOPICS) - {CALLS_DLQ}


def test_committed_document_is_current() -> None:
    committed = DOCUMENT.read_text(encoding="utf-8") if DOCUMENT.exists() else ""
    assert committed == render(), (
        f"{DOCUMENT.relative_to(DOCUMENT.parent.parent)} is not what the code generates: "
        "run `make asyncapi` (python -m tools.asyncapi --write) and commit the result"
    )
