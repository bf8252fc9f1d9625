from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared.rules.webhook_signing import sign, signature_headers, signing_key

# The example from the Standard Webhooks specification and its reference libraries.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

KEY_32 = bytes(range(32))
WHSEC_32 = "whsec_" + base64.b64encode(KEY_32).decode()

BODIES = [
    pytest.param(b'{"type":"campaign_call.completed"}', id="json"),
    pytest.param('{"name":"Zoë 東京 ☎"}'.encode(), id="unicode"),
    pytest.param(b"", id="empty"),
]


def expected_signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _utc(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def test_spec_vector_gives_the_exact_signature() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


@pytest.mark.parametrize(
    ("secret", "key"),
    [
        pytest.param(SPEC_SECRET, base64.b64decode(SPEC_SECRET[6:]), id="whsec-spec"),
        pytest.param(WHSEC_32, KEY_32, id="whsec-padded"),
        pytest.param("plain-secret", b"plain-secret", id="plain"),
        pytest.param("sécret☃", "sécret☃".encode(), id="plain-unicode"),
        pytest.param("WHSEC_YWJj", b"WHSEC_YWJj", id="prefix-is-case-sensitive"),
    ],
)
def test_signing_key(secret: str, key: bytes) -> None:
    assert signing_key(secret) == key


@pytest.mark.parametrize("secret", [SPEC_SECRET, WHSEC_32])
@pytest.mark.parametrize("body", BODIES)
def test_reference_library_verifies_whsec_signature(secret: str, body: bytes) -> None:
    timestamp = int(time.time())
    headers = signature_headers(secret, "msg_1", timestamp, body)

    Webhook(secret).verify(body, headers, json_parse=False)


@pytest.mark.parametrize("body", BODIES)
def test_reference_library_rejects_a_tampered_body(body: bytes) -> None:
    headers = signature_headers(WHSEC_32, "msg_1", int(time.time()), body)

    with pytest.raises(WebhookVerificationError):
        Webhook(WHSEC_32).verify(body + b" ", headers, json_parse=False)


def test_reference_library_verifies_unpadded_whsec_secret() -> None:
    secret = WHSEC_32.rstrip("=")
    assert secret != WHSEC_32
    body = b'{"ok":true}'
    headers = signature_headers(secret, "msg_1", int(time.time()), body)

    Webhook(secret).verify(body, headers, json_parse=False)


@pytest.mark.parametrize("secret", ["plain-secret", "sécret☃", "whsec_not*base64!"])
@pytest.mark.parametrize("body", BODIES)
def test_secret_without_valid_whsec_part_is_used_as_utf8_bytes(secret: str, body: bytes) -> None:
    timestamp = 1_700_000_000

    signature = sign(secret, "msg_2", timestamp, body)

    assert signature == expected_signature(secret.encode("utf-8"), "msg_2", timestamp, body)
    assert (
        Webhook(secret.encode("utf-8")).sign("msg_2", _utc(timestamp), body.decode()) == signature
    )


def test_signature_headers_carry_id_timestamp_and_signature() -> None:
    headers = signature_headers(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)

    assert headers == {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }


@pytest.mark.parametrize(
    ("message_id", "timestamp", "body"),
    [
        pytest.param(SPEC_ID, SPEC_TIMESTAMP, b'{"test": 2432232315}', id="body"),
        pytest.param(SPEC_ID, SPEC_TIMESTAMP + 1, SPEC_BODY, id="timestamp"),
        pytest.param(SPEC_ID + "x", SPEC_TIMESTAMP, SPEC_BODY, id="message-id"),
    ],
)
def test_any_change_gives_a_different_signature(
    message_id: str, timestamp: int, body: bytes
) -> None:
    assert sign(SPEC_SECRET, message_id, timestamp, body) != SPEC_SIGNATURE


def test_different_secret_gives_a_different_signature() -> None:
    assert sign(WHSEC_32, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) != SPEC_SIGNATURE


def test_signing_is_deterministic() -> None:
    first = sign(WHSEC_32, "msg_3", 1_700_000_000, b"{}")
    assert first == sign(WHSEC_32, "msg_3", 1_700_000_000, b"{}")
