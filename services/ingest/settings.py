from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import (
    KafkaSettings,
    ObservabilitySettings,
    RedisSettings,
    RetentionSettings,
    ShutdownSettings,
)


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore", populate_by_name=True)

    # Where the API listens (also /healthz, /readyz and /metrics).
    host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("API_HOST", "INGEST_HOST"))
    # Its port.
    port: int = Field(default=8080, validation_alias=AliasChoices("API_PORT", "INGEST_PORT"))
    # A token of the environment `dev`; none unless set (`make run` sets `dev-token`).
    dev_api_token: str | None = Field(default=None, validation_alias="DEV_API_TOKEN")
    # The API's tokens: `token:environment,token:environment`.
    api_tokens: str = Field(default="", validation_alias="API_TOKENS")
    # Requests a second per environment, shared by every copy of the service, with a burst of
    # one second's worth; a batch counts its items. 0 turns the limit off.
    rate_limit_per_second: int = Field(
        default=1000,
        ge=0,
        validation_alias=AliasChoices("API_RATE_LIMIT_PER_SECOND", "INGEST_RATE_LIMIT_PER_SECOND"),
    )
    # How long a connection may take to send a request's head (line and headers), counted from
    # when it opened or answered its previous request; also how long an idle kept-alive
    # connection stays open.
    header_timeout_seconds: float = Field(default=15.0, gt=0, le=3600)
    # How long an authenticated request's body may take to arrive once its head has.
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    # How long an accepted call's number stays reserved if the scheduler never stores it.
    reservation_ttl_seconds: int = Field(default=3600, ge=60)
    # A request body over this is `413 TOO_LARGE`.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # How long the call path may reuse a campaign it read (0: read it on every request). A call
    # is stored only if the campaign is still the version it was checked against.
    campaign_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    # How long accepted requests may gather before they go to the broker as one lot (0: at
    # once). Fewer, fuller batches cost the process less per request; the answer never waits.
    handoff_linger_ms: float = Field(default=20.0, ge=0, le=1000)
    # Accept webhook URLs on loopback and private addresses (the notifier reads the same
    # variable to send to them; `make run` turns it on).
    allow_private_webhook_targets: bool = Field(
        default=False, validation_alias="WEBHOOK_ALLOW_PRIVATE_TARGETS"
    )
    # Read but unused: ingest never touches the due queue.
    due_shards: int = Field(default=16, ge=1, validation_alias="DUE_SHARDS")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    log: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    shutdown: ShutdownSettings = Field(default_factory=ShutdownSettings)
