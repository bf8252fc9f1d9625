"""Ports for the servers tests and the local stack start: below the kernel's ephemeral range,
and a block of their own for each parallel test worker."""

from __future__ import annotations

import socket

import pytest

from devstack import processes


def _ephemeral_start() -> int:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
        return int(ranges.read().split()[0])


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(processes, "_next_port", [])
    return monkeypatch


def test_ports_come_from_below_the_ephemeral_range_and_are_free(
    fresh: pytest.MonkeyPatch,
) -> None:
    ports = [processes.free_port() for _ in range(20)]

    assert len(set(ports)) == 20
    assert max(ports) < _ephemeral_start()
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_in_use_is_passed_over(fresh: pytest.MonkeyPatch) -> None:
    first = processes.free_port()
    fresh.setattr(processes, "_next_port", [first])
    with socket.socket() as held:
        held.bind(("127.0.0.1", first))
        held.listen()

        assert processes.free_port() == first + 1


def test_parallel_workers_draw_from_blocks_that_do_not_meet(
    fresh: pytest.MonkeyPatch,
) -> None:
    drawn: list[set[int]] = []
    for worker in range(4):
        fresh.setenv("PYTEST_XDIST_WORKER", f"gw{worker}")
        fresh.setenv("PYTEST_XDIST_WORKER_COUNT", "4")
        fresh.setattr(processes, "_next_port", [])
        block = processes._port_block()
        ports = {processes.free_port() for _ in range(10)}
        assert all(port in block for port in ports)
        drawn.append(set(block))

    for index, taken in enumerate(drawn):
        for other in drawn[index + 1 :]:
            assert not taken & other
