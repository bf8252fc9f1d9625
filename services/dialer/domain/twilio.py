"""Twilio Programmable Voice, as pure rules: request signatures, what a call's status means,
the TwiML and form of a new call, and what a failed create-call answer calls for.

Twilio signs each callback with `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed by the auth
token, over the full URL followed by every POST parameter's name and value, sorted by name
(and by value within a name). Its own validator tries the URL with and without the port,
since Twilio is not consistent about which one it signs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit
from xml.sax.saxutils import escape, quoteattr

from services.dialer.domain.telephony import (
    CARRIER_ERROR,
    INVALID_NUMBER,
    CarrierEvent,
    PlacementFailed,
)
from shared.rules.outcomes import Outcome
from shared.rules.prompts import PROMPT_TOO_LARGE

Params = Mapping[str, str] | Iterable[tuple[str, str]]

# Twilio error codes that say the number itself cannot be called, whether the create request
# was refused (HTTP 400) or the call failed later (a callback's `ErrorCode`). Every other code
# is the carrier's or our account's problem: geo permissions (21215), an unverified or invalid
# caller id (21210, 21212), credentials; those end as `carrier_error`, never as the number's
# fault (an invalid number may put it on a do-not-call list).
INVALID_NUMBER_CODES: frozenset[int] = frozenset(
    {
        13223,  # Dial: invalid phone number format (not E.164)
        13224,  # Dial: Twilio does not support calling this number, or it is invalid
        13225,  # Dial: the number is restricted (blocked premium or high-risk destination)
        21211,  # invalid 'To' phone number
        21214,  # 'To' phone number cannot be reached
        21216,  # the destination number is blocked by Twilio (fraud risk, regulation)
        21217,  # phone number does not appear to be valid
    }
)
# The inline `Twiml` parameter may hold at most 4,000 characters (error 32018).
MAX_TWIML_CHARS = 4000
TWIML_TOO_LARGE_CODE = 32018

STATUS_CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
MACHINE_DETECTION = "Enable"

# Characters XML 1.0 cannot hold at all, escaped or not: dropped from a spoken prompt.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_UNANSWERED = {
    "no-answer": Outcome.NO_ANSWER,
    "busy": Outcome.BUSY,
    "canceled": Outcome.CANCELLED,
}

# A Call resource's fields (GET Calls/{Sid}.json) by the names its callbacks use.
_CALLBACK_NAMES = {
    "sid": "CallSid",
    "status": "CallStatus",
    "answered_by": "AnsweredBy",
    "duration": "CallDuration",
    "to": "To",
    "from": "From",
    "direction": "Direction",
}


def _pairs(params: Params) -> list[tuple[str, str]]:
    # A multidict is a Mapping whose items() holds every value of a repeated name.
    return list(params.items()) if isinstance(params, Mapping) else list(params)


def twilio_signature(url: str, params: Params, auth_token: str) -> str:
    """The `X-Twilio-Signature` of a POST to `url` with these form parameters."""
    # Like Twilio's own validator, a name with the same value twice counts once.
    signed = url + "".join(name + value for name, value in sorted(set(_pairs(params))))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _url_variants(url: str) -> set[str]:
    """The URL as given, without its port, and with the scheme's default port."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return {url}
    netloc = parts.netloc
    if port is not None:
        without = netloc[: netloc.rfind(":")]
        return {url, urlunsplit(parts._replace(netloc=without))}
    default = 443 if parts.scheme == "https" else 80
    return {url, urlunsplit(parts._replace(netloc=f"{netloc}:{default}"))}


def signature_matches(url: str, params: Params, auth_token: str, signature: str) -> bool:
    """Whether `signature` is Twilio's for this request (the URL tried with and without port)."""
    pairs = _pairs(params)
    given = signature.encode()
    return any(
        hmac.compare_digest(twilio_signature(variant, pairs, auth_token).encode(), given)
        for variant in _url_variants(url)
    )


