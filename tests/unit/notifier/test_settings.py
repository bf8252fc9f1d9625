"""The notifier's settings that are worked out from others."""

from __future__ import annotations

from services.notifier.settings import NotifierSettings
from shared.settings import RetentionSettings

DAY_MS = 24 * 3600 * 1000


def test_a_delivery_is_kept_for_the_dedup_days_when_calls_are_kept_longer() -> None:
    settings = NotifierSettings(
        dedup_days=7, retention=RetentionSettings(call_retention_seconds=30 * 24 * 3600)
    )

    assert settings.keep_deliveries_ms == 7 * DAY_MS


def test_a_delivery_is_kept_no_longer_than_its_call() -> None:
    settings = NotifierSettings(
        dedup_days=7, retention=RetentionSettings(call_retention_seconds=3600)
    )

    assert settings.keep_deliveries_ms == 3600 * 1000
