"""Optional sampling profiles of a service process during a benchmark, with py-spy.

py-spy is not a project dependency: `pip install py-spy` into the venv to use `--profile`.
A profile perturbs the figures a little (the process is paused for each sample), so the
benchmarks say when one was taken.
"""

from __future__ import annotations

import shutil
import signal
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.servers import Started
from devstack.processes import Managed


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@dataclass
class Profile:
    process: Managed
    output: Path


def start_profile(group: Started, name: str, pid: int, seconds: float) -> Profile | None:
    """Samples `pid` for `seconds` into collapsed stacks (`<logs>/<name>.folded`)."""
    binary = py_spy()
    if binary is None:
        print("  (no py-spy: pip install py-spy into the venv to profile)")
        return None
    output = group.logs / f"{name}.folded"
    command = [
        binary,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, int(seconds))),
        "--rate",
        "200",
        "--format",
        "raw",
        "--output",
        str(output),
    ]
    return Profile(group.start(f"py-spy-{name}", command), output)


def stop_profile(profile: Profile | None) -> None:
    """Tells py-spy to stop sampling and write what it has, if it is still sampling."""
    if profile is not None and profile.process.alive():
        assert profile.process.process is not None
        profile.process.process.send_signal(signal.SIGINT)


def finish_profile(group: Started, profile: Profile | None, top: int = 25) -> str:
    """Waits for the profile and returns where the samples went, by function."""
    if profile is None:
        return ""
    assert profile.process.process is not None
    profile.process.process.wait(timeout=120)
    group.stop(profile.process)
    if not profile.output.exists():
        return f"  (py-spy wrote nothing; see {group.logs})"
    return summarize(profile.output, top)


def _function(frame: str) -> str:
    """`name (path:line)` -> `name (path)`: lines of one function are added up."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0].rstrip(")")
    for marker in ("site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def summarize(folded: Path, top: int) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_function(f) for f in stack.split(";") if f]
        if frames:
            own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if total == 0:
        return "  (no samples)"
    lines = [f"  {total} samples (busy only) in {folded}", "  self time:"]
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines.append("  inclusive time:")
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines)
