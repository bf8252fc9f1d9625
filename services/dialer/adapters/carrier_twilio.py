"""The Twilio carrier: places calls through Twilio's REST API and reads their status.

How a call goes arrives as Twilio's signed status callbacks at `{public_url}/carrier/twilio/status`
(checked with `services.dialer.domain.twilio.signature_matches`); `call_status` asks Twilio
when a callback is late or lost. The auth token is never logged nor put in an error.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from services.dialer.domain.telephony import (
    CARRIER_ERROR,
    CARRIER_UNAVAILABLE,
    CarrierEvent,
    PlaceCall,
    Placed,
    PlacementFailed,
    StatusUnavailable,
)
from services.dialer.domain.twilio import (
    MAX_TWIML_CHARS,
    backoff_seconds,
    callback_params_from_call,
    create_call_form,
    create_failure,
    event_from_status,
    retry_after_seconds,
    twiml_for,
)
from shared.rules.prompts import PROMPT_TOO_LARGE

log = logging.getLogger(__name__)

STATUS_CALLBACK_PATH = "/carrier/twilio/status"
_TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)


@dataclass(frozen=True, slots=True, kw_only=True)
class TwilioConfig:
    account_sid: str
    auth_token: str = field(repr=False)
    # The caller id used when a call names none (E.164).
    from_number: str
    # The dialer's public base URL, as Twilio reaches it (no trailing slash needed).
    public_url: str
    api_url: str = "https://api.twilio.com"
    # A media stream (wss://...) to connect each answered call to; None speaks the prompt.
    stream_url: str | None = None
    ring_timeout_seconds: int = 30
    request_timeout_seconds: float = 10
    max_attempts: int = 4
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 8

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    @property
    def status_callback_url(self) -> str:
        return self.public_url.rstrip("/") + STATUS_CALLBACK_PATH

    @property
    def calls_url(self) -> str:
        return f"{self.api_url.rstrip('/')}/2010-04-01/Accounts/{self.account_sid}/Calls"


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: Any
    retry_after: str | None


class TwilioCarrier:
    """The `Carrier` port on Twilio Programmable Voice. The session is the caller's unless the
    carrier came from `open_twilio_carrier`, whose `close()` closes it."""

    def __init__(
        self,
        config: TwilioConfig,
        session: aiohttp.ClientSession,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        owns_session: bool = False,
    ) -> None:
        self._config = config
        self._session = session
        self._owns_session = owns_session
        self._sleep = sleep
        self._jitter = jitter
        self._headers = {
            "Authorization": aiohttp.encode_basic_auth(config.account_sid, config.auth_token)
        }
        self._timeout = aiohttp.ClientTimeout(total=config.request_timeout_seconds)

    def __repr__(self) -> str:
        return f"TwilioCarrier(account_sid={self._config.account_sid!r})"

    @property
    def name(self) -> str:
        return "twilio"

    async def close(self) -> None:
        if self._owns_session:
            await self._session.close()

    async def place_call(self, request: PlaceCall) -> Placed:
        twiml = twiml_for(request.prompt, self._config.stream_url, request.call_id)
        if len(twiml) > MAX_TWIML_CHARS:
            raise PlacementFailed(PROMPT_TOO_LARGE, f"TwiML of {len(twiml)} characters")
        form = create_call_form(
            to=request.to,
            from_number=request.from_number or self._config.from_number,
            twiml=twiml,
            status_callback=self._config.status_callback_url,
            timeout_seconds=self._config.ring_timeout_seconds,
        )
        url = f"{self._config.calls_url}.json"
        last = ""
        for attempt in range(1, self._config.max_attempts + 1):
            # A timeout may come after Twilio took the call; trying again may then ring the
            # number twice. Twilio's create-call has no idempotency key to prevent it.
            answer = await self._request("POST", url, form)
            if isinstance(answer, str):
                last, wait = answer, None
            elif 200 <= answer.status < 300:
                sid = answer.body.get("sid") if isinstance(answer.body, dict) else None
                if isinstance(sid, str) and sid:
                    return Placed(sid)
                # Twilio took something: asking again could ring the number twice.
                raise PlacementFailed(CARRIER_ERROR, f"HTTP {answer.status} without a call sid")
            else:
                decision = create_failure(
                    answer.status,
                    _error_code(answer.body),
                    retry_after_seconds(answer.retry_after, datetime.now(UTC)),
                )
                if isinstance(decision, PlacementFailed):
                    log.warning("Twilio refused call %s: %s", request.call_id, decision.detail)
                    raise decision
                last, wait = f"HTTP {answer.status}", decision.wait_seconds
            if attempt < self._config.max_attempts:
                log.info(
                    "Twilio create-call for %s failed (%s), attempt %d of %d",
                    request.call_id,
                    last,
                    attempt,
                    self._config.max_attempts,
                )
                await self._sleep(self._wait(attempt, wait))
        attempts = self._config.max_attempts
        raise PlacementFailed(CARRIER_UNAVAILABLE, f"{last} after {attempts} attempts")

    async def call_status(self, carrier_call_id: str) -> CarrierEvent | None:
        url = f"{self._config.calls_url}/{quote(carrier_call_id, safe='')}.json"
        last = ""
        for attempt in range(1, self._config.max_attempts + 1):
            answer = await self._request("GET", url, None)
            if isinstance(answer, str):
                last, wait = answer, None
            elif answer.status == 200 and isinstance(answer.body, dict):
                return event_from_status(callback_params_from_call(answer.body))
            elif answer.status in (408, 429) or answer.status >= 500:
                last, wait = f"HTTP {answer.status}", None
                if answer.status == 429:
                    wait = retry_after_seconds(answer.retry_after, datetime.now(UTC))
            else:
                # 404 (an id Twilio does not know), 401/403: asking again will not help.
                code = _error_code(answer.body)
                raise StatusUnavailable(f"HTTP {answer.status}, Twilio error {code}")
            if attempt < self._config.max_attempts:
                await self._sleep(self._wait(attempt, wait))
        raise StatusUnavailable(f"{last} after {self._config.max_attempts} attempts")

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self._config.backoff_max_seconds)
        return backoff_seconds(
            attempt,
            self._config.backoff_base_seconds,
            self._config.backoff_max_seconds,
            self._jitter(),
        )

    async def _request(
        self, method: str, url: str, form: list[tuple[str, str]] | None
    ) -> _Answer | str:
        """Twilio's answer, or what went wrong on the way (the error's type alone: an aiohttp
        error can carry the request's headers, and with them the credentials)."""
        try:
            async with self._session.request(
                method, url, data=form, headers=self._headers, timeout=self._timeout
            ) as response:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
                return _Answer(response.status, body, response.headers.get("Retry-After"))
        except _TRANSPORT_ERRORS as exc:
            return type(exc).__name__


def _error_code(body: object) -> int | None:
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, int) else None


async def open_twilio_carrier(config: TwilioConfig) -> TwilioCarrier:
    """A carrier with a session of its own; `close()` it when done."""
    return TwilioCarrier(config, aiohttp.ClientSession(), owns_session=True)
