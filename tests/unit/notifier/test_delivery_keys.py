"""Keys of webhook deliveries: a delivery and its log share the campaign's tag; the delay
queue and its inflight set share one tag of their own."""

from __future__ import annotations

import pytest

from shared import keys
from shared.store.deliveries import DeliveryRef


def hash_tag(key: str) -> str:
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


@pytest.mark.parametrize("campaign_id", ["camp_1", "9b2f1c4e-0000-4000-8000-000000000001"])
def test_a_delivery_and_its_log_share_the_campaign_tag(campaign_id: str) -> None:
    delivery = keys.webhook_delivery(campaign_id, "wh_{x}", "d_1")
    log = keys.webhook_attempts(campaign_id, "wh_{x}")

    assert hash_tag(delivery) == hash_tag(log) == campaign_id
    assert hash_tag(keys.delivered(campaign_id, "wh_1", "evt")) == campaign_id
    assert delivery != log
    assert delivery.startswith(f"{keys.PREFIX}:")


def test_deliveries_of_two_webhooks_are_apart() -> None:
    assert keys.webhook_delivery("c", "wh_1", "d") != keys.webhook_delivery("c", "wh_2", "d")
    assert keys.webhook_attempts("c", "wh_1") != keys.webhook_attempts("c", "wh_2")


def test_the_delay_queue_and_its_inflight_set_share_a_tag() -> None:
    queue, inflight = keys.webhook_retry_queue(), keys.webhook_retry_inflight()

    assert queue != inflight
    assert hash_tag(queue) == hash_tag(inflight) == "webhook-retries"


def test_a_retry_member_round_trips() -> None:
    ref = DeliveryRef("9b2f1c4e-0000-4000-8000-000000000001", "wh_1", "d_1")

    assert DeliveryRef.from_member(ref.member) == ref
    assert ref.key == keys.webhook_delivery(ref.campaign_id, ref.webhook_id, ref.delivery_id)