def _code(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def error_for_code(code: int | None) -> str:
    """The attempt's error for a Twilio error code: the number's fault, or the carrier's."""
    return INVALID_NUMBER if code in INVALID_NUMBER_CODES else CARRIER_ERROR


def _seconds(value: str | None) -> int:
    seconds = _code(value) if value is not None else None
    return max(seconds or 0, 0)


def _by_machine(answered_by: str | None) -> bool:
    return answered_by is not None and (answered_by.startswith("machine_") or answered_by == "fax")


def event_from_status(params: Mapping[str, str]) -> CarrierEvent | None:
    """What a status callback (or a Call resource in callback names) says; None while the call
    is queued or ringing, and for a status this does not know."""
    sid = params.get("CallSid")
    status = params.get("CallStatus")
    if not sid:
        return None
    if status == "in-progress":
        return CarrierEvent(sid, answered=True)
    if status == "completed":
        outcome = Outcome.VOICEMAIL if _by_machine(params.get("AnsweredBy")) else Outcome.COMPLETED
        return CarrierEvent(sid, True, outcome, float(_seconds(params.get("CallDuration"))))
    if status in _UNANSWERED:
        return CarrierEvent(sid, answered=False, outcome=_UNANSWERED[status])
    if status == "failed":
        error = error_for_code(_code(params.get("ErrorCode", "")))
        return CarrierEvent(sid, answered=False, outcome=Outcome.FAILED, error=error)
    return None


def callback_params_from_call(resource: Mapping[str, object]) -> dict[str, str]:
    """A Call resource's JSON (GET Calls/{Sid}.json) in the names of a status callback."""
    return {
        name: str(resource[field])
        for field, name in _CALLBACK_NAMES.items()
        if resource.get(field) is not None
    }


def twiml_for(prompt: str, stream_url: str | None, call_id: str) -> str:
    """The call's instructions: speak the prompt, or connect the audio to a media stream."""
    if stream_url is None:
        return f"<Response><Say>{escape(_NOT_XML.sub('', prompt))}</Say></Response>"
    return (
        f"<Response><Connect><Stream url={quoteattr(stream_url)}>"
        f'<Parameter name="call_id" value={quoteattr(call_id)}/>'
        "</Stream></Connect></Response>"
    )


def create_call_form(
    *, to: str, from_number: str, twiml: str, status_callback: str, timeout_seconds: int
) -> list[tuple[str, str]]:
    """The form of POST Calls.json: each status callback event as a field of its own."""
    return [
        ("To", to),
        ("From", from_number),
        ("Twiml", twiml),
        ("StatusCallback", status_callback),
        *(("StatusCallbackEvent", event) for event in STATUS_CALLBACK_EVENTS),
        ("StatusCallbackMethod", "POST"),
        ("MachineDetection", MACHINE_DETECTION),
        ("Timeout", str(timeout_seconds)),
    ]


@dataclass(frozen=True, slots=True)
class RetryLater:
    """A passing failure: try again after `wait_seconds` (the answer's Retry-After) or, when
    None, after the usual backoff."""

    wait_seconds: float | None = None


def create_failure(
    status: int, code: int | None, retry_after: float | None = None
) -> RetryLater | PlacementFailed:
    """What a create-call answer other than 2xx calls for: a retry (throttled, a timeout, a
    server error) or a final failure (any other 4xx: the number's fault or the carrier's)."""
    if status in (408, 429) or status >= 500:
        return RetryLater(retry_after if status == 429 else None)
    detail = f"HTTP {status}" + (f", Twilio error {code}" if code is not None else "")
    if code == TWIML_TOO_LARGE_CODE:
        return PlacementFailed(PROMPT_TOO_LARGE, detail)
    return PlacementFailed(error_for_code(code), detail)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header's wait: seconds, or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, by RFC 2822
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def backoff_seconds(attempt: int, base: float, cap: float, jitter: float) -> float:
    """The wait after failed attempt `attempt` (1, 2, ...): exponential, capped, times
    `jitter` in [0, 1] ("full jitter", so that many callers do not retry in step)."""
    return jitter * min(cap, base * 2.0 ** (attempt - 1))
