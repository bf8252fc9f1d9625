from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.dialer.settings import DialerSettings
from services.ingest.settings import IngestSettings
from services.scheduler.settings import SchedulerSettings
from shared.settings import RetentionSettings


def test_the_retention_defaults_to_thirty_days() -> None:
    assert RetentionSettings().call_retention_ms == 30 * 24 * 3600 * 1000


def test_every_service_that_ends_calls_reads_the_one_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CALL_RETENTION_SECONDS", "90")

    for settings in (SchedulerSettings(), IngestSettings(), DialerSettings()):
        assert settings.retention.call_retention_ms == 90_000


def test_a_retention_below_one_second_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALL_RETENTION_SECONDS", "0")

    with pytest.raises(ValidationError):
        RetentionSettings()
