from __future__ import annotations

from collections.abc import Callable

import pytest

from shared import keys

CAMPAIGN = "camp_42"


def hash_tag(key: str) -> str:
    """The part Redis Cluster hashes: the first non-empty `{...}`, else the whole key."""
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


CAMPAIGN_KEYS: list[tuple[str, Callable[[str], str]]] = [
    ("campaign", keys.campaign),
    ("webhooks", keys.campaign_webhooks),
    ("calls", keys.campaign_calls),
    ("call", lambda c: keys.call(c, "call_1")),
    ("body", lambda c: keys.call_body(c, "call_1")),
    ("active", keys.active_numbers),
    ("claim", lambda c: keys.dial_claim(c, "call_1", 2)),
    ("delivered", lambda c: keys.delivered(c, "wh_1", "evt_1")),
    ("calls by status", lambda c: keys.calls_by_status(c, "queued")),
    ("calls by number", keys.calls_by_number),
    ("ended", keys.ended_calls),
]


@pytest.mark.parametrize(("name", "build"), CAMPAIGN_KEYS, ids=[n for n, _ in CAMPAIGN_KEYS])
@pytest.mark.parametrize("campaign_id", [CAMPAIGN, "9b2f1c4e-0000-4000-8000-000000000001"])
def test_campaign_keys_carry_the_campaign_hash_tag(
    name: str, build: Callable[[str], str], campaign_id: str
) -> None:
    key = build(campaign_id)

    assert hash_tag(key) == campaign_id
    assert key.startswith(f"{keys.PREFIX}:")


def test_every_key_of_one_campaign_shares_one_tag_and_is_distinct() -> None:
    built = [build(CAMPAIGN) for _, build in CAMPAIGN_KEYS]

    assert {hash_tag(key) for key in built} == {CAMPAIGN}
    assert len(set(built)) == len(built)


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda c: keys.call(c, "{other}"), id="call"),
        pytest.param(lambda c: keys.call_body(c, "{other}"), id="body"),
        pytest.param(lambda c: keys.dial_claim(c, "{other}", 1), id="claim"),
        pytest.param(lambda c: keys.delivered(c, "{other}", "{x}"), id="delivered"),
    ],
)
def test_braces_in_later_parts_do_not_change_the_tag(build: Callable[[str], str]) -> None:
    assert hash_tag(build(CAMPAIGN)) == CAMPAIGN


@pytest.mark.parametrize(("name", "build"), CAMPAIGN_KEYS, ids=[n for n, _ in CAMPAIGN_KEYS])
def test_campaigns_do_not_share_keys(name: str, build: Callable[[str], str]) -> None:
    assert build("camp_1") != build("camp_2")
    assert hash_tag(build("camp_1")) != hash_tag(build("camp_2"))


@pytest.mark.parametrize(
    ("build", "tag"),
    [
        pytest.param(keys.agent, "owner_1", id="agent"),
        pytest.param(keys.env_agents, "owner_1", id="env-agents"),
        pytest.param(keys.env_campaigns, "owner_1", id="env-campaigns"),
    ],
)
def test_other_keys_are_tagged_by_their_owner(build: Callable[[str], str], tag: str) -> None:
    assert hash_tag(build(tag)) == tag


def test_a_call_and_its_body_are_two_keys() -> None:
    assert keys.call(CAMPAIGN, "call_1") != keys.call_body(CAMPAIGN, "call_1")
    assert keys.call_body(CAMPAIGN, "call_1").endswith(":call_1")


CALL_IDS = [f"call_{i}" for i in range(200)] + ["", "é", "9b2f1c4e-0000-4000-8000-000000000001"]


@pytest.mark.parametrize("shards", [1, 2, 7, 16, 64])
def test_due_shards_are_within_range_and_stable(shards: int) -> None:
    first = [keys.due_shard_of(call_id, shards) for call_id in CALL_IDS]
    second = [keys.due_shard_of(call_id, shards) for call_id in CALL_IDS]

    assert first == second
    assert all(0 <= shard < shards for shard in first)


@pytest.mark.parametrize(
    ("call_id", "shards", "expected"),
    [
        pytest.param("call_1", 16, 4, id="call_1"),
        pytest.param("9b2f1c4e-0000-4000-8000-000000000001", 16, 15, id="uuid"),
        pytest.param("anything", 1, 0, id="one-shard"),
    ],
)
def test_due_shard_is_the_same_across_processes(call_id: str, shards: int, expected: int) -> None:
    # Every service must map a call to the same shard, so the value may not depend on the
    # process (str hash randomisation would break that).
    assert keys.due_shard_of(call_id, shards) == expected


def test_due_shards_spread_calls() -> None:
    used = {keys.due_shard_of(call_id, 16) for call_id in CALL_IDS}

    assert len(used) == 16


@pytest.mark.parametrize("shard", [0, 1, 15])
def test_due_queue_and_inflight_of_one_shard_share_a_tag(shard: int) -> None:
    queue, inflight = keys.due_queue(shard), keys.due_inflight(shard)

    assert queue != inflight
    assert hash_tag(queue) == hash_tag(inflight) == f"due:{shard}"


def test_due_shards_have_distinct_tags() -> None:
    assert len({hash_tag(keys.due_queue(shard)) for shard in range(16)}) == 16


@pytest.mark.parametrize(
    ("campaign_id", "call_id"),
    [
        pytest.param("camp_1", "call_1", id="simple"),
        pytest.param("9b2f1c4e", "c|with|pipes", id="pipes-in-call-id"),
        pytest.param("camp_1", "", id="empty-call-id"),
    ],
)
def test_due_member_round_trips(campaign_id: str, call_id: str) -> None:
    member = keys.due_member(campaign_id, call_id)

    assert keys.split_due_member(member) == (campaign_id, call_id)


@pytest.mark.parametrize("call_id", ["call_1", "a:b|c"])
def test_the_prefixes_scripts_build_keys_from_give_the_same_keys(call_id: str) -> None:
    assert keys.call(CAMPAIGN, "") + call_id == keys.call(CAMPAIGN, call_id)
    assert keys.call_body(CAMPAIGN, "") + call_id == keys.call_body(CAMPAIGN, call_id)
    assert keys.dial_claim_prefix(CAMPAIGN) + f"{call_id}:3" == keys.dial_claim(
        CAMPAIGN, call_id, 3
    )
    for status in ("queued", "cancelled"):
        assert keys.calls_by_status_prefix(CAMPAIGN) + status == keys.calls_by_status(
            CAMPAIGN, status
        )


def test_a_number_member_splits_back_at_the_first_bar() -> None:
    member = keys.number_member("+12125550100", "id|with|bars")
    assert keys.split_number_member(member) == ("+12125550100", "id|with|bars")


def test_the_campaign_pattern_matches_only_its_own_tag() -> None:
    assert keys.campaign_pattern("c1") == "cc:{c1}:*"
    assert keys.campaign_pattern("c*[x]?") == "cc:{c\\*\\[x\\]\\?}:*"
