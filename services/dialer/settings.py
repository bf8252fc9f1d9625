from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import KafkaSettings, ObservabilitySettings, RedisSettings


class DialerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIALER_", extra="ignore")

    group_id: str = "dialer"
    # Calls handed back (their campaign was paused after release) go to their due shard.
    due_shards: int = Field(default=16, ge=1, validation_alias=AliasChoices("DUE_SHARDS"))
    provider: str = Field(default="sandbox", pattern="^sandbox$")
    sandbox_ring_ms: int = Field(default=2_000, ge=0)
    sandbox_talk_ms: int = Field(default=5_000, ge=0)
    # Calls one dialer process holds open at once; more wait in Kafka.
    max_in_flight: int = Field(default=500, ge=1)
    # How long a claimed attempt stays claimed: longer than any call can last.
    claim_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    # Must equal the scheduler's: the slot of a call in progress is renewed every third of it.
    dial_slot_lease_ms: int = Field(
        default=120_000, ge=1000, validation_alias=AliasChoices("DIAL_SLOT_LEASE_MS")
    )
    # Graceful stop: how long calls in progress may take to finish.
    drain_seconds: float = Field(default=30.0, ge=0)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    log: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
