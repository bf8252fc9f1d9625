"""Which failures the consumers retry (transient) and which send a message to the DLQ."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError
from pydantic import BaseModel, ValidationError
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    DataError,
    MasterDownError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.faults import TryAgain, is_transient, redis_code

TRANSIENT = [
    ResponseError("OOM command not allowed when used memory > 'maxmemory'."),
    OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
    ResponseError("READONLY You can't write against a read only replica."),
    ReadOnlyError("You can't write against a read only replica."),
    ResponseError("BUSY Redis is busy running a script. You can only call SCRIPT KILL."),
    ResponseError("LOADING Redis is loading the dataset in memory"),
    BusyLoadingError("Redis is loading the dataset in memory"),
    ResponseError("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is no"),
    MasterDownError("Link with MASTER is down"),
    ResponseError("TRYAGAIN Multiple keys request during rehashing of slot"),
    TryAgainError("Multiple keys request during rehashing of slot"),
    ResponseError("CLUSTERDOWN The cluster is down"),
    ClusterDownError("The cluster is down"),
    ResponseError("NOREPLICAS Not enough good replicas to write."),
    ResponseError("OOM command not allowed when used memory > 'maxmemory'. script: 6b3f, on @user"),
    ResponseError("ERR Error running script (call to f_6b3f): @user_script:1: -OOM command not"),
    RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
    RedisTimeoutError("Timeout reading from socket"),
    TimeoutError(),
    ConnectionResetError(),
    KafkaConnectionError(),
    TryAgain("the campaign kept changing"),
]


class _Shape(BaseModel):
    to: str


def _validation_error() -> ValidationError:
    try:
        _Shape.model_validate({})
    except ValidationError as exc:
        return exc
    raise AssertionError("validated")


PERMANENT = [
    ResponseError("ERR wrong number of arguments for 'hset' command"),
    ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
    ResponseError("BUSYKEY Target key name already exists."),
    ResponseError("ERR Error running script (call to f_6b3f): @user_script:3: bad argument"),
    ResponseError(""),
    NoScriptError("No matching script."),
    DataError("Invalid input of type: 'dict'."),
    ValueError("not a number"),
    KeyError("to"),
    _validation_error(),
]


@pytest.mark.parametrize("exc", TRANSIENT, ids=repr)
def test_a_failure_that_passes_by_itself_is_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize("exc", PERMANENT, ids=repr)
def test_a_failure_that_repeats_with_the_message_is_not_transient(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_a_failure_raised_from_a_transient_one_is_transient() -> None:
    failure = RuntimeError("storing the call failed")
    failure.__cause__ = ResponseError("READONLY You can't write against a read only replica.")
    assert is_transient(failure)


def test_a_failure_only_met_while_handling_another_is_judged_on_its_own() -> None:
    failure = ValueError("bad message")
    failure.__context__ = RedisConnectionError("refused")
    assert not is_transient(failure)


def test_the_code_is_the_first_word_of_the_reply() -> None:
    assert redis_code("OOM command not allowed") == "OOM"
    assert redis_code("  ") == ""
