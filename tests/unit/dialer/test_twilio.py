from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import MultiDict
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from services.dialer.domain.telephony import (
    CARRIER_ERROR,
    INVALID_NUMBER,
    CarrierEvent,
    PlacementFailed,
)
from services.dialer.domain.twilio import (
    INVALID_NUMBER_CODES,
    MAX_TWIML_CHARS,
    RetryLater,
    backoff_seconds,
    callback_params_from_call,
    create_call_form,
    create_failure,
    error_for_code,
    event_from_status,
    retry_after_seconds,
    signature_matches,
    twilio_signature,
    twiml_for,
)
from shared.rules.outcomes import Outcome
from shared.rules.prompts import PROMPT_TOO_LARGE

TOKEN = "12345678901234567890123456789012"
URL = "https://dialer.example.com/carrier/twilio/status"
SID = "CA" + "a" * 32

CALLBACK = {
    "AccountSid": "AC" + "0" * 32,
    "CallSid": SID,
    "CallStatus": "completed",
    "To": "+12125550123",
    "From": "+12125550100",
    "Direction": "outbound-api",
    "AnsweredBy": "human",
    "CallDuration": "17",
    "SequenceNumber": "3",
    "Timestamp": "Tue, 11 Aug 2026 10:00:00 +0000",
}

PARAM_SETS = [
    pytest.param({}, id="none"),
    pytest.param(CALLBACK, id="status-callback"),
    pytest.param({"b": "2", "a": "1", "B": "0", "_": "x"}, id="case-and-punctuation"),
    pytest.param({"Prompt": "Grüß Gott, 東京 ☎ 🙂", "Ä": "é"}, id="unicode"),
    pytest.param({"a": "", "": "empty-name", "ab": "c"}, id="empty-and-prefix"),
    pytest.param({"Digits": "1234#", "SpeechResult": "a&b=c d+e%20"}, id="form-specials"),
    pytest.param({"k1": "v", "k10": "v", "k2": "v", "K1": "v"}, id="repeated-looking-keys"),
]

_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)


@pytest.mark.parametrize("params", PARAM_SETS)
@pytest.mark.parametrize(
    "url", [URL, "http://127.0.0.1:8081/carrier/twilio/status?x=1&y=2", "https://h.example/ü"]
)
def test_signature_is_twilios(url: str, params: dict[str, str]) -> None:
    expected = RequestValidator(TOKEN).compute_signature(url, params)

    assert twilio_signature(url, params, TOKEN) == expected
    assert twilio_signature(url, list(params.items()), TOKEN) == expected


@given(url=_text, params=st.dictionaries(_text, _text, max_size=8), token=_text)
def test_signature_is_twilios_for_any_text(url: str, params: dict[str, str], token: str) -> None:
    assert twilio_signature(url, params, token) == RequestValidator(token).compute_signature(
        url, params
    )


@pytest.mark.parametrize(
    "pairs",
    [
        pytest.param([("a", "2"), ("a", "1"), ("b", "3")], id="values-sorted"),
        pytest.param([("a", "1"), ("a", "1"), ("b", "3")], id="same-pair-twice"),
        pytest.param([("z", "1"), ("a", "b"), ("z", "0"), ("a", "a")], id="interleaved"),
    ],
)
def test_repeated_names_sort_by_name_then_value(pairs: list[tuple[str, str]]) -> None:
    expected = RequestValidator(TOKEN).compute_signature(URL, MultiDict(pairs))

    assert twilio_signature(URL, pairs, TOKEN) == expected
    assert twilio_signature(URL, MultiDict(pairs), TOKEN) == expected
    assert twilio_signature(URL, list(reversed(pairs)), TOKEN) == expected


def _variants(signed_url: str) -> list[tuple[str, dict[str, str], str]]:
    """(url, params, signature) checks around a request signed over `signed_url`."""
    good = twilio_signature(signed_url, CALLBACK, TOKEN)
    return [
        (signed_url, CALLBACK, good),
        (signed_url + "x", CALLBACK, good),
        (signed_url.replace("dialer", "dialler"), CALLBACK, good),
        (signed_url, {**CALLBACK, "CallStatus": "busy"}, good),
        (signed_url, {**CALLBACK, "Extra": "1"}, good),
        (signed_url, {k: v for k, v in CALLBACK.items() if k != "AnsweredBy"}, good),
        (signed_url, CALLBACK, good[:-2] + "A="),
        (signed_url, CALLBACK, ""),
        (signed_url, CALLBACK, twilio_signature(signed_url, CALLBACK, TOKEN + "x")),
    ]


