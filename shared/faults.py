"""Which failures pass by themselves: the consumers retry those, and dead-letter the rest.

A failure is transient when retrying the same message later can succeed without anyone
changing it: Redis or Kafka unreachable or slow, a Redis that refuses writes for now (out of
memory, a replica during failover, busy running a script, loading its data set, a cluster
with slots down or moving), or a handler's own `TryAgain`. Anything else (a message that does
not parse, a rule it breaks, a defect) fails the same way every time: the message goes to the
DLQ with the reason, so its partition moves on.

`is_transient` only looks at the exception (its type, the error code a Redis reply starts
with, and what it was raised from); it does no I/O.
"""

from __future__ import annotations

import re
from typing import Final

from aiokafka.errors import KafkaError
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


class TryAgain(Exception):
    """A handler's own failure that passes by itself (e.g. state that kept changing under it)."""


# Failures that pass by themselves, by type. BusyLoadingError is a ConnectionError in
# redis-py; listed anyway, as its own kind.
TRANSIENT_TYPES: Final[tuple[type[BaseException], ...]] = (
    TryAgain,
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    OutOfMemoryError,
    ReadOnlyError,
    ClusterDownError,
    MasterDownError,
    TryAgainError,
    KafkaError,
    OSError,
    TimeoutError,
)

# Redis error codes (the first word of an error reply) that pass by themselves. redis-py turns
# some into their own classes; a reply from inside a script, or one it does not know (`BUSY`,
# `NOREPLICAS`), arrives as a plain ResponseError that starts with the code.
TRANSIENT_REDIS_CODES: Final = frozenset(
    {"OOM", "READONLY", "BUSY", "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS"}
)

# How far down the chain of causes (`raise … from`) to look: a store that re-raises what Redis
# said.
_CAUSE_DEPTH: Final = 5


def redis_code(message: str) -> str:
    """The error code of a Redis error reply as redis-py words it: its first word."""
    words = message.split(maxsplit=1)
    return words[0] if words else ""


def is_transient(exc: BaseException) -> bool:
    """Whether processing the same message again later can succeed (see the module doc)."""
    seen: BaseException | None = exc
    for _ in range(_CAUSE_DEPTH):
        if seen is None:
            return False
        if isinstance(seen, TRANSIENT_TYPES):
            return True
        if isinstance(seen, ResponseError):
            return _reply_is_transient(str(seen))
        seen = seen.__cause__
    return False


# An older Redis words a failure inside a script as
# "ERR Error running script (call to f_…): @user_script:1: -OOM command not allowed …".
_IN_SCRIPT: Final = re.compile(
    r"[\s:-](?:" + "|".join(sorted(TRANSIENT_REDIS_CODES)) + r")\s", re.ASCII
)


def _reply_is_transient(message: str) -> bool:
    code = redis_code(message)
    if code in TRANSIENT_REDIS_CODES:
        return True
    return code == "ERR" and "script" in message and _IN_SCRIPT.search(message) is not None
