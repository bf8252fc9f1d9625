"""Figures a benchmark prints: percentiles, CPU use of its processes and of the rest of the
machine, and aligned tables."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0 when it is empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(fraction * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime 14, stime 15 (1-based, in man proc).
    return (int(fields[11]) + int(fields[12])) / _TICKS


def machine_busy_seconds() -> float:
    """CPU time every core spent not idle since boot, in seconds."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / _TICKS


@dataclass
class CpuWindow:
    """CPU used by named processes, and by everything else on the machine, over a window."""

    pids: dict[str, int]
    started: dict[str, float]
    machine_started: float
    wall_started: float

    @classmethod
    def open(cls, pids: Mapping[str, int], now: float) -> CpuWindow:
        return cls(
            dict(pids),
            {name: process_cpu_seconds(pid) for name, pid in pids.items()},
            machine_busy_seconds(),
            now,
        )

    def close(self, now: float) -> CpuUse:
        wall = max(now - self.wall_started, 1e-9)
        ours = {
            name: (process_cpu_seconds(pid) - self.started[name]) / wall
            for name, pid in self.pids.items()
        }
        machine = (machine_busy_seconds() - self.machine_started) / wall
        return CpuUse(ours, machine, max(0.0, machine - sum(ours.values())), wall)


@dataclass(frozen=True)
class CpuUse:
    """Cores used on average: per named process, the whole machine, and the rest of it."""

    per_process: dict[str, float]
    machine: float
    others: float
    # The window's length: cores × seconds is the CPU time a process used in it.
    seconds: float = 0.0

    def line(self) -> str:
        parts = ", ".join(f"{name} {cores:.2f}" for name, cores in self.per_process.items())
        return (
            f"cores used: {parts}; whole machine {self.machine:.2f} of {os.cpu_count()}, "
            f"of which not ours {self.others:.2f}"
        )


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    line = f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"
    try:
        with open("/proc/pressure/cpu") as pressure:
            some = pressure.readline().split()
        # The share of time some runnable task waited for a core (Linux PSI).
        line += f"; CPU pressure {some[1].split('=')[1]}% (10 s), {some[2].split('=')[1]}% (60 s)"
    except (OSError, IndexError):
        pass
    return line


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
