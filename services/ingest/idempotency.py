"""The Idempotency-Key extension: a POST under /api/v1 is answered once, then replayed.

A request with the header claims its key with one `SET NX GET PX` (the claim records the body's
fingerprint); the handler runs only for the request that made the claim. Its answer is then
stored for 24 h by a compare-and-set on that claim (a 2xx or 4xx), or the claim is deleted so
the client may retry (an exception, a 5xx or a 429). One round trip before the handler, one
after.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import orjson
from aiohttp import hdrs, web
from redis.asyncio import Redis

from services.ingest.domain.errors import ApiError, Invalid
from services.ingest.handlers.common import json_response
from services.ingest.keys import ENVIRONMENT, RUNTIME
from shared import keys
from shared.store import lua

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HEADER: Final = "Idempotency-Key"
REPLAYED_HEADER: Final = "Idempotent-Replayed"
MAX_KEY_LENGTH: Final = 255
KEEP_MS: Final = 24 * 60 * 60 * 1000
# How long a claim blocks its key if the process dies before settling it. Far longer than any
# request may take (a client gives up well before), far shorter than the 24 h an answer is kept.
LEASE_MS: Final = 5 * 60 * 1000

IN_PROGRESS = "in_progress"
DONE = "done"


# --- Pure rules ---------------------------------------------------------------------------


def header_errors(values: Sequence[str]) -> list[str]:
    """Every message that applies to the header's values; empty when there is one valid key."""
    if len(values) != 1:
        return [f"The {HEADER} must be sent once."]
    value = values[0]
    errors: list[str] = []
    if not 1 <= len(value) <= MAX_KEY_LENGTH:
        errors.append(f"The {HEADER} must be between 1 and {MAX_KEY_LENGTH} characters.")
    if any(not " " <= char <= "~" for char in value):
        errors.append(f"The {HEADER} must contain only printable ASCII characters.")
    return errors


