"""The auto-pipelining client on a real three-master Redis Cluster: routed by slot, one write
per node and turn, MOVED and ASK followed while a slot moves, a dead node failing only its own
callers."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from devstack.cluster import LocalCluster, slot_of
from shared.redis_client import AutoPipelineCluster, create_redis
from shared.settings import RedisSettings

pytestmark = pytest.mark.integration

TAG = "{moving}"


@pytest.fixture
async def cluster_client(redis_cluster: LocalCluster) -> AsyncIterator[AutoPipelineCluster]:
    redis = create_redis(RedisSettings(url=redis_cluster.url))
    assert isinstance(redis, AutoPipelineCluster)
    yield redis
    await redis.aclose()


@pytest.fixture
def redirects(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """The redirections the client followed, by kind (MovedError, AskError, ...)."""
    seen: Counter[str] = Counter()
    redirect = AutoPipelineCluster._redirect

    async def counted(self: AutoPipelineCluster, waiting: Any, error: ResponseError) -> None:
        seen[type(error).__name__] += 1
        await redirect(self, waiting, error)

    monkeypatch.setattr(AutoPipelineCluster, "_redirect", counted)
    return seen


async def test_a_turn_is_one_write_per_node_and_each_caller_gets_its_own_reply(
    redis_cluster: LocalCluster, cluster_client: AutoPipelineCluster, link_writes: list[int]
) -> None:
    names = [f"k{i}" for i in range(300)]
    assert len({redis_cluster.owner(slot_of(name)).port for name in names}) == 3
    await asyncio.gather(*(cluster_client.set(name, name.upper()) for name in names))
    link_writes.clear()
    values = await asyncio.gather(*(cluster_client.get(name) for name in names))
    assert values == [name.upper() for name in names]
    assert len(link_writes) == 3  # one write to each node
    assert sum(link_writes) == 300
    # A multi-key command over several slots is split by redis-py, and still answers once.
    assert await cluster_client.delete(*names) == 300


async def test_scripts_follow_a_slot_that_moves_under_concurrent_callers(
    redis_cluster: LocalCluster, cluster_client: AutoPipelineCluster, redirects: Counter[str]
) -> None:
    script = cluster_client.register_script(
        "redis.call('INCR', KEYS[1]); return redis.call('INCR', KEYS[2])"
    )
    slot = slot_of(TAG)
    stop = asyncio.Event()
    callers = 64

    async def caller(i: int) -> int:
        done = 0
        while not stop.is_set():
            await script(keys=[f"a{i}{TAG}", f"b{i}{TAG}"])
            await cluster_client.incr(f"c{i}{TAG}")
            done += 1
        return done

    def move() -> None:
        owner = redis_cluster.owner(slot)
        target = next(node for node in redis_cluster.nodes if node is not owner)
        migration = redis_cluster.migration(slot, target)
        migration.begin()
        while migration.move_keys(count=8):
            time.sleep(0.01)  # callers meet the slot half moved: ASK
        migration.finish()

    running = [asyncio.ensure_future(caller(i)) for i in range(callers)]
    await asyncio.sleep(0.3)
    await asyncio.to_thread(move)
    await asyncio.sleep(0.3)
    stop.set()
    counts = await asyncio.gather(*running)  # no caller saw an error

    for i, done in enumerate(counts):
        stored = await asyncio.gather(
            *(cluster_client.get(f"{name}{i}{TAG}") for name in ("a", "b", "c"))
        )
        assert stored == [str(done)] * 3, i  # every call ran exactly once
    assert redirects["MovedError"] > 0


async def test_a_key_already_moved_from_a_moving_slot_is_asked_for_on_its_new_node(
    redis_cluster: LocalCluster, cluster_client: AutoPipelineCluster, redirects: Counter[str]
) -> None:
    tag = "{asked}"
    await cluster_client.set(f"old{tag}", "here")
    counter = cluster_client.register_script("return redis.call('INCR', KEYS[1])")
    assert await counter(keys=[f"count{tag}"]) == 1
    owner = redis_cluster.owner(slot_of(tag))
    target = next(node for node in redis_cluster.nodes if node is not owner)
    migration = redis_cluster.migration(slot_of(tag), target)
    migration.begin()
    assert sorted(migration.move_keys()) == [f"count{tag}", f"old{tag}"]

    # The slot is half moved: its old owner answers ASK for keys it no longer holds.
    assert await cluster_client.get(f"old{tag}") == "here"
    assert await counter(keys=[f"count{tag}"]) == 2
    assert await cluster_client.set(f"new{tag}", "there")
    assert redirects["AskError"] >= 3
    assert redirects["MovedError"] == 0

    migration.finish()
    assert await cluster_client.get(f"new{tag}") == "there"
    assert await counter(keys=[f"count{tag}"]) == 3
    assert redirects["MovedError"] >= 1


async def test_a_script_new_to_a_node_is_loaded_there(
    cluster_client: AutoPipelineCluster,
) -> None:
    script = cluster_client.register_script("return KEYS[1]")
    assert await script(keys=[f"x{TAG}"]) == f"x{TAG}"
    await cluster_client.script_flush()  # every primary forgets it
    assert await script(keys=[f"y{TAG}"]) == f"y{TAG}"


async def test_a_dead_node_fails_only_its_own_callers_and_is_used_again_once_back(
    redis_cluster: LocalCluster, cluster_client: AutoPipelineCluster
) -> None:
    names = [f"n{i}" for i in range(60)]
    await asyncio.gather(*(cluster_client.set(name, "1") for name in names))
    dead = redis_cluster.nodes.index(redis_cluster.owner(slot_of(names[0])))
    on_dead = [n for n in names if redis_cluster.owner(slot_of(n)) is redis_cluster.nodes[dead]]
    elsewhere = [n for n in names if n not in on_dead]
    redis_cluster.kill(dead)

    answers = await asyncio.wait_for(
        asyncio.gather(*(cluster_client.get(n) for n in names), return_exceptions=True), 30
    )
    by_name = dict(zip(names, answers, strict=True))
    assert all(isinstance(by_name[n], RedisConnectionError) for n in on_dead)
    assert all(by_name[n] == "1" for n in elsewhere)

    redis_cluster.restart(dead)  # its data was in memory only: its keys are gone

    async def back() -> bool:
        try:
            await cluster_client.get(on_dead[0])
        except RedisConnectionError:
            return False
        return True

    deadline = time.monotonic() + 30
    while not await back():
        assert time.monotonic() < deadline, "the node never came back for the client"
        await asyncio.sleep(0.1)
    assert await cluster_client.set(on_dead[0], "2")
    assert await cluster_client.get(elsewhere[0]) == "1"


async def test_a_node_url_is_enough_to_reach_every_node(redis_cluster: LocalCluster) -> None:
    for url in redis_cluster.urls:
        redis: Redis = create_redis(RedisSettings(url=url))
        try:
            assert isinstance(redis, AutoPipelineCluster)
            await asyncio.gather(*(redis.set(f"u{i}", url) for i in range(30)))
            assert set(await asyncio.gather(*(redis.get(f"u{i}") for i in range(30)))) == {url}
        finally:
            await redis.aclose()


async def test_a_script_on_an_explicit_cluster_pipeline_runs_on_every_node(
    cluster_client: AutoPipelineCluster,
) -> None:
    script = cluster_client.register_script("return redis.call('INCR', KEYS[1])")
    names = [f"p{i}" for i in range(30)]
    async with cluster_client.pipeline(transaction=False) as pipe:
        for name in names:
            await script(keys=[name], client=cast(Any, pipe))
        assert await pipe.execute() == [1] * len(names)


async def test_callers_that_all_meet_noscript_share_one_load(
    cluster_client: AutoPipelineCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = cluster_client.register_script("return redis.call('INCR', KEYS[1])")
    await script(keys=["warm"])
    await cluster_client.script_flush()
    loads = 0
    load = AutoPipelineCluster.script_load

    async def counted(self: AutoPipelineCluster, source: Any) -> Any:
        nonlocal loads
        loads += 1
        return await load(self, source)

    monkeypatch.setattr(AutoPipelineCluster, "script_load", counted)
    names = [f"s{i}" for i in range(500)]  # far more callers than the pool has connections
    assert await asyncio.gather(*(script(keys=[name]) for name in names)) == [1] * 500
    assert loads == 1


async def test_the_settings_timeouts_reach_every_node_connection_and_a_late_reply_fails_callers(
    flushed_cluster_url: str,
) -> None:
    redis = create_redis(
        RedisSettings(
            url=flushed_cluster_url, socket_timeout_seconds=0.5, connect_timeout_seconds=1
        )
    )
    assert isinstance(redis, AutoPipelineCluster)
    key = f"stuck{TAG}"
    try:
        await redis.set(key, "v")
        spin = redis.register_script("while true do end")
        await redis.script_load("while true do end")  # on every master: no NOSCRIPT turn
        owner = redis.get_node_from_key(key)
        for node in redis.get_nodes():
            assert node.connection_kwargs["socket_timeout"] == 0.5
            assert node.connection_kwargs["socket_connect_timeout"] == 1
        assert redis._links[owner.name]._timeout == 0.5  # the node's shared connection
        admin = Redis(host=owner.host, port=owner.port, decode_responses=True)
        try:
            await admin.config_set("lua-time-limit", 100)
            started = asyncio.get_running_loop().time()
            stuck = await asyncio.gather(spin(keys=[key]), redis.get(key), return_exceptions=True)
            assert all(isinstance(outcome, RedisTimeoutError) for outcome in stuck), stuck
            assert asyncio.get_running_loop().time() - started < 5
            await admin.script_kill()
        finally:
            await admin.aclose()
        assert await redis.get(key) == "v"
    finally:
        await redis.aclose()
