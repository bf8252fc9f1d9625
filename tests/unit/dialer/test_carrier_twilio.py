"""The Twilio carrier against the fake Twilio API (tests/fake_carrier.py), in this process."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from devstack.processes import free_port
from services.dialer.adapters.carrier_twilio import (
    TwilioCarrier,
    TwilioConfig,
    open_twilio_carrier,
)
from services.dialer.domain.telephony import (
    CARRIER_ERROR,
    CARRIER_UNAVAILABLE,
    INVALID_NUMBER,
    CarrierEvent,
    PlaceCall,
    PlacementFailed,
    StatusUnavailable,
)
from services.dialer.domain.twilio import create_call_form, signature_matches, twiml_for
from shared.rules.outcomes import Outcome
from shared.rules.prompts import PROMPT_TOO_LARGE
from tests.fake_carrier import DROP, FakeCarrier, ForcedResponse, scenario

ACCOUNT = "AC" + "1" * 32
TOKEN = "secret-auth-token-0123456789abcd"
FROM = "+12125550100"
ROOT = Path(__file__).resolve().parents[3]
SID_PATTERN = re.compile(r"^CA[0-9a-f]{32}$")


@dataclass
class Received:
    url: str
    params: dict[str, str]
    signature: str | None
    valid: bool


@dataclass
class CallbackReceiver:
    """The dialer's callback endpoint, reduced to checking Twilio's signature with Twilio's
    own validator: 204 when it holds, 403 when not."""

    token: str
    received: list[Received] = field(default_factory=list)
    port: int = 0
    runner: web.AppRunner | None = None

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> CallbackReceiver:
        async def receive(request: web.Request) -> web.Response:
            params = {key: str(value) for key, value in (await request.post()).items()}
            signature = request.headers.get("X-Twilio-Signature")
            valid = RequestValidator(self.token).validate(str(request.url), params, signature or "")
            self.received.append(Received(str(request.url), params, signature, valid))
            return web.Response(status=204 if valid else 403)

        app = web.Application()
        app.router.add_post("/carrier/twilio/status", receive)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.port = self.runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def statuses(self) -> list[str]:
        return [r.params["CallStatus"] for r in self.received]


@pytest.fixture
async def fake() -> AsyncIterator[FakeCarrier]:
    carrier = await FakeCarrier(ACCOUNT, TOKEN).start()
    yield carrier
    await carrier.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    endpoint = await CallbackReceiver(TOKEN).start()
    yield endpoint
    await endpoint.stop()


@pytest.fixture
def config(fake: FakeCarrier, receiver: CallbackReceiver) -> TwilioConfig:
    return TwilioConfig(
        account_sid=ACCOUNT,
        auth_token=TOKEN,
        from_number=FROM,
        api_url=fake.api_url,
        public_url=receiver.public_url,
        ring_timeout_seconds=25,
        request_timeout_seconds=2,
        max_attempts=4,
        backoff_base_seconds=0.01,
        backoff_max_seconds=0.08,
    )


@dataclass
class Waits:
    """Stands in for asyncio.sleep: records each wait and yields without waiting."""

    seconds: list[float] = field(default_factory=list)

    async def __call__(self, delay: float) -> None:
        self.seconds.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def make_carrier(
    config: TwilioConfig, session: aiohttp.ClientSession, waits: Waits
) -> TwilioCarrier:
    return TwilioCarrier(config, session, sleep=waits, jitter=lambda: 1.0)


@pytest.fixture
def carrier(config: TwilioConfig, session: aiohttp.ClientSession, waits: Waits) -> TwilioCarrier:
    return make_carrier(config, session, waits)


def request_to(to: str, *, from_number: str | None = None, prompt: str = "Hello") -> PlaceCall:
    return PlaceCall(
        call_id="call-1",
        campaign_id="campaign-1",
        attempt=1,
        to=to,
        from_number=from_number,
        prompt=prompt,
        is_testing=False,
    )


async def test_place_call_posts_the_form_with_basic_auth(
    carrier: TwilioCarrier, fake: FakeCarrier, config: TwilioConfig
) -> None:
    placed = await carrier.place_call(request_to("+12125550120", prompt="Hi <Ada> & co"))

    assert SID_PATTERN.match(placed.carrier_call_id)
    assert placed.carrier_call_id in fake.calls
    [create] = fake.creates
    assert create.method == "POST"
    assert create.path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
    assert (
        create.authorization == "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    )
    assert create.form == create_call_form(
        to="+12125550120",
        from_number=FROM,
        twiml=twiml_for("Hi <Ada> & co", None, "call-1"),
        status_callback=f"{config.public_url}/carrier/twilio/status",
        timeout_seconds=25,
    )


async def test_the_calls_own_caller_id_wins(carrier: TwilioCarrier, fake: FakeCarrier) -> None:
    await carrier.place_call(request_to("+12125550120", from_number="+442079460000"))

    assert fake.creates[0].get("From") == "+442079460000"


async def test_a_stream_url_connects_the_call_to_it(
    config: TwilioConfig, session: aiohttp.ClientSession, waits: Waits, fake: FakeCarrier
) -> None:
    streaming = make_carrier(replace(config, stream_url="wss://media.example/s"), session, waits)

    await streaming.place_call(request_to("+12125550120"))

    assert fake.creates[0].get("Twiml") == twiml_for("Hello", "wss://media.example/s", "call-1")


async def test_server_errors_are_retried_with_growing_waits(
    carrier: TwilioCarrier, fake: FakeCarrier, waits: Waits
) -> None:
    fake.next_create_responses = [500, ForcedResponse(503, code=20503)]

    placed = await carrier.place_call(request_to("+12125550120"))

    assert placed.carrier_call_id in fake.calls
    assert len(fake.creates) == 3
    assert waits.seconds == [0.01, 0.02]


async def test_persistent_server_errors_leave_the_carrier_unavailable(
    carrier: TwilioCarrier, fake: FakeCarrier, waits: Waits
) -> None:
    fake.next_create_responses = [500, 502, 503, 500, 500]

    with pytest.raises(PlacementFailed) as failed:
        await carrier.place_call(request_to("+12125550120"))

    assert failed.value.error == CARRIER_UNAVAILABLE
    assert len(fake.creates) == 4
    assert waits.seconds == [0.01, 0.02, 0.04]
    assert fake.calls == {}


async def test_dropped_connections_are_retried(carrier: TwilioCarrier, fake: FakeCarrier) -> None:
    fake.next_create_responses = [DROP, DROP]

    placed = await carrier.place_call(request_to("+12125550120"))

    assert placed.carrier_call_id in fake.calls
    assert len(fake.creates) == 3


async def test_only_dropped_connections_leave_the_carrier_unavailable(
    carrier: TwilioCarrier, fake: FakeCarrier
) -> None:
    fake.next_create_responses = [DROP] * 4

    with pytest.raises(PlacementFailed) as failed:
        await carrier.place_call(request_to("+12125550120"))

    assert failed.value.error == CARRIER_UNAVAILABLE
    assert len(fake.creates) == 4


async def test_timeouts_leave_the_carrier_unavailable(
    config: TwilioConfig, session: aiohttp.ClientSession, waits: Waits, fake: FakeCarrier
) -> None:
    fake.create_delay_seconds = 1.0
    slow = make_carrier(
        replace(config, request_timeout_seconds=0.05, max_attempts=2), session, waits
    )

    with pytest.raises(PlacementFailed) as failed:
        await slow.place_call(request_to("+12125550120"))

    assert failed.value.error == CARRIER_UNAVAILABLE
    assert "TimeoutError" in failed.value.detail
    assert len(fake.creates) == 2


async def test_throttling_waits_as_long_as_retry_after_says(
    carrier: TwilioCarrier, fake: FakeCarrier, waits: Waits
) -> None:
    fake.next_create_responses = [ForcedResponse(429, code=20429, retry_after="0")]
    quick = await carrier.place_call(request_to("+12125550120"))
    fake.next_create_responses = [ForcedResponse(429, code=20429, retry_after="1")] * 2

    placed = await carrier.place_call(request_to("+12125550120"))

    assert quick.carrier_call_id in fake.calls
    assert placed.carrier_call_id in fake.calls
    # Retry-After, bounded by backoff_max_seconds (0.08).
    assert waits.seconds == [0.0, 0.08, 0.08]


async def test_retry_after_under_the_cap_is_waited_exactly(
    config: TwilioConfig, session: aiohttp.ClientSession, waits: Waits, fake: FakeCarrier
) -> None:
    patient = make_carrier(replace(config, backoff_max_seconds=10), session, waits)
    fake.next_create_responses = [ForcedResponse(429, retry_after="3"), ForcedResponse(429)]

    await patient.place_call(request_to("+12125550120"))

    assert waits.seconds == [3.0, 0.02]


async def test_throttling_counts_as_an_attempt(carrier: TwilioCarrier, fake: FakeCarrier) -> None:
    fake.next_create_responses = [ForcedResponse(429, retry_after="0")] * 4

    with pytest.raises(PlacementFailed) as failed:
        await carrier.place_call(request_to("+12125550120"))

    assert failed.value.error == CARRIER_UNAVAILABLE
    assert len(fake.creates) == 4


@pytest.mark.parametrize("code", [21211, 21214, 21217, 13224])
async def test_a_bad_number_fails_at_once(
    carrier: TwilioCarrier, fake: FakeCarrier, waits: Waits, code: int
) -> None:
    fake.next_create_responses = [ForcedResponse(400, code=code)]

    with pytest.raises(PlacementFailed) as failed:
        await carrier.place_call(request_to("+12125550120"))

    assert failed.value.error == INVALID_NUMBER
    assert str(code) in failed.value.detail
    assert len(fake.creates) == 1
    assert waits.seconds == []


async def test_a_number_twilio_refuses_is_invalid(
    carrier: TwilioCarrier, fake: FakeCarrier
) -> None:
    with pytest.raises(PlacementFailed) as failed:
        await carrier.place_call(request_to("12125550120"))

    assert failed.value.error == INVALID_NUMBER
    assert "21211" in failed.value.detail
    assert fake.calls == {}


async def test_wrong_credentials_are_a_carrier_error_without_retry(
    config: TwilioConfig,
    session: aiohttp.ClientSession,
    waits: Waits,
    fake: FakeCarrier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = replace(config, auth_token="wrong-token-that-must-not-leak")
    carrier = make_carrier(wrong, session, waits)

    with pytest.raises(PlacementFailed) as failed:
        await carrier.place_call(request_to("+12125550120"))

    assert failed.value.error == CARRIER_ERROR
    assert "401" in failed.value.detail
    assert len(fake.creates) == 1
    assert waits.seconds == []
    assert "wrong-token-that-must-not-leak" not in str(failed.value) + caplog.text
    assert "wrong-token-that-must-not-leak" not in repr(wrong) + repr(carrier)


async def test_a_prompt_over_twilios_twiml_limit_is_never_sent(
    carrier: TwilioCarrier, fake: FakeCarrier
) -> None:
    with pytest.raises(PlacementFailed) as failed:
        await carrier.place_call(request_to("+12125550120", prompt="x" * 4000))

    assert failed.value.error == PROMPT_TOO_LARGE
    assert fake.creates == []


async def place_and_settle(carrier: TwilioCarrier, fake: FakeCarrier, to: str) -> str:
    placed = await carrier.place_call(request_to(to))
    await asyncio.wait_for(fake.calls[placed.carrier_call_id].done.wait(), 5)
    return placed.carrier_call_id


@pytest.mark.parametrize(
    ("digit", "answered", "outcome", "duration", "error"),
    [
        ("0", True, Outcome.COMPLETED, 5.0, None),
        ("3", True, Outcome.COMPLETED, 5.0, None),
        ("8", True, Outcome.COMPLETED, 5.0, None),
        ("4", False, Outcome.NO_ANSWER, 0.0, None),
        ("5", False, Outcome.BUSY, 0.0, None),
        ("6", True, Outcome.VOICEMAIL, 5.0, None),
        # A Call resource holds no error code: a failed call looked up is the carrier's error.
        ("7", False, Outcome.FAILED, 0.0, CARRIER_ERROR),
        ("9", False, Outcome.FAILED, 0.0, CARRIER_ERROR),
    ],
)
async def test_call_status_of_an_ended_call(
    carrier: TwilioCarrier,
    fake: FakeCarrier,
    digit: str,
    answered: bool,
    outcome: Outcome,
    duration: float,
    error: str | None,
) -> None:
    fake.callbacks = "none"
    sid = await place_and_settle(carrier, fake, "+1212555012" + digit)

    event = await carrier.call_status(sid)

    assert event == CarrierEvent(sid, answered, outcome, duration, error)
    assert fake.status_requests[-1].path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json"


async def test_call_status_while_it_rings_and_once_answered(
    carrier: TwilioCarrier, fake: FakeCarrier
) -> None:
    fake.callbacks = "none"
    fake.callback_delay_seconds = 30
    placed = await carrier.place_call(request_to("+12125550120"))
    call = fake.calls[placed.carrier_call_id]

    assert await carrier.call_status(call.sid) is None
    call.status = "ringing"
    assert await carrier.call_status(call.sid) is None
    call.status, call.answered_by = "in-progress", "human"
    assert await carrier.call_status(call.sid) == CarrierEvent(call.sid, answered=True)


async def test_call_status_of_an_unknown_call_is_unavailable_at_once(
    carrier: TwilioCarrier, fake: FakeCarrier
) -> None:
    with pytest.raises(StatusUnavailable, match="404"):
        await carrier.call_status("CA" + "f" * 32)

    assert len(fake.status_requests) == 1


async def test_call_status_retries_server_errors(
    carrier: TwilioCarrier, fake: FakeCarrier, waits: Waits
) -> None:
    fake.callbacks = "none"
    sid = await place_and_settle(carrier, fake, "+12125550125")
    fake.next_status_responses = [503, 500]

    event = await carrier.call_status(sid)

    assert event == CarrierEvent(sid, False, Outcome.BUSY)
    assert len(fake.status_requests) == 3
    assert waits.seconds == [0.01, 0.02]


async def test_call_status_waits_as_long_as_retry_after_says(
    carrier: TwilioCarrier, fake: FakeCarrier, waits: Waits
) -> None:
    fake.callbacks = "none"
    sid = await place_and_settle(carrier, fake, "+12125550124")
    fake.next_status_responses = [ForcedResponse(429, retry_after="0")]

    event = await carrier.call_status(sid)

    assert event == CarrierEvent(sid, False, Outcome.NO_ANSWER)
    assert waits.seconds == [0.0]


async def test_call_status_gives_up_after_its_attempts(
    carrier: TwilioCarrier, fake: FakeCarrier, waits: Waits
) -> None:
    fake.next_status_responses = [500, 502, 503, 500]

    with pytest.raises(StatusUnavailable, match="500"):
        await carrier.call_status("CA" + "f" * 32)

    assert len(fake.status_requests) == 4
    assert waits.seconds == [0.01, 0.02, 0.04]


async def test_call_status_gives_up_on_dropped_connections(
    carrier: TwilioCarrier, fake: FakeCarrier, waits: Waits
) -> None:
    # aiohttp itself sends an idempotent request again once when a kept-alive connection
    # drops, so the fake may see more requests than the carrier made attempts.
    fake.next_status_responses = [DROP] * 8

    with pytest.raises(StatusUnavailable, match="ServerDisconnectedError"):
        await carrier.call_status("CA" + "f" * 32)

    assert waits.seconds == [0.01, 0.02, 0.04]


async def test_call_status_with_wrong_credentials_is_unavailable(
    config: TwilioConfig, session: aiohttp.ClientSession, waits: Waits, fake: FakeCarrier
) -> None:
    carrier = make_carrier(replace(config, auth_token="wrong"), session, waits)

    with pytest.raises(StatusUnavailable, match="401"):
        await carrier.call_status("CA" + "f" * 32)

    assert len(fake.status_requests) == 1


async def test_callbacks_are_signed_as_twilio_signs_them(
    carrier: TwilioCarrier, fake: FakeCarrier, receiver: CallbackReceiver
) -> None:
    sid = await place_and_settle(carrier, fake, "+12125550120")

    assert receiver.statuses() == ["initiated", "ringing", "in-progress", "completed"]
    assert all(r.valid for r in receiver.received)
    assert [s.status for s in fake.sent_callbacks] == [204] * 4
    assert all(
        signature_matches(r.url, r.params, TOKEN, r.signature or "") for r in receiver.received
    )
    first, _, answered, completed = (r.params for r in receiver.received)
    assert first["CallSid"] == sid
    assert first["AccountSid"] == ACCOUNT
    assert first["To"] == "+12125550120"
    assert first["From"] == FROM
    assert first["Direction"] == "outbound-api"
    assert "AnsweredBy" not in first
    assert answered["AnsweredBy"] == "human"
    assert completed["CallDuration"] == "5"
    assert [r.params["SequenceNumber"] for r in receiver.received] == ["0", "1", "2", "3"]


async def test_a_callback_with_a_wrong_signature_is_refused(
    fake: FakeCarrier, receiver: CallbackReceiver
) -> None:
    url = f"{receiver.public_url}/carrier/twilio/status"
    params = {"CallSid": "CA" + "0" * 32, "CallStatus": "completed"}

    forged = await fake.send_callback(url, params, signature="bm90IGEgc2lnbmF0dXJl")
    genuine = await fake.send_callback(url, params)

    assert (forged.status, genuine.status) == (403, 204)
    assert [r.valid for r in receiver.received] == [False, True]


@pytest.mark.parametrize(
    ("to", "mode", "statuses"),
    [
        ("+12125550124", "normal", ["initiated", "ringing", "no-answer"]),
        ("+12125550127", "normal", ["initiated", "ringing", "failed"]),
        (
            "+12125550120",
            "repeat",
            ["initiated"] * 2 + ["ringing"] * 2 + ["in-progress"] * 2 + ["completed"] * 2,
        ),
        ("+12125550120", "reversed", ["completed", "in-progress", "ringing", "initiated"]),
        (
            "+12125550120",
            "late",
            ["initiated", "ringing", "in-progress", "completed", "in-progress"],
        ),
        ("+12125550125", "late", ["initiated", "ringing", "busy", "ringing"]),
        ("+12125550120", "withhold_final", ["initiated", "ringing", "in-progress"]),
        ("+12125550120", "none", []),
    ],
)
async def test_callback_modes(
    carrier: TwilioCarrier,
    fake: FakeCarrier,
    receiver: CallbackReceiver,
    to: str,
    mode: str,
    statuses: list[str],
) -> None:
    fake.callbacks = mode  # type: ignore[assignment]

    sid = await place_and_settle(carrier, fake, to)

    assert receiver.statuses() == statuses
    assert all(r.valid for r in receiver.received)
    # Each event keeps its own sequence number however often and in whatever order it is sent.
    in_order = [step.status for step in scenario(to)]
    for r in receiver.received:
        assert r.params["SequenceNumber"] == str(in_order.index(r.params["CallStatus"]))
    # The call ends whatever its callbacks did.
    event = await carrier.call_status(sid)
    assert event is not None
    assert event.ended


async def test_a_failed_callback_records_why(fake: FakeCarrier) -> None:
    sent = await fake.send_callback(f"http://127.0.0.1:{free_port()}/x", {"CallSid": "CA1"})

    assert sent.status is None
    assert sent.error is not None


async def test_open_twilio_carrier_owns_its_session(
    config: TwilioConfig, fake: FakeCarrier
) -> None:
    carrier = await open_twilio_carrier(config)
    try:
        placed = await carrier.place_call(request_to("+12125550120"))
    finally:
        await carrier.close()

    assert placed.carrier_call_id in fake.calls
    assert carrier.name == "twilio"


async def test_close_leaves_the_callers_session_open(
    carrier: TwilioCarrier, session: aiohttp.ClientSession
) -> None:
    await carrier.close()

    assert not session.closed


async def test_the_fake_runs_as_a_process(receiver: CallbackReceiver) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fake_carrier",
        "--port",
        str(port),
        "--auth-token",
        TOKEN,
        "--account-sid",
        ACCOUNT,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        assert line.decode().strip() == f"fake carrier on http://127.0.0.1:{port}"
        config = TwilioConfig(
            account_sid=ACCOUNT,
            auth_token=TOKEN,
            from_number=FROM,
            api_url=f"http://127.0.0.1:{port}",
            public_url=receiver.public_url,
        )
        carrier = await open_twilio_carrier(config)
        try:
            placed = await carrier.place_call(request_to("+12125550126"))
            deadline = asyncio.get_running_loop().time() + 10
            while len(receiver.received) < 4:
                assert asyncio.get_running_loop().time() < deadline, receiver.statuses()
                await asyncio.sleep(0.02)
            event = await carrier.call_status(placed.carrier_call_id)
        finally:
            await carrier.close()
        assert event == CarrierEvent(placed.carrier_call_id, True, Outcome.VOICEMAIL, 5.0)
        assert all(r.valid for r in receiver.received)
    finally:
        if process.returncode is None:
            process.terminate()
        assert await asyncio.wait_for(process.wait(), 10) == 0


def test_config_builds_twilio_urls() -> None:
    config = TwilioConfig(
        account_sid=ACCOUNT,
        auth_token=TOKEN,
        from_number=FROM,
        api_url="https://api.example.com/",
        public_url="https://dialer.example.com/",
    )

    assert config.calls_url == f"https://api.example.com/2010-04-01/Accounts/{ACCOUNT}/Calls"
    assert config.status_callback_url == "https://dialer.example.com/carrier/twilio/status"
    assert TOKEN not in repr(config)


def test_config_needs_an_attempt() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        TwilioConfig(
            account_sid=ACCOUNT,
            auth_token=TOKEN,
            from_number=FROM,
            public_url="https://dialer.example.com",
            max_attempts=0,
        )