@pytest.mark.parametrize(
    "signed_url",
    [
        URL,
        "https://dialer.example.com:443/carrier/twilio/status",
        "https://dialer.example.com:8443/carrier/twilio/status",
        "http://dialer.example.com/carrier/twilio/status?a=1",
        "http://dialer.example.com:80/carrier/twilio/status",
    ],
)
@pytest.mark.parametrize(
    "checked_url",
    [
        None,
        "https://dialer.example.com/carrier/twilio/status",
        "https://dialer.example.com:443/carrier/twilio/status",
        "http://dialer.example.com/carrier/twilio/status?a=1",
        "http://dialer.example.com:80/carrier/twilio/status?a=1",
    ],
)
def test_signature_matches_agrees_with_twilios_validator(
    signed_url: str, checked_url: str | None
) -> None:
    validator = RequestValidator(TOKEN)
    for url, params, signature in _variants(signed_url):
        url = checked_url or url
        expected = validator.validate(url, params, signature)
        assert signature_matches(url, params, TOKEN, signature) is expected, (url, params)


def test_signature_matches_accepts_the_url_with_or_without_its_port() -> None:
    signed_without = twilio_signature(URL, CALLBACK, TOKEN)
    with_port = "https://dialer.example.com:443/carrier/twilio/status"
    signed_with = twilio_signature(with_port, CALLBACK, TOKEN)

    assert signature_matches(with_port, CALLBACK, TOKEN, signed_without)
    assert signature_matches(URL, CALLBACK, TOKEN, signed_with)
    assert not signature_matches(URL, CALLBACK, TOKEN, signed_without.lower())
    assert not signature_matches(URL, CALLBACK, TOKEN, "ünïcode")


def _callback(status: str, **fields: str) -> dict[str, str]:
    return {"CallSid": SID, "CallStatus": status, **fields}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param(_callback("queued"), None, id="queued"),
        pytest.param(_callback("initiated"), None, id="initiated"),
        pytest.param(_callback("ringing"), None, id="ringing"),
        pytest.param(_callback("in-progress"), CarrierEvent(SID, answered=True), id="answered"),
        pytest.param(
            _callback("in-progress", AnsweredBy="machine_start"),
            CarrierEvent(SID, answered=True),
            id="answered-by-machine",
        ),
        pytest.param(
            _callback("completed", AnsweredBy="human", CallDuration="17"),
            CarrierEvent(SID, True, Outcome.COMPLETED, 17.0),
            id="completed-human",
        ),
        pytest.param(
            _callback("completed", AnsweredBy="unknown", CallDuration="3"),
            CarrierEvent(SID, True, Outcome.COMPLETED, 3.0),
            id="completed-unknown",
        ),
        pytest.param(
            _callback("completed", CallDuration="42"),
            CarrierEvent(SID, True, Outcome.COMPLETED, 42.0),
            id="completed-no-detection",
        ),
        pytest.param(
            _callback("completed"), CarrierEvent(SID, True, Outcome.COMPLETED, 0.0), id="no-dur"
        ),
        pytest.param(
            _callback("completed", CallDuration="soon"),
            CarrierEvent(SID, True, Outcome.COMPLETED, 0.0),
            id="unreadable-duration",
        ),
        *(
            pytest.param(
                _callback("completed", AnsweredBy=machine, CallDuration="9"),
                CarrierEvent(SID, True, Outcome.VOICEMAIL, 9.0),
                id=machine,
            )
            for machine in (
                "machine_start",
                "machine_end_beep",
                "machine_end_silence",
                "machine_end_other",
                "fax",
            )
        ),
        pytest.param(
            _callback("no-answer", CallDuration="0"),
            CarrierEvent(SID, False, Outcome.NO_ANSWER),
            id="no-answer",
        ),
        pytest.param(_callback("busy"), CarrierEvent(SID, False, Outcome.BUSY), id="busy"),
        pytest.param(
            _callback("canceled"), CarrierEvent(SID, False, Outcome.CANCELLED), id="canceled"
        ),
        pytest.param(
            _callback("failed", ErrorCode="21217"),
            CarrierEvent(SID, False, Outcome.FAILED, error=INVALID_NUMBER),
            id="failed-invalid",
        ),
        pytest.param(
            _callback("failed", ErrorCode="13224"),
            CarrierEvent(SID, False, Outcome.FAILED, error=INVALID_NUMBER),
            id="failed-unsupported",
        ),
        pytest.param(
            _callback("failed", ErrorCode="31005"),
            CarrierEvent(SID, False, Outcome.FAILED, error=CARRIER_ERROR),
            id="failed-carrier",
        ),
        pytest.param(
            _callback("failed", ErrorCode="21215"),
            CarrierEvent(SID, False, Outcome.FAILED, error=CARRIER_ERROR),
            id="failed-geo-permissions",
        ),
        pytest.param(
            _callback("failed"),
            CarrierEvent(SID, False, Outcome.FAILED, error=CARRIER_ERROR),
            id="failed-no-code",
        ),
        pytest.param(_callback("bridged"), None, id="unknown-status"),
        pytest.param({"CallStatus": "completed"}, None, id="no-sid"),
    ],
)
def test_event_from_status(params: dict[str, str], expected: CarrierEvent | None) -> None:
    assert event_from_status(params) == expected


