"""`make run`'s launcher: everything comes up, and a signal takes everything down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from devstack.processes import free_port

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


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


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
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL")}
    env.update(API_PORT=str(port), KAFKA_SESSION_TIMEOUT_MS="2000")
    launcher = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while not _healthy(port):
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
        started = _descendants(launcher.pid)
        # A broker, a Redis and four services, each its own process.
        assert len(started) >= 6, started
        launcher.send_signal(stop_signal)
        code = launcher.wait(timeout=60)
        output = (b"".join(output_lines) + launcher.stdout.read()).decode()
        assert f"http://127.0.0.1:{port}/api/v1" in output
        assert "dev-token" in output
        if command[0] != "make":
            # make itself dies of the signal; the launcher under it stops through its parent.
            assert code == 0, output
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in started) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in started if _alive(pid)]
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait(timeout=30)
        if launcher.stdout is not None:
            launcher.stdout.close()
