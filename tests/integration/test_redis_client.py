"""The auto-pipelining Redis client against a real Redis: shared round trips, separate answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared import redis_client
from shared.redis_client import (
    AutoPipelineRedis,
    HiredisPackingConnection,
    ScriptCall,
    _Waiting,
    create_redis,
    in_order,
)
from shared.settings import RedisSettings
from tests.conftest import RedisServer

# The single-server client; its cluster counterpart is tested in test_redis_cluster_client.py.
pytestmark = [pytest.mark.integration, pytest.mark.redis_backends("single")]


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[AutoPipelineRedis]:
    redis = create_redis(RedisSettings(url=redis_server.url, max_connections=4))
    assert isinstance(redis, AutoPipelineRedis)
    yield redis
    await redis.aclose()


async def test_commands_of_one_turn_share_one_pipeline(
    client: AutoPipelineRedis, link_writes: list[int]
) -> None:
    await client.mset({f"k{i}": str(i) for i in range(200)})
    link_writes.clear()
    values = await asyncio.gather(*(client.get(f"k{i}") for i in range(200)))
    assert values == [str(i) for i in range(200)]
    assert link_writes == [200]


async def test_turns_share_one_connection_and_each_caller_gets_its_own_reply(
    client: AutoPipelineRedis, link_writes: list[int]
) -> None:
    await client.ping()
    before = await client.client_list()

    async def count_up(times: int) -> list[int]:
        return [await client.incr("counter") for _ in range(times)]  # one command per turn

    counted = await asyncio.gather(*(count_up(50) for _ in range(40)))
    assert sorted(value for values in counted for value in values) == list(range(1, 2001))
    for values in counted:
        assert values == sorted(values)  # each caller's commands ran in the order it sent them
    assert len(await client.client_list()) == len(before)  # no connection was added
    assert len(link_writes) >= 50  # one command of each caller per turn
    assert sum(link_writes) == 2003  # PING, CLIENT LIST twice, INCRs


async def test_one_failing_command_fails_only_its_caller(client: AutoPipelineRedis) -> None:
    await client.set("text", "not a number")
    outcomes = await asyncio.gather(
        client.incr("n"), client.incr("text"), client.set("other", "x"), return_exceptions=True
    )
    assert outcomes[0] == 1
    assert isinstance(outcomes[1], ResponseError)
    assert outcomes[2] is True
    assert await client.get("other") == "x"


async def test_scripts_reload_when_redis_forgot_them(client: AutoPipelineRedis) -> None:
    script = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert await script(keys=["s"], args=[2]) == 2
    await client.script_flush()
    results = await asyncio.gather(*(script(keys=["s"], args=[1]) for _ in range(20)))
    assert sorted(results) == list(range(3, 23))


async def test_steps_in_order_share_one_write_and_run_in_the_order_given(
    client: AutoPipelineRedis, link_writes: list[int]
) -> None:
    script = client.register_script("return redis.call('RPUSH', KEYS[1], ARGV[1])")
    await script(keys=["order"], args=["loaded"])
    link_writes.clear()
    replies = await in_order(
        client,
        [
            ("RPUSH", "order", "first"),
            ScriptCall(script, ["order"], ["second"]),
            ("RPUSH", "order", "third"),
        ],
    )
    assert replies == [2, 3, 4]
    assert link_writes == [3]
    assert await client.lrange("order", 0, -1) == ["loaded", "first", "second", "third"]


async def test_steps_in_order_all_run_and_the_first_failure_is_raised(
    client: AutoPipelineRedis,
) -> None:
    await client.set("text", "not a number")
    with pytest.raises(ResponseError):
        await in_order(client, [("INCR", "text"), ("SET", "after", "x"), ("INCR", "text")])
    assert await client.get("after") == "x"


async def test_steps_in_order_load_a_script_redis_forgot(client: AutoPipelineRedis) -> None:
    script = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert await script(keys=["s"], args=[2]) == 2
    await client.script_flush()
    replies = await in_order(client, [("SET", "t", "1"), ScriptCall(script, ["s"], [3])])
    assert replies == [True, 5]


async def test_steps_in_order_on_a_plain_client_run_one_after_the_other(
    redis_server: RedisServer,
) -> None:
    plain = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        script = plain.register_script("return redis.call('RPUSH', KEYS[1], ARGV[1])")
        replies = await in_order(
            plain, [("RPUSH", "plain", "a"), ScriptCall(script, ["plain"], ["b"])]
        )
        assert replies == [1, 2]
        assert await plain.lrange("plain", 0, -1) == ["a", "b"]
    finally:
        await plain.aclose()


async def test_a_cancelled_caller_leaves_the_others_their_answers(
    client: AutoPipelineRedis,
) -> None:
    await client.set("a", "1")
    await client.set("b", "2")
    first = asyncio.ensure_future(client.get("a"))
    second = asyncio.ensure_future(client.get("b"))
    await asyncio.sleep(0)  # one loop turn: both tasks start and queue their commands
    first.cancel()
    assert await second == "2"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_blocking_commands_do_not_hold_up_a_shared_pipeline(
    client: AutoPipelineRedis,
) -> None:
    # Both start in the same loop turn: sharing a write, SET's reply would wait behind BLPOP's.
    waiting = asyncio.ensure_future(client.blpop(["queue"], timeout=5))
    setting = asyncio.ensure_future(client.set("while-blocked", "1"))
    assert await asyncio.wait_for(setting, 2) is True
    assert not waiting.done()
    await client.rpush("queue", "item")
    popped = await asyncio.wait_for(waiting, 5)
    assert popped is not None
    assert tuple(popped) == ("queue", "item")


async def test_arguments_of_every_kind_arrive_as_redis_py_would_send_them(
    client: AutoPipelineRedis,
) -> None:
    assert client.connection_pool.connection_class is HiredisPackingConnection
    await client.hset("h", mapping={"text": "naïve ☎", "int": 12, "float": 0.1 + 0.2})
    await client.zadd("z", {"a": 1e20, "b": -2.5})
    assert await client.hgetall("h") == {
        "text": "naïve ☎",
        "int": "12",
        "float": "0.30000000000000004",
    }
    assert await client.zrange("z", 0, -1, withscores=True) == [("b", -2.5), ("a", 1e20)]
    assert await client.config_get("maxmemory") == {"maxmemory": "0"}  # a two-word command
    with pytest.raises(DataError):
        await client.set("k", None)  # type: ignore[arg-type]


async def test_a_reply_that_never_comes_fails_its_callers_and_drops_the_connection(
    redis_server: RedisServer,
) -> None:
    pool = BlockingConnectionPool.from_url(
        redis_server.url,
        decode_responses=True,
        max_connections=2,
        socket_timeout=0.5,
        connection_class=HiredisPackingConnection,
    )
    redis = AutoPipelineRedis.from_pool(pool)
    admin = create_redis(RedisSettings(url=redis_server.url, max_connections=2))
    try:
        await redis.set("k", "v")
        # Redis answers other clients (SCRIPT KILL) 100 ms into a busy script, not 5 s.
        await admin.config_set("lua-time-limit", 100)
        stuck = await asyncio.gather(
            redis.eval("while true do end", 0), redis.get("k"), return_exceptions=True
        )
        assert all(isinstance(outcome, RedisTimeoutError) for outcome in stuck), stuck
        await admin.script_kill()
        # The connection that timed out was dropped: a fresh one answers correctly.
        assert await redis.get("k") == "v"
        assert await redis.incr("n") == 1
    finally:
        await redis.aclose()
        await admin.aclose()


async def test_after_redis_drops_the_shared_connection_the_next_turn_opens_another(
    client: AutoPipelineRedis, redis_server: RedisServer
) -> None:
    admin = create_redis(RedisSettings(url=redis_server.url, max_connections=1))
    try:
        await client.set("k", "v")
        first = await client.client_id()
        assert await admin.client_kill_filter(_id=str(first)) == 1
        deadline = asyncio.get_running_loop().time() + 5
        while True:  # a command written before the loss is noticed fails; then one succeeds
            try:
                value = await asyncio.wait_for(client.get("k"), 1)
                break
            except (RedisConnectionError, TimeoutError):
                assert asyncio.get_running_loop().time() < deadline, "no new connection in 5 s"
        assert value == "v"
        assert await client.client_id() != first
    finally:
        await admin.aclose()


async def test_a_turn_that_reaches_a_connection_after_it_broke_fails_at_once(
    client: AutoPipelineRedis,
) -> None:
    await client.ping()
    link = client._link
    assert link is not None
    link.connection_lost(None)  # as the loop reports a connection Redis closed
    future: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    link.send([(b"*1\r\n$4\r\nPING\r\n", _Waiting(future, None, {}, False))])

    with pytest.raises(RedisConnectionError):
        await asyncio.wait_for(future, 1)
    assert await client.ping() is True  # the next turn opens another connection


async def test_turns_queued_while_the_first_connection_opens_all_use_it(
    redis_server: RedisServer,
) -> None:
    """A cold client under a burst: turns issued over many loop iterations while the first
    connection is being opened are all sent on it; none replaces it (which would fail the
    commands already written on it: "the client was closed")."""

    async def get(redis: Redis, i: int) -> Any:
        for _ in range(i % 40):  # spread the callers over 40 loop iterations
            await asyncio.sleep(0)
        return await redis.get(f"burst:{i % 7}")

    for _ in range(5):
        redis = create_redis(RedisSettings(url=redis_server.url))
        try:
            answers = await asyncio.gather(
                *(get(redis, i) for i in range(400)), return_exceptions=True
            )
        finally:
            await redis.aclose()
        assert [a for a in answers if isinstance(a, BaseException)] == []


async def test_the_settings_timeouts_reach_every_connection_and_a_late_reply_fails_its_callers(
    redis_server: RedisServer,
) -> None:
    redis = create_redis(
        RedisSettings(url=redis_server.url, socket_timeout_seconds=0.5, connect_timeout_seconds=1)
    )
    admin = create_redis(RedisSettings(url=redis_server.url, max_connections=2))
    assert isinstance(redis, AutoPipelineRedis)
    try:
        kwargs = redis.connection_pool.connection_kwargs
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.5, 1)
        await redis.set("k", "v")
        assert redis._link is not None
        assert redis._link._timeout == 0.5  # the shared connection's reply deadline
        await admin.config_set("lua-time-limit", 100)
        started = asyncio.get_running_loop().time()
        stuck = await asyncio.gather(
            redis.eval("while true do end", 0), redis.get("k"), return_exceptions=True
        )
        assert all(isinstance(outcome, RedisTimeoutError) for outcome in stuck), stuck
        assert asyncio.get_running_loop().time() - started < 5
        await admin.script_kill()
        assert await redis.get("k") == "v"
    finally:
        await redis.aclose()
        await admin.aclose()


async def test_a_server_that_never_answers_fails_the_callers_within_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server that takes the connection and says nothing (a stalled proxy, a wedged node):
    the connection's greeting times out instead of holding the callers forever."""
    held: list[asyncio.StreamWriter] = []

    async def say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    silent = await asyncio.start_server(say_nothing, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    monkeypatch.setattr(redis_client, "is_cluster", lambda url: False)
    redis = create_redis(
        RedisSettings(
            url=f"redis://127.0.0.1:{port}/0",
            socket_timeout_seconds=0.3,
            connect_timeout_seconds=0.3,
        )
    )
    try:
        started = asyncio.get_running_loop().time()
        outcomes = await asyncio.wait_for(
            asyncio.gather(redis.get("a"), redis.get("b"), return_exceptions=True), 10
        )
        assert all(
            isinstance(outcome, (RedisTimeoutError, RedisConnectionError)) for outcome in outcomes
        ), outcomes
        assert asyncio.get_running_loop().time() - started < 5
    finally:
        await redis.aclose()
        for writer in held:
            writer.close()
        silent.close()
        await silent.wait_closed()
