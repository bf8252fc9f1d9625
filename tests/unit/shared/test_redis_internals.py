"""The private redis-py names `shared.redis_client` builds on, checked without a server.

redis-py is pinned to a minor version in pyproject.toml; should an upgrade rename or reshape
one of these, this fails before any service does."""

from __future__ import annotations

import inspect
from typing import Any

from redis.asyncio.cluster import ClusterNode, NodesManager, RedisCluster
from redis.asyncio.connection import Connection
from redis.client import EMPTY_RESPONSE, NEVER_DECODE
from redis.commands.core import AsyncScript
from redis.exceptions import AskError, MovedError

from shared.redis_client import AutoPipelineCluster, AutoPipelineRedis


def test_a_connection_keeps_its_parser_and_stream_writer_where_the_client_reads_them() -> None:
    connection = Connection(host="127.0.0.1", port=1)
    assert callable(connection._parser.parse_error)
    parse_error: Any = connection._parser.parse_error
    assert parse_error("MOVED 3999 127.0.0.1:6381").__class__ is MovedError
    assert parse_error("ASK 3999 127.0.0.1:6381").__class__ is AskError
    assert hasattr(connection, "_writer")
    assert connection._writer is None  # set by connect()


def test_a_cluster_client_keeps_its_topology_and_command_table_where_the_client_reads_them() -> (
    None
):
    cluster = AutoPipelineCluster(host="127.0.0.1", port=1)
    assert cluster._initialize is True  # nothing learnt before the first command
    manager = cluster.nodes_manager
    assert isinstance(manager, NodesManager)
    assert isinstance(cluster.commands_parser.commands, dict)
    assert isinstance(cluster.command_flags, dict)
    assert "SCRIPT LOAD" in cluster.command_flags
    assert isinstance(RedisCluster.RedisClusterRequestTTL, int)
    assert inspect.iscoroutinefunction(NodesManager.move_slot)
    assert list(inspect.signature(NodesManager.get_node_from_slot).parameters)[:2] == [
        "self",
        "slot",
    ]
    assert {"host", "port"} <= set(inspect.signature(NodesManager.get_node).parameters)


def test_a_cluster_node_names_how_its_connections_are_made() -> None:
    node = ClusterNode("127.0.0.1", 7000)
    assert node.connection_class is Connection
    assert node.connection_kwargs["host"] == "127.0.0.1"
    assert node.connection_kwargs["port"] == 7000


def test_the_options_the_client_reads_and_the_script_owner_keep_their_names() -> None:
    assert isinstance(EMPTY_RESPONSE, str)
    assert isinstance(NEVER_DECODE, str)
    single = AutoPipelineRedis()
    script = single.register_script("return 1")
    assert isinstance(script, AsyncScript)
    assert script.registered_client is single
    assert hasattr(single, "single_connection_client")
