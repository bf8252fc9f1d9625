from __future__ import annotations

import pytest

from services.ingest.domain.tokens import TokenRegistry


def bearer(token: str) -> str:
    return f"Bearer {token}"


@pytest.mark.parametrize(
    ("api_tokens", "expected"),
    [
        pytest.param("", {}, id="empty"),
        pytest.param("tok_a:env_a", {"tok_a": "env_a"}, id="one"),
        pytest.param("tok_a:env_a,tok_b:env_b", {"tok_a": "env_a", "tok_b": "env_b"}, id="two"),
        pytest.param(
            "  tok_a:env_a ,\ttok_b:env_b\n", {"tok_a": "env_a", "tok_b": "env_b"}, id="whitespace"
        ),
        pytest.param(
            ",tok_a:env_a,,  ,tok_b:env_b,", {"tok_a": "env_a", "tok_b": "env_b"}, id="empty-items"
        ),
        pytest.param("a:b:env_c", {"a:b": "env_c"}, id="colon-in-token"),
        pytest.param("tok_a:env_a,tok_a:env_b", {"tok_a": "env_b"}, id="last-wins"),
        pytest.param(
            "tok_a:env_a,tok_b:env_a", {"tok_a": "env_a", "tok_b": "env_a"}, id="shared-environment"
        ),
    ],
)
def test_parses_api_tokens(api_tokens: str, expected: dict[str, str]) -> None:
    registry = TokenRegistry.from_settings(api_tokens, None)

    for token, environment in expected.items():
        assert registry.environment_for(bearer(token)) == environment
    assert registry.environment_for(bearer("not-listed")) is None


@pytest.mark.parametrize(
    "api_tokens",
    [
        pytest.param("tok_a", id="no-colon"),
        pytest.param(":env_a", id="no-token"),
        pytest.param("tok_a:", id="no-environment"),
        pytest.param(":", id="colon-only"),
        pytest.param("tok_a:env_a,broken", id="one-good-one-bad"),
        pytest.param("tok_a:env_a, tok_b ,tok_c:env_c", id="bad-in-middle"),
    ],
)
def test_malformed_entries_raise(api_tokens: str) -> None:
    with pytest.raises(ValueError, match="token:environment_id"):
        TokenRegistry.from_settings(api_tokens, None)


@pytest.mark.parametrize(
    ("api_tokens", "dev_token", "token", "expected"),
    [
        pytest.param("", "dev-token", "dev-token", "dev", id="dev-alone"),
        pytest.param("tok_a:env_a", "dev-token", "dev-token", "dev", id="dev-beside-others"),
        pytest.param("tok_a:env_a", "dev-token", "tok_a", "env_a", id="others-still-work"),
        pytest.param("dev-token:env_a", "dev-token", "dev-token", "dev", id="dev-wins"),
        pytest.param("", None, "dev-token", None, id="no-dev-token"),
        pytest.param("", "", "", None, id="empty-dev-token"),
    ],
)
def test_dev_token_maps_to_dev(
    api_tokens: str, dev_token: str | None, token: str, expected: str | None
) -> None:
    registry = TokenRegistry.from_settings(api_tokens, dev_token)

    assert registry.environment_for(bearer(token)) == expected


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        pytest.param("Bearer tok_a", "env_a", id="bearer"),
        pytest.param("Bearer   tok_a  ", "env_a", id="padded-token"),
        pytest.param(None, None, id="missing"),
        pytest.param("", None, id="empty"),
        pytest.param("Bearer ", None, id="bearer-without-token"),
        pytest.param("Bearer", None, id="scheme-only"),
        pytest.param("tok_a", None, id="no-scheme"),
        pytest.param("Basic tok_a", None, id="basic-scheme"),
        pytest.param("Token tok_a", None, id="token-scheme"),
        pytest.param("Bearertok_a", None, id="no-space"),
        pytest.param("Bearer tok_b", None, id="unknown-token"),
        pytest.param("Bearer tok_", None, id="prefix-of-token"),
        pytest.param("Bearer tok_aa", None, id="token-plus-suffix"),
        pytest.param("Bearer TOK_A", None, id="token-is-case-sensitive"),
        pytest.param("Bearer env_a", None, id="environment-is-not-a-token"),
    ],
)
def test_environment_for(authorization: str | None, expected: str | None) -> None:
    registry = TokenRegistry.from_settings("tok_a:env_a", None)

    assert registry.environment_for(authorization) == expected


def _stored_values(obj: object) -> list[object]:
    """Everything reachable from the object's attributes, in instance dict and slots."""
    found: list[object] = []
    pending: list[object] = []
    pending.extend(vars(obj).values() if hasattr(obj, "__dict__") else [])
    for cls in type(obj).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if hasattr(obj, slot):
                pending.append(getattr(obj, slot))
    while pending:
        value = pending.pop()
        found.append(value)
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list | tuple | set | frozenset):
            pending.extend(value)
    return found


@pytest.mark.parametrize("dev_token", [None, "dev-secret-token"])
def test_registry_keeps_no_plaintext_token(dev_token: str | None) -> None:
    tokens = ["sk_live_4f9a8b7c6d5e", "another-secret-value"]
    registry = TokenRegistry.from_settings(f"{tokens[0]}:env_a,{tokens[1]}:env_b", dev_token)
    secrets = [*tokens, *([dev_token] if dev_token else [])]

    values = _stored_values(registry)

    assert values, "the registry stores its lookup table somewhere"
    for value in values:
        for secret in secrets:
            if isinstance(value, str):
                assert secret not in value
            if isinstance(value, bytes | bytearray):
                assert secret.encode() not in value
    assert all(registry.environment_for(bearer(t)) for t in secrets)
