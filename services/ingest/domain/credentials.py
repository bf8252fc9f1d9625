"""A webhook's credentials as the API shows them: a masked hint, never the value; and a hint
sent back unchanged on an edit (a client that reads, changes one field and writes the whole
webhook back) read as "keep what is stored"."""

from __future__ import annotations

from typing import Any, Final

from shared.models import Webhook

MASK: Final = "****"
# The shortest value whose hint shows its last characters: a shorter one shows none, so that
# the hint gives away at most a quarter of a value.
HINT_TAIL_FROM: Final = 16
HINT_TAIL: Final = 4
# For the document: what a hint looks like (empty, `****`, or `****` and four characters).
HINT_PATTERN: Final = r"^(\*{4}([\s\S]{4})?)?$"


def masked(value: str) -> str:
    """The hint of a credential: `****` and its last four characters from 16 characters on,
    `****` alone below; an empty value stays empty (it hides nothing)."""
    if not value:
        return value
    if len(value) < HINT_TAIL_FROM:
        return MASK
    return MASK + value[-HINT_TAIL:]


def looks_masked(value: str) -> bool:
    """Whether `value` has the shape of a hint, which is never a credential of its own."""
    return value == MASK or (len(value) == len(MASK) + HINT_TAIL and value.startswith(MASK))


def masked_view(webhook: Webhook, view: dict[str, Any]) -> dict[str, Any]:
    """`view` (the webhook as JSON) with each credential replaced by its hint."""
    value = webhook.authorization_value
    return {
        **view,
        "webhook_secret": masked(webhook.webhook_secret),
        "authorization_value": None if value is None else masked(value),
        "custom_headers": [
            {"key": header.key, "value": masked(header.value)} for header in webhook.custom_headers
        ],
    }


def keep_unchanged_credentials(changes: dict[str, Any], current: Webhook) -> dict[str, Any]:
    """The fields of an edit with each credential sent as the hint of the stored one replaced
    by the stored one; the secret sent so is left out (an edit without it keeps it). A custom
    header is matched by name, ignoring case; anything not shaped as the API takes it is left
    for validation to refuse."""
    kept = dict(changes)
    secret = kept.get("webhook_secret")
    if isinstance(secret, str) and secret == masked(current.webhook_secret):
        del kept["webhook_secret"]
    value = kept.get("authorization_value")
    stored_value = current.authorization_value
    if isinstance(value, str) and stored_value is not None and value == masked(stored_value):
        kept["authorization_value"] = stored_value
    headers = kept.get("custom_headers")
    if isinstance(headers, list):
        stored: dict[str, str] = {}
        for header in current.custom_headers:
            stored.setdefault(header.key.lower(), header.value)
        kept["custom_headers"] = [_kept_header(sent, stored) for sent in headers]
    return kept


def _kept_header(sent: Any, stored: dict[str, str]) -> Any:
    if not isinstance(sent, dict):
        return sent
    key, value = sent.get("key"), sent.get("value")
    if not isinstance(key, str) or not isinstance(value, str):
        return sent
    current = stored.get(key.lower())
    if current is None or value != masked(current):
        return sent
    return {**sent, "value": current}
