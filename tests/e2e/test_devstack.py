"""`make run`'s launcher: everything comes up, and a signal takes everything down."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from devstack.processes import SERVICES, free_port, port_is_open

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _healthy(port: int) -> bool:
    return _answers(f"http://127.0.0.1:{port}/healthz")


def _wait_until_answers(url: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not _answers(url):
        assert time.monotonic() < deadline, f"{url} never answered"
        time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def _launch(command: list[str], port: int, **extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL")}
    # The other services' HTTP ports too: tests run side by side.
    env.update(
        API_PORT=str(port),
        SCHEDULER_HTTP_PORT=str(free_port()),
        DIALER_HTTP_PORT=str(free_port()),
        NOTIFIER_HTTP_PORT=str(free_port()),
        KAFKA_SESSION_TIMEOUT_MS="2000",
        **extra,
    )
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _read_banner(launcher: subprocess.Popen[bytes], ports: list[int]) -> str:
    """Waits until every API port answers, then reads the output up to the end of the banner."""
    deadline = time.monotonic() + 90
    while not all(_healthy(port) for port in ports):
        assert launcher.poll() is None, launcher.stdout.read() if launcher.stdout else ""
        assert time.monotonic() < deadline, "the API never answered"
        time.sleep(0.2)
    # The banner comes right after the API answers; read up to it before stopping.
    output_lines: list[bytes] = []
    assert launcher.stdout is not None
    while b"Ctrl-C stops everything" not in b"".join(output_lines):
        line = launcher.stdout.readline()
        assert line, b"".join(output_lines)
        output_lines.append(line)
    return b"".join(output_lines).decode()


def _stop(launcher: subprocess.Popen[bytes], stop_signal: signal.Signals) -> tuple[int, str]:
    launcher.send_signal(stop_signal)
    code = launcher.wait(timeout=60)
    assert launcher.stdout is not None
    return code, launcher.stdout.read().decode()


def _all_gone(pids: set[int]) -> bool:
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not [pid for pid in pids if _alive(pid)]


def _kill(launcher: subprocess.Popen[bytes]) -> None:
    if launcher.poll() is None:
        launcher.kill()
        launcher.wait(timeout=30)
    if launcher.stdout is not None:
        launcher.stdout.close()


# The launcher takes the broker's and Redis' usual ports when they are free and writes to
# .run/logs: its tests run one at a time (on one worker when the suite runs in parallel).
@pytest.mark.xdist_group("devstack")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(
    ("command", "stop_signal"),
    [
        ([sys.executable, "-m", "devstack"], signal.SIGINT),
        ([sys.executable, "-m", "devstack"], signal.SIGTERM),
        (["make", "--no-print-directory", "run"], signal.SIGTERM),
    ],
    ids=["SIGINT", "SIGTERM", "make-run-SIGTERM"],
)
def test_the_dev_stack_starts_everything_and_stops_everything(
    command: list[str], stop_signal: signal.Signals
) -> None:
    port = free_port()
    launcher = _launch(command, port)
    try:
        banner = _read_banner(launcher, [port])
        started = _descendants(launcher.pid)
        # A broker, a Redis and four services, each its own process.
        assert len(started) >= 6, started
        # The banner names each service's metrics, and each serves them and its health.
        metrics = re.findall(r"metrics +(http://\S+)/metrics +\((\w+)-1", banner)
        assert sorted(name for _, name in metrics) == sorted(SERVICES), banner
        for base, _ in metrics:
            _wait_until_answers(f"{base}/metrics")
            assert _answers(f"{base}/healthz"), base
        code, rest = _stop(launcher, stop_signal)
        output = banner + rest
        assert f"http://127.0.0.1:{port}/api/v1" in output
        assert "dev-token" in output
        if command[0] != "make":
            # make itself dies of the signal; the launcher under it stops through its parent.
            assert code == 0, output
        assert _all_gone(started)
    finally:
        _kill(launcher)


@pytest.mark.xdist_group("devstack")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_dev_stack_starts_copies_of_each_service_on_a_local_cluster() -> None:
    port = free_port()
    while port_is_open("127.0.0.1", port + 10):
        port = free_port()
    launcher = _launch([sys.executable, "-m", "devstack"], port, COPIES="2", REDIS_CLUSTER="1")
    try:
        banner = _read_banner(launcher, [port, port + 10])
        started = _descendants(launcher.pid)
        commands = [_command_line(pid) for pid in started]
        for service in ("scheduler", "dialer", "notifier", "ingest"):
            assert sum(f"services.{service}" in line for line in commands) == 2, commands
            for n in (1, 2):
                assert (ROOT / ".run" / "logs" / f"{service}-{n}.log").exists()
        # A cluster node retitles its process "redis-server 127.0.0.1:<port> [cluster]".
        assert sum("[cluster]" in line for line in commands) == 3, commands
        assert f"http://127.0.0.1:{port}/api/v1  (ingest-1" in banner
        assert f"http://127.0.0.1:{port + 10}/api/v1  (ingest-2" in banner
        (redis_line,) = [line for line in banner.splitlines() if "Redis" in line]
        assert "a cluster: 127.0.0.1:" in redis_line
        code, rest = _stop(launcher, signal.SIGTERM)
        assert code == 0, banner + rest
        assert _all_gone(started)
    finally:
        _kill(launcher)
