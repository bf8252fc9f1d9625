"""Starting local servers: a server is up only once it holds its own port."""

from __future__ import annotations

import sys

import pytest

from devstack.processes import Managed, free_port, listens_on, redis_command, wait_for_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


def test_a_server_that_lost_its_port_to_another_is_not_taken_for_it() -> None:
    port = free_port()
    first = Managed("redis", redis_command(port)).start()
    second = Managed("redis", redis_command(port))
    try:
        assert first.process is not None
        wait_for_port("127.0.0.1", port, 30, first.process)
        assert listens_on(first.pid, port)

        second.start()
        assert second.process is not None
        with pytest.raises(RuntimeError, match="exited"):
            wait_for_port("127.0.0.1", port, 30, second.process)
        assert not listens_on(second.pid, port)
    finally:
        first.stop()
        second.stop()
