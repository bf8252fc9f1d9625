"""A fake Twilio REST API for tests: creates calls, answers status look-ups and sends signed
status callbacks, with knobs for the failures a real carrier has.

In a test: `fake = await FakeCarrier().start()`, point the carrier at `fake.api_url`, and
`await fake.stop()`. As a process, for tests that run the dialer as one:

    python -m tests.fake_carrier --port N --auth-token T --account-sid S

The destination number's last digit picks what happens, as in the sandbox: 0-3 and 8 answered
by a person and completed; 4 no answer; 5 busy; 6 answered by a machine; 7 failed with error
31005 (a carrier error); 9 failed with error 21217 (an invalid number).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import re
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import aiohttp
from aiohttp import web

from services.dialer.domain.twilio import MAX_TWIML_CHARS, twilio_signature

API_VERSION = "2010-04-01"
TALK_SECONDS = 5

# How the status callbacks of each call are sent:
#   normal          every event, in order
#   repeat          every event twice
#   reversed        in reverse order (the end first, then in-progress, ringing, initiated)
#   late            in order, then an earlier event again after the end
#   withhold_final  every event but the end (the call still ends: a status look-up sees it)
#   none            no callback at all
CallbackMode = Literal["normal", "repeat", "reversed", "late", "withhold_final", "none"]

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")


@dataclass(frozen=True)
class ForcedResponse:
    """An answer given instead of the usual one: an error, or a dropped connection."""

    status: int = 500
    code: int | None = None
    retry_after: str | None = None
    drop: bool = False


DROP = ForcedResponse(drop=True)


@dataclass
class RecordedRequest:
    method: str
    path: str
    authorization: str | None
    form: list[tuple[str, str]]
    received_at: float = field(default_factory=time.monotonic)

    def get(self, name: str) -> str | None:
        values = self.getall(name)
        return values[0] if values else None

    def getall(self, name: str) -> list[str]:
        return [value for key, value in self.form if key == name]


@dataclass
class SentCallback:
    url: str
    params: dict[str, str]
    signature: str
    # The receiver's HTTP status, or None when the request failed (`error` says how).
    status: int | None = None
    error: str | None = None


@dataclass
class FakeCall:
    sid: str
    to: str
    from_number: str
    status_callback: str | None
    status: str = "queued"
    answered_by: str | None = None
    duration: int | None = None
    error_code: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def resource(self, account_sid: str) -> dict[str, Any]:
        """The Call resource as GET Calls/{Sid}.json shows it."""
        return {
            "sid": self.sid,
            "account_sid": account_sid,
            "to": self.to,
            "from": self.from_number,
            "status": self.status,
            "answered_by": self.answered_by,
            "duration": None if self.duration is None else str(self.duration),
            "direction": "outbound-api",
            "api_version": API_VERSION,
            "uri": f"/{API_VERSION}/Accounts/{account_sid}/Calls/{self.sid}.json",
        }


@dataclass(frozen=True)
class ScenarioStep:
    status: str
    answered_by: str | None = None
    duration: int | None = None
    error_code: int | None = None


def scenario(to: str, talk_seconds: int = TALK_SECONDS) -> list[ScenarioStep]:
    """The events of a call to `to`, by its last digit."""
    digit = to[-1]
    start = [ScenarioStep("initiated"), ScenarioStep("ringing")]
    if digit in "01238":
        return [
            *start,
            ScenarioStep("in-progress", "human"),
            ScenarioStep("completed", "human", talk_seconds),
        ]
    if digit == "6":
        return [
            *start,
            ScenarioStep("in-progress", "machine_start"),
            ScenarioStep("completed", "machine_start", talk_seconds),
        ]
    if digit == "4":
        return [*start, ScenarioStep("no-answer", duration=0)]
    if digit == "5":
        return [*start, ScenarioStep("busy", duration=0)]
    if digit == "7":
        return [*start, ScenarioStep("failed", duration=0, error_code=31005)]
    return [*start, ScenarioStep("failed", duration=0, error_code=21217)]


def _error(status: int, code: int | None, message: str, **headers: str) -> web.Response:
    body = {"code": code, "message": message, "status": status}
    return web.json_response(body, status=status, headers=headers)


FROM_NUMBER = "+15005550006"


def dialer_env(carrier: FakeCarrier, public_url: str, **extra: str) -> dict[str, str]:
    """The environment of a dialer process that places real calls with `carrier`."""
    return {
        "DIALER_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": carrier.account_sid,
        "TWILIO_AUTH_TOKEN": carrier.auth_token,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_URL": carrier.api_url,
        "DIALER_PUBLIC_URL": public_url,
        **extra,
    }


class FakeCarrier:
    def __init__(
        self,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "fake-auth-token",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.host = host
        self.port = port
        # Knobs.
        self.next_create_responses: list[ForcedResponse | int] = []
        self.next_status_responses: list[ForcedResponse | int] = []
        self.create_delay_seconds = 0.0
        self.callbacks: CallbackMode = "normal"
        self.callback_delay_seconds = 0.0
        self.talk_seconds = TALK_SECONDS
        # What happened.
        self.creates: list[RecordedRequest] = []
        self.status_requests: list[RecordedRequest] = []
        self.sent_callbacks: list[SentCallback] = []
        self.calls: dict[str, FakeCall] = {}
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Set when stopping: a create held back by `create_delay_seconds` stops waiting.
        self._stopping = asyncio.Event()

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> FakeCarrier:
        app = web.Application()
        base = f"/{API_VERSION}/Accounts/{{account}}/Calls"
        app.router.add_post(f"{base}.json", self._create)
        app.router.add_get(f"{base}/{{sid}}.json", self._fetch)
        self._session = aiohttp.ClientSession()
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        self._stopping.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def wait_for(self, condition: Callable[[], bool], within: float = 5.0) -> None:
        """Returns once `condition()` holds; fails after `within` seconds."""
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"fake carrier: condition not met in {within}s")
            await asyncio.sleep(0.01)

    async def send_callback(
        self, url: str, params: dict[str, str], *, signature: str | None = None
    ) -> SentCallback:
        """Posts one status callback, signed unless `signature` is given (e.g. a wrong one)."""
        assert self._session is not None, "start() first"
        sent = SentCallback(
            url, dict(params), signature or twilio_signature(url, params, self.auth_token)
        )
        self.sent_callbacks.append(sent)
        try:
            async with self._session.post(
                url,
                data=params,
                headers={"X-Twilio-Signature": sent.signature},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response:
                sent.status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            sent.error = type(exc).__name__
        return sent

    def _authorized(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    async def _forced(
        self, request: web.Request, queue: list[ForcedResponse | int]
    ) -> web.StreamResponse | None:
        if not queue:
            return None
        forced = queue.pop(0)
        if isinstance(forced, int):
            forced = ForcedResponse(forced)
        if forced.drop:
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)
        headers = {"Retry-After": forced.retry_after} if forced.retry_after is not None else {}
        return _error(forced.status, forced.code, "forced by the test", **headers)

    async def _create(self, request: web.Request) -> web.StreamResponse:
        form = [(key, str(value)) for key, value in (await request.post()).items()]
        recorded = RecordedRequest(
            request.method, request.path, request.headers.get("Authorization"), form
        )
        self.creates.append(recorded)
        if self.create_delay_seconds:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.create_delay_seconds)
        forced = await self._forced(request, self.next_create_responses)
        if forced is not None:
            return forced
        if request.match_info["account"] != self.account_sid:
            return _error(404, 20404, "The requested resource was not found")
        if not self._authorized(request):
            return _error(401, 20003, "Authenticate")
        refused = self._refusal(recorded)
        if refused is not None:
            return refused
        to = recorded.get("To") or ""
        call = FakeCall(
            "CA" + secrets.token_hex(16),
            to,
            recorded.get("From") or "",
            recorded.get("StatusCallback"),
        )
        self.calls[call.sid] = call
        response = web.json_response(call.resource(self.account_sid), status=201)
        # The answer is on its way before the first callback, as with Twilio.
        await response.prepare(request)
        await response.write_eof()
        task = asyncio.create_task(self._run(call, scenario(to, self.talk_seconds)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return response

    def _refusal(self, form: RecordedRequest) -> web.Response | None:
        to, from_number = form.get("To"), form.get("From")
        if not to:
            return _error(400, 21201, "No 'To' number is specified")
        if not from_number:
            return _error(400, 21213, "No 'From' number is specified")
        if not _E164.match(to):
            return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        twiml, url = form.get("Twiml"), form.get("Url")
        if not twiml and not url:
            return _error(400, 21205, "Url or Twiml parameter is required")
        if twiml is not None and len(twiml) > MAX_TWIML_CHARS:
            return _error(400, 32018, "Twiml size exceeded maximum allowed value")
        if form.get("StatusCallbackMethod") not in (None, "GET", "POST"):
            return _error(400, 21209, "Invalid StatusCallbackMethod")
        return None

    async def _fetch(self, request: web.Request) -> web.StreamResponse:
        self.status_requests.append(
            RecordedRequest(request.method, request.path, request.headers.get("Authorization"), [])
        )
        forced = await self._forced(request, self.next_status_responses)
        if forced is not None:
            return forced
        if request.match_info["account"] != self.account_sid:
            return _error(404, 20404, "The requested resource was not found")
        if not self._authorized(request):
            return _error(401, 20003, "Authenticate")
        call = self.calls.get(request.match_info["sid"])
        if call is None:
            return _error(404, 20404, "The requested resource was not found")
        return web.json_response(call.resource(self.account_sid))

    async def _run(self, call: FakeCall, steps: list[ScenarioStep]) -> None:
        """Moves the call through its events, sending their callbacks as `callbacks` says."""
        mode = self.callbacks
        events: list[dict[str, str]] = []
        for number, step in enumerate(steps):
            if self.callback_delay_seconds:
                await asyncio.sleep(self.callback_delay_seconds)
            call.status = step.status
            call.answered_by = step.answered_by or call.answered_by
            call.duration = step.duration
            call.error_code = step.error_code
            event = self._callback_params(call, number)
            events.append(event)
            final = number == len(steps) - 1
            if mode in ("normal", "repeat", "late") or (mode == "withhold_final" and not final):
                for _ in range(2 if mode == "repeat" else 1):
                    await self._send(call, event)
        if mode == "reversed":
            for event in reversed(events):
                await self._send(call, event)
        if mode == "late":
            await self._send(call, events[-2])
        call.done.set()

    async def _send(self, call: FakeCall, params: dict[str, str]) -> None:
        if call.status_callback:
            await self.send_callback(call.status_callback, params)

    def _callback_params(self, call: FakeCall, sequence: int) -> dict[str, str]:
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call.sid,
            "CallStatus": call.status,
            "CallbackSource": "call-progress-events",
            "Direction": "outbound-api",
            "From": call.from_number,
            "To": call.to,
            "SequenceNumber": str(sequence),
            "Timestamp": datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000"),
        }
        if call.answered_by is not None:
            params["AnsweredBy"] = call.answered_by
        if call.duration is not None:
            params["CallDuration"] = str(call.duration)
        if call.error_code is not None:
            params["ErrorCode"] = str(call.error_code)
        return params


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeCarrier(args.account_sid, args.auth_token, host=args.host, port=args.port)
    fake.callbacks = args.callbacks
    fake.callback_delay_seconds = args.callback_delay_seconds
    await fake.start()
    print(f"fake carrier on {fake.api_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--auth-token", required=True)
    parser.add_argument("--account-sid", required=True)
    parser.add_argument("--callbacks", default="normal", choices=get_args(CallbackMode))
    parser.add_argument("--callback-delay-seconds", type=float, default=0.0)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
