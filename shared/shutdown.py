"""Stopping a service process within its grace (`ShutdownSettings`).

SIGTERM or SIGINT asks the process to stop. From then on a watchdog thread counts down the
grace: if the orderly stop has not returned when it runs out (a dependency that never answers,
a loop that is stuck), the process exits at once with status 1, so it never outlives the
bound. The watchdog is a thread, not a task: it fires even when the event loop does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable

from shared.settings import ShutdownSettings

log = logging.getLogger(__name__)

# The exit status of a process whose grace ran out before it had stopped.
GRACE_RAN_OUT = 1
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Deadline:
    """A point in time some seconds from now."""

    def __init__(self, seconds: float) -> None:
        self._at = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds until the deadline, never below zero."""
        return max(0.0, self._at - time.monotonic())


def arm_watchdog(seconds: float) -> threading.Timer:
    """Ends the process with status `GRACE_RAN_OUT` in `seconds`, unless cancelled first."""

    def fire() -> None:
        log.error("shutdown grace of %.1f s ran out; exiting now", seconds)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # exiting regardless
                stream.flush()
        os._exit(GRACE_RAN_OUT)

    timer = threading.Timer(seconds, fire)
    timer.name = "shutdown-watchdog"
    timer.daemon = True
    timer.start()
    return timer


async def serve_until_signalled(
    start: Callable[[], Awaitable[object]],
    stop: Callable[[], Awaitable[object]],
    settings: ShutdownSettings,
) -> None:
    """Runs `start`, waits for SIGTERM or SIGINT, then runs `stop` under the watchdog.

    A signal that arrives while `start` is still running stops the process too (what
    started is stopped). A second signal changes nothing: the grace already runs."""
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()
    watchdog: list[threading.Timer] = []

    def on_signal(signum: int) -> None:
        if signalled.is_set():
            return
        log.info(
            "%s received; stopping within %.1f s",
            signal.Signals(signum).name,
            settings.shutdown_grace_seconds,
        )
        watchdog.append(arm_watchdog(settings.shutdown_grace_seconds))
        signalled.set()

    for signum in _SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    starting = asyncio.ensure_future(start())
    waiting = asyncio.ensure_future(signalled.wait())
    try:
        await asyncio.wait({starting, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # a failed start ends here, with its error
            await waiting
        else:
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
        await stop()
        log.info("stopped")
    finally:
        waiting.cancel()
        for signum in _SIGNALS:
            loop.remove_signal_handler(signum)
        for timer in watchdog:
            timer.cancel()


async def stop_tasks(tasks: list[asyncio.Task[None]], seconds: float) -> None:
    """Waits up to `seconds` for tasks told to stop, then cancels those still running."""
    if not tasks:
        return
    _, pending = await asyncio.wait(set(tasks), timeout=seconds)
    for task in pending:
        log.warning("%s did not stop within %.1f s; cancelled", task.get_name(), seconds)
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
