"""The ingest service's settings: safe when nothing is set, and read from the names the
READMEs give."""

from __future__ import annotations

import pytest

from services.ingest.domain.tokens import TokenRegistry
from services.ingest.settings import IngestSettings

NAMES = (
    "DEV_API_TOKEN",
    "API_TOKENS",
    "API_RATE_LIMIT_PER_SECOND",
    "INGEST_RATE_LIMIT_PER_SECOND",
    "INGEST_HEADER_TIMEOUT_SECONDS",
    "INGEST_BODY_TIMEOUT_SECONDS",
)


@pytest.fixture(autouse=True)
def unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)


def test_without_settings_no_token_is_accepted() -> None:
    settings = IngestSettings()
    assert settings.dev_api_token is None
    registry = TokenRegistry.from_settings(settings.api_tokens, settings.dev_api_token)
    assert registry.environment_for("Bearer dev-token") is None


def test_the_development_token_is_accepted_only_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEV_API_TOKEN", "dev-token")
    settings = IngestSettings()
    registry = TokenRegistry.from_settings(settings.api_tokens, settings.dev_api_token)
    assert registry.environment_for("Bearer dev-token") == "dev"


def test_the_limits_have_their_documented_defaults() -> None:
    settings = IngestSettings()
    assert settings.rate_limit_per_second == 1000
    assert settings.header_timeout_seconds == 15.0
    assert settings.body_timeout_seconds == 30.0


def test_the_limits_are_read_from_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_RATE_LIMIT_PER_SECOND", "0")
    monkeypatch.setenv("INGEST_HEADER_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("INGEST_BODY_TIMEOUT_SECONDS", "7")
    settings = IngestSettings()
    assert settings.rate_limit_per_second == 0
    assert settings.header_timeout_seconds == 2.5
    assert settings.body_timeout_seconds == 7.0


def test_a_negative_rate_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_RATE_LIMIT_PER_SECOND", "-1")
    with pytest.raises(ValueError, match=r"rate_limit_per_second|API_RATE_LIMIT_PER_SECOND"):
        IngestSettings()
