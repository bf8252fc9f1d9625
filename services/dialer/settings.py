from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import KafkaSettings, ObservabilitySettings, RedisSettings


class DialerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIALER_", extra="ignore")

    group_id: str = "dialer"
    provider: str = Field(default="sandbox", pattern="^sandbox$")
    sandbox_ring_ms: int = Field(default=2_000, ge=0)
    sandbox_talk_ms: int = Field(default=5_000, ge=0)
    # Calls one dialer process holds open at once; more wait in Kafka.
    max_in_flight: int = Field(default=500, ge=1)
    # How long a claimed attempt stays claimed: longer than any call can last.
    claim_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    # Graceful stop: how long calls in progress may take to finish.
    drain_seconds: float = Field(default=30.0, ge=0)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    log: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
