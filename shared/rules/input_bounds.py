"""How large what a customer sends may be: the bounds the API and the request topic share."""

from __future__ import annotations

import json
from typing import Any, Final

import orjson

# A call's first attempt waits at most this long after the request (30 days).
MAX_INITIAL_CALL_DELAY_S: Final = 30 * 24 * 3600
# A call's `payload` and `context` each, as compact UTF-8 JSON.
MAX_CALL_JSON_BYTES: Final = 16 * 1024
MAX_DESCRIPTION_CHARS: Final = 2000
MAX_WEBHOOKS_PER_CAMPAIGN: Final = 20
MAX_CUSTOM_HEADERS: Final = 20


def json_size(value: Any) -> int:
    """The bytes of `value` as compact UTF-8 JSON (what is stored and sent of it)."""
    try:
        return len(orjson.dumps(value))
    except (orjson.JSONEncodeError, TypeError):
        # Integers beyond 64 bits, or nesting deeper than orjson writes: the standard writer.
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        except (RecursionError, ValueError, TypeError):
            return MAX_CALL_JSON_BYTES + 1
        return len(text.encode("utf-8", "surrogatepass"))


def json_too_large(value: Any) -> str | None:
    """Why `value` (a call's payload or context) is refused, or None when it fits."""
    if json_size(value) > MAX_CALL_JSON_BYTES:
        return f"must not be greater than {MAX_CALL_JSON_BYTES} bytes as JSON"
    return None
