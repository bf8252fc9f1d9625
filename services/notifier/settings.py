from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import KafkaSettings, ObservabilitySettings, RedisSettings


class NotifierSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore")

    group_id: str = "notifier"
    max_connections: int = Field(default=64, ge=1)
    # How long a delivered event id is remembered to suppress repeats.
    dedup_days: int = Field(default=7, ge=1)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    log: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