def test_only_ended_events_are_answered_with_a_duration() -> None:
    for status in ("no-answer", "busy", "canceled", "failed"):
        event = event_from_status(_callback(status, CallDuration="12"))
        assert event is not None
        assert event.ended
        assert event.duration_seconds == 0.0
        assert not event.answered


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        pytest.param(
            {"sid": SID, "status": "ringing", "answered_by": None, "duration": None},
            None,
            id="ringing",
        ),
        pytest.param(
            {"sid": SID, "status": "in-progress", "answered_by": "human", "duration": None},
            CarrierEvent(SID, answered=True),
            id="in-progress",
        ),
        pytest.param(
            {"sid": SID, "status": "completed", "answered_by": "machine_start", "duration": "8"},
            CarrierEvent(SID, True, Outcome.VOICEMAIL, 8.0),
            id="voicemail",
        ),
        pytest.param(
            {"sid": SID, "status": "completed", "answered_by": None, "duration": "31"},
            CarrierEvent(SID, True, Outcome.COMPLETED, 31.0),
            id="completed",
        ),
        pytest.param(
            {"sid": SID, "status": "failed", "answered_by": None, "duration": "0"},
            CarrierEvent(SID, False, Outcome.FAILED, error=CARRIER_ERROR),
            id="failed",
        ),
    ],
)
def test_a_call_resource_means_what_its_callback_would(
    resource: dict[str, object], expected: CarrierEvent | None
) -> None:
    assert event_from_status(callback_params_from_call(resource)) == expected


def test_call_resource_fields_take_callback_names() -> None:
    resource = {
        "sid": SID,
        "status": "completed",
        "answered_by": "human",
        "duration": "5",
        "to": "+12125550123",
        "from": "+12125550100",
        "direction": "outbound-api",
        "price": None,
    }

    assert callback_params_from_call(resource) == {
        "CallSid": SID,
        "CallStatus": "completed",
        "AnsweredBy": "human",
        "CallDuration": "5",
        "To": "+12125550123",
        "From": "+12125550100",
        "Direction": "outbound-api",
    }


@pytest.mark.parametrize(
    "prompt",
    [
        "Hello Ada",
        "Tom & Jerry <b>bold</b> \"quoted\" 'single' > done",
        "</Say><Hangup/><Say>",
        "Grüß Gott, 東京 🙂",
        "]]> <![CDATA[ x ]]>",
        "",
    ],
)
def test_twiml_says_the_prompt_exactly(prompt: str) -> None:
    twiml = twiml_for(prompt, None, "call-1")
    root = ET.fromstring(twiml)

    assert root.tag == "Response"
    assert [child.tag for child in root] == ["Say"]
    assert (root[0].text or "") == prompt


def test_twiml_drops_characters_xml_cannot_hold() -> None:
    root = ET.fromstring(twiml_for("a\x00b\x07c\td\ne\ufffef", None, "call-1"))

    assert root[0].text == "abc\td\nef"


def test_twiml_connects_a_stream_with_the_call_id() -> None:
    url = 'wss://media.example.com/stream?a=1&b="2"'
    call_id = "call<&>\"'1"
    twiml = twiml_for("ignored <prompt>", url, call_id)
    root = ET.fromstring(twiml)

    assert root.tag == "Response"
    connect = root.find("Connect")
    assert connect is not None
    stream = connect.find("Stream")
    assert stream is not None
    assert stream.get("url") == url
    parameters = stream.findall("Parameter")
    assert [(p.get("name"), p.get("value")) for p in parameters] == [("call_id", call_id)]
    assert "prompt" not in twiml