def fingerprint(body: bytes) -> str:
    """SHA-256 of the body; a JSON body is canonicalised first, so key order and spacing don't
    count. Canonical JSON is valid JSON and the raw fallback is not, so the two never collide."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def scope_of(method: str, path: str, key: str) -> str:
    """A digest naming one key on one endpoint: unambiguous and bounded whatever the path."""
    return hashlib.sha256(orjson.dumps([method, path, key])).hexdigest()


def is_kept(status: int) -> bool:
    """Whether an answer is replayed: not a 5xx, nor a 429 (neither did the work; retry)."""
    return status < 500 and status != 429


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Claimed:
    """This request owns the key; `record` is the exact value it wrote, for compare-and-set."""

    key: str
    fingerprint: str
    record: str


@dataclass(frozen=True, slots=True)
class Replay:
    response: StoredResponse


@dataclass(frozen=True, slots=True)
class InProgress:
    pass


@dataclass(frozen=True, slots=True)
class Reused:
    pass


Outcome = Claimed | Replay | InProgress | Reused


def claim_record(body_fingerprint: str, token: str) -> str:
    return orjson.dumps(
        {"fingerprint": body_fingerprint, "state": IN_PROGRESS, "claim": token}
    ).decode()


def done_record(body_fingerprint: str, response: StoredResponse) -> str:
    try:
        body, encoding = response.body.decode(), "utf-8"
    except UnicodeDecodeError:
        body, encoding = base64.b64encode(response.body).decode(), "base64"
    return orjson.dumps(
        {
            "fingerprint": body_fingerprint,
            "state": DONE,
            "status": response.status,
            "content_type": response.content_type,
            "body": body,
            "body_encoding": encoding,
        }
    ).decode()


def outcome_of(claim: Claimed, previous: str | None) -> Outcome:
    """What a claim attempt means, given the value that was already there (None: we own it)."""
    if previous is None:
        return claim
    stored: dict[str, Any] = orjson.loads(previous)
    if stored["fingerprint"] != claim.fingerprint:
        return Reused()
    if stored["state"] != DONE:
        return InProgress()
    raw = str(stored["body"])
    try:
        body = base64.b64decode(raw) if stored["body_encoding"] == "base64" else raw.encode()
    except binascii.Error as exc:
        raise ValueError(f"corrupt idempotency record at {claim.key}") from exc
    return Replay(StoredResponse(int(stored["status"]), str(stored["content_type"]), body))


def stored_response(response: web.StreamResponse) -> StoredResponse | None:
    """The answer to keep for replay, or None when it must not be kept."""
    if not isinstance(response, web.Response) or not is_kept(response.status):
        return None
    body = response.body
    if body is None:
        body = b""
    if not isinstance(body, bytes):  # a streamed payload cannot be replayed
        return None
    return StoredResponse(response.status, response.headers.get(hdrs.CONTENT_TYPE, ""), body)


def replay(stored: StoredResponse) -> web.Response:
    headers = {REPLAYED_HEADER: "true"}
    if stored.content_type:
        headers[hdrs.CONTENT_TYPE] = stored.content_type
    return web.Response(body=stored.body, status=stored.status, headers=headers)


# --- Redis ------------------------------------------------------------------------------------

_SETTLE_IDEMPOTENT_REQUEST: Final = lua.source(__package__, "settle_idempotent_request.lua")


class IdempotencyStore:
    """Claims, answers and releases of Idempotency-Keys; one atomic command each."""

    def __init__(self, redis: Redis, lease_ms: int = LEASE_MS, keep_ms: int = KEEP_MS) -> None:
        self._redis = redis
        self._lease_ms = lease_ms
        self._keep_ms = keep_ms
        self._settle = redis.register_script(_SETTLE_IDEMPOTENT_REQUEST)

    async def claim(self, key: str, body_fingerprint: str) -> Outcome:
        record = claim_record(body_fingerprint, secrets.token_hex(16))
        previous = await self._redis.set(key, record, nx=True, get=True, px=self._lease_ms)
        return outcome_of(Claimed(key, body_fingerprint, record), cast(str | None, previous))

    async def finish(self, claim: Claimed, response: StoredResponse) -> bool:
        """Stores the answer for replay; False when the claim is no longer ours."""
        record = done_record(claim.fingerprint, response)
        return bool(
            await self._settle(keys=[claim.key], args=[claim.record, record, self._keep_ms])
        )

    async def release(self, claim: Claimed) -> bool:
        """Deletes the claim so the client can retry; False when it is no longer ours."""
        return bool(await self._settle(keys=[claim.key], args=[claim.record, "", 0]))


# --- Answering --------------------------------------------------------------------------------


def key_reused() -> ApiError:
    return ApiError(
        422,
        "This Idempotency-Key was already used with a different request body.",
        "IDEMPOTENCY_KEY_REUSED",
    )


def key_in_progress() -> ApiError:
    return ApiError(
        409,
        "A request with this Idempotency-Key is still in progress.",
        "IDEMPOTENCY_KEY_IN_PROGRESS",
    )


def applies(request: web.Request) -> bool:
    """Whether the extension covers an authenticated request to a route: a POST with the
    header."""
    return request.method == hdrs.METH_POST and HEADER in request.headers


async def answer_once(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Runs `handler` for the first request under its key and replays its answer to the
    others; the key is scoped by the environment the token check set."""
    values = request.headers.getall(HEADER)
    errors = header_errors(values)
    if errors:
        raise Invalid({HEADER: errors})
    body = await request.read()  # cached: the handler reads the same bytes
    key = keys.idempotency(request[ENVIRONMENT], scope_of(request.method, request.path, values[0]))
    store = request.app[RUNTIME].idempotency
    outcome = await store.claim(key, fingerprint(body))
    if isinstance(outcome, Replay):
        return replay(outcome.response)
    if isinstance(outcome, Reused):
        raise key_reused()
    if isinstance(outcome, InProgress):
        raise key_in_progress()
    return await _answer_once(store, outcome, request, handler)


async def _answer_once(
    store: IdempotencyStore, claim: Claimed, request: web.Request, handler: Handler
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except ApiError as exc:  # the documented refusals are answers too: keep them
        response = json_response(exc.body(), status=exc.status)
    except Invalid as exc:
        response = json_response(exc.body(), status=422)
    except BaseException:
        await _release(store, claim)
        raise
    kept = stored_response(response)
    if kept is None:
        await _release(store, claim)
        return response
    try:
        if not await store.finish(claim, kept):
            log.warning("idempotency claim %s was taken over before it was settled", claim.key)
    except Exception:
        # The work is done: answer it. The claim runs out after its lease.
        log.exception("could not store the answer for idempotency key %s", claim.key)
    return response


async def _release(store: IdempotencyStore, claim: Claimed) -> None:
    try:
        await store.release(claim)
    except Exception:
        log.exception("could not release idempotency claim %s", claim.key)
