"""A process run by `serve_until_signalled` stops on SIGTERM, and exits within its grace even
when its orderly stop never returns."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared.settings import ShutdownSettings

ROOT = Path(__file__).resolve().parents[3]
_PROGRAM = """
import asyncio, sys
from shared.settings import ShutdownSettings
from shared.shutdown import serve_until_signalled

async def start():
    print("started", flush=True)

async def stop():
    if sys.argv[1] == "hang":
        await asyncio.Event().wait()  # a dependency that never answers

asyncio.run(serve_until_signalled(start, stop, ShutdownSettings(shutdown_grace_seconds=1)))
"""


def _stopped(mode: str) -> tuple[int, float]:
    process = subprocess.Popen(
        [sys.executable, "-c", _PROGRAM, mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "started"
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=10)
        return status, time.monotonic() - began
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_a_process_whose_stop_returns_exits_with_status_0_at_once() -> None:
    status, took = _stopped("prompt")
    assert status == 0
    assert took < 1


def test_a_process_whose_stop_hangs_exits_with_status_1_when_the_grace_runs_out() -> None:
    status, took = _stopped("hang")
    assert status == 1
    assert 1 <= took < 3


@pytest.mark.parametrize(
    ("grace", "drain"), [(30.0, 25.0), (10.0, 8.0), (5.0, 4.0), (1.0, 0.8), (60.0, 55.0)]
)
def test_the_drain_budget_keeps_a_fifth_of_the_grace_and_at_most_5_s_for_closing(
    grace: float, drain: float
) -> None:
    assert ShutdownSettings(shutdown_grace_seconds=grace).drain_seconds == pytest.approx(drain)


def test_the_dialer_drains_for_the_shared_budget_unless_told_less(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.dialer.settings import DialerSettings

    monkeypatch.setenv("SHUTDOWN_GRACE_SECONDS", "10")
    assert DialerSettings().drain_budget == 8
    monkeypatch.setenv("DIALER_DRAIN_SECONDS", "3")
    assert DialerSettings().drain_budget == 3
    monkeypatch.setenv("DIALER_DRAIN_SECONDS", "60")
    assert DialerSettings().drain_budget == 8


def test_the_notifier_drains_for_the_shared_budget_unless_told_less(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.notifier.settings import NotifierSettings

    monkeypatch.setenv("SHUTDOWN_GRACE_SECONDS", "10")
    assert NotifierSettings().drain_budget == 8
    monkeypatch.setenv("NOTIFIER_SHUTDOWN_GRACE_MS", "2500")
    assert NotifierSettings().drain_budget == 2.5
    monkeypatch.setenv("NOTIFIER_SHUTDOWN_GRACE_MS", "60000")
    assert NotifierSettings().drain_budget == 8
