"""The Redis backend switch: which backends the tests that use Redis are collected for."""

from __future__ import annotations

import pytest

pytest_plugins = ("pytester",)

_TESTS = """
import pytest

def test_with_redis(redis_server):
    pass

@pytest.mark.redis_backends("single")
def test_on_one_server_only(redis_server):
    pass

def test_without_redis():
    pass
"""


def _project(pytester: pytest.Pytester) -> None:
    """A test file beside the project's fixtures and switch."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest("from tests.conftest import *  # noqa: F403\n")
    pytester.makepyfile(test_switch=_TESTS)


def _collected(pytester: pytest.Pytester, *options: str) -> list[str]:
    _project(pytester)
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider", *options)
    return [line for line in result.outlines if "::" in line]


def test_by_default_every_test_runs_once_on_one_server_under_its_plain_id(
    pytester: pytest.Pytester,
) -> None:
    assert _collected(pytester) == [
        "test_switch.py::test_with_redis",
        "test_switch.py::test_on_one_server_only",
        "test_switch.py::test_without_redis",
    ]


def test_naming_both_backends_runs_each_redis_test_on_both_unless_its_marker_narrows_it(
    pytester: pytest.Pytester,
) -> None:
    assert _collected(pytester, "-o", "redis_backends=single cluster") == [
        "test_switch.py::test_with_redis[single]",
        "test_switch.py::test_with_redis[cluster]",
        "test_switch.py::test_on_one_server_only",
        "test_switch.py::test_without_redis",
    ]


def test_an_unknown_backend_is_refused(pytester: pytest.Pytester) -> None:
    _project(pytester)
    result = pytester.runpytest("--collect-only", "-o", "redis_backends=single sentinel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*redis_backends: unknown*sentinel*"])


def test_servers_named_in_the_environment_keep_the_tests_in_one_process(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(pytester)
    monkeypatch.setenv("REDIS_CLUSTER_URL", "redis://127.0.0.1:1/0")
    result = pytester.runpytest("--collect-only", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*REDIS_CLUSTER_URL name servers every test shares*"])
    assert pytester.runpytest("--collect-only", "-n", "0").ret == pytest.ExitCode.OK
