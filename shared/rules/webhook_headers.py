"""Which custom headers a webhook may send: names that are HTTP tokens, values without control
characters, none of the headers the sender sets itself, and each name once.

The API refuses a header that breaks a rule; the sender leaves out a stored one that does
(saved before the rule), so that a send never fails on it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

# RFC 9110 5.6.2: token = 1*tchar; tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
# "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
TOKEN_PATTERN: Final = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"
# Every control character but tab (RFC 9110 5.5: CR, LF and NUL are never allowed; the rest
# are obsolete or dangerous to receivers).
VALUE_PATTERN: Final = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"
# Matched whole (`fullmatch`): in Python `$` also matches before a final newline.
_TOKEN: Final = re.compile(TOKEN_PATTERN)
_VALUE: Final = re.compile(VALUE_PATTERN)

# Set by the sender: the message's framing and routing, the connection's own headers
# (RFC 9110 7.6.1), and the content type and encoding of the JSON body it signs.
SENDER_HEADERS: Final = (
    "Host",
    "Content-Length",
    "Content-Type",
    "Content-Encoding",
    "Transfer-Encoding",
    "Connection",
    "Keep-Alive",
    "Proxy-Connection",
    "TE",
    "Trailer",
    "Upgrade",
)
_SENDER_NAMES: Final = {name.lower(): name for name in SENDER_HEADERS}
# The Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature) and any
# the specification may add.
SIGNATURE_PREFIX: Final = "webhook-"

NOT_A_TOKEN: Final = (
    "must be an HTTP header name: letters, digits and !#$%&'*+-.^_`|~ only, no spaces"
)
CONTROL_CHARACTER: Final = (
    "must not contain control characters (CR, LF, NUL and the like; tab is allowed)"
)


@dataclass(frozen=True, slots=True)
class HeaderProblem:
    """Why the header at `index` may not be sent; `part` is the `key` or the `value`."""

    index: int
    part: Literal["key", "value"]
    message: str


def is_header_value(value: str) -> bool:
    """Whether `value` may be sent as a header value (no control character but tab)."""
    return _VALUE.fullmatch(value) is not None


def name_problem(name: str) -> str | None:
    """Why `name` may not be a custom header's name on its own, or None."""
    if _TOKEN.fullmatch(name) is None:
        return NOT_A_TOKEN
    lowered = name.lower()
    if lowered in _SENDER_NAMES:
        return f"must not be {_SENDER_NAMES[lowered]}: the sender sets it"
    if lowered.startswith(SIGNATURE_PREFIX):
        return f"must not start with {SIGNATURE_PREFIX}: the signature headers are the sender's"
    return None


def header_problems(headers: Sequence[tuple[str, str]]) -> list[HeaderProblem]:
    """Every rule each (name, value) breaks, in order; a name repeated (in any case) is a
    problem of each header after the first that has it."""
    problems: list[HeaderProblem] = []
    first_of: dict[str, int] = {}
    for index, (name, value) in enumerate(headers):
        problem = name_problem(name)
        if problem is None:
            first = first_of.setdefault(name.lower(), index)
            if first != index:
                problem = f"must not repeat the name of header {first} (names ignore case)"
        if problem is not None:
            problems.append(HeaderProblem(index, "key", problem))
        if not is_header_value(value):
            problems.append(HeaderProblem(index, "value", CONTROL_CHARACTER))
    return problems


def sendable_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers that break no rule, in order: what a sender may put on the wire."""
    refused = {problem.index for problem in header_problems(headers)}
    return [header for index, header in enumerate(headers) if index not in refused]