def test_twiml_stream_shape() -> None:
    assert twiml_for("x", "wss://m.example/s", "c1") == (
        '<Response><Connect><Stream url="wss://m.example/s">'
        '<Parameter name="call_id" value="c1"/></Stream></Connect></Response>'
    )


def test_create_call_form() -> None:
    form = create_call_form(
        to="+12125550123",
        from_number="+12125550100",
        twiml="<Response/>",
        status_callback="https://dialer.example.com/carrier/twilio/status",
        timeout_seconds=25,
    )

    assert form == [
        ("To", "+12125550123"),
        ("From", "+12125550100"),
        ("Twiml", "<Response/>"),
        ("StatusCallback", "https://dialer.example.com/carrier/twilio/status"),
        ("StatusCallbackEvent", "initiated"),
        ("StatusCallbackEvent", "ringing"),
        ("StatusCallbackEvent", "answered"),
        ("StatusCallbackEvent", "completed"),
        ("StatusCallbackMethod", "POST"),
        ("MachineDetection", "Enable"),
        ("Timeout", "25"),
    ]


@pytest.mark.parametrize(
    ("status", "code", "retry_after", "expected"),
    [
        pytest.param(500, None, None, RetryLater(), id="500"),
        pytest.param(502, None, 5.0, RetryLater(), id="502-ignores-retry-after"),
        pytest.param(503, 20500, None, RetryLater(), id="503"),
        pytest.param(408, None, None, RetryLater(), id="408"),
        pytest.param(429, 20429, 3.0, RetryLater(3.0), id="429-retry-after"),
        pytest.param(429, 20429, None, RetryLater(), id="429-backoff"),
        pytest.param(400, 21211, None, INVALID_NUMBER, id="400-invalid-to"),
        pytest.param(400, 21214, None, INVALID_NUMBER, id="400-unreachable"),
        pytest.param(400, 21217, None, INVALID_NUMBER, id="400-not-valid"),
        pytest.param(400, 13224, None, INVALID_NUMBER, id="400-unsupported"),
        pytest.param(403, 21216, None, INVALID_NUMBER, id="403-blocked-destination"),
        pytest.param(400, 21215, None, CARRIER_ERROR, id="400-geo-permissions"),
        pytest.param(400, 21210, None, CARRIER_ERROR, id="400-from-unverified"),
        pytest.param(400, 21212, None, CARRIER_ERROR, id="400-invalid-from"),
        pytest.param(400, None, None, CARRIER_ERROR, id="400-no-code"),
        pytest.param(401, 20003, None, CARRIER_ERROR, id="401-credentials"),
        pytest.param(403, None, None, CARRIER_ERROR, id="403"),
        pytest.param(404, 20404, None, CARRIER_ERROR, id="404-wrong-account"),
        pytest.param(400, 32018, None, PROMPT_TOO_LARGE, id="400-twiml-too-large"),
    ],
)
def test_create_failure(
    status: int, code: int | None, retry_after: float | None, expected: RetryLater | str
) -> None:
    decision = create_failure(status, code, retry_after)

    if isinstance(expected, RetryLater):
        assert decision == expected
    else:
        assert isinstance(decision, PlacementFailed)
        assert decision.error == expected
        assert str(status) in decision.detail


def test_invalid_number_codes_are_the_numbers_fault() -> None:
    assert {error_for_code(code) for code in INVALID_NUMBER_CODES} == {INVALID_NUMBER}
    assert error_for_code(None) == CARRIER_ERROR
    assert error_for_code(31005) == CARRIER_ERROR


def test_the_twiml_limit_is_twilios() -> None:
    assert MAX_TWIML_CHARS == 4000


NOW = datetime(2026, 8, 11, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("7", 7.0),
        (" 0 ", 0.0),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
        ("Tue, 11 Aug 2026 10:00:05 -0000", 5.0),
        ("soon", None),
        ("-1", None),
        ("1.5", None),
    ],
)
def test_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header, NOW) == expected


def test_backoff_grows_to_its_cap_and_jitter_scales_it() -> None:
    waits = [backoff_seconds(n, 0.5, 8.0, 1.0) for n in range(1, 8)]

    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert backoff_seconds(3, 0.5, 8.0, 0.5) == 1.0
    assert backoff_seconds(3, 0.5, 8.0, 0.0) == 0.0
