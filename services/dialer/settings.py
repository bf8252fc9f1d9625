from __future__ import annotations

from typing import Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import (
    KafkaSettings,
    ObservabilitySettings,
    RedisSettings,
    RetentionSettings,
    ShutdownSettings,
)


class TwilioSettings(BaseSettings):
    """Twilio Programmable Voice: the account, and the number calls come from by default."""

    model_config = SettingsConfigDict(env_prefix="TWILIO_", extra="ignore")

    # The Twilio account (required with DIALER_PROVIDER=twilio).
    account_sid: str = ""
    # Signs the carrier's callbacks and authenticates requests: never logged nor returned
    # (required with DIALER_PROVIDER=twilio).
    auth_token: SecretStr = SecretStr("")
    # The caller number of a campaign without its own `from_number` (required with
    # DIALER_PROVIDER=twilio).
    from_number: str = ""
    # Twilio's REST API (a fake one in tests).
    api_url: str = "https://api.twilio.com"


class DialerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIALER_", extra="ignore")

    # The consumer group of `campaign-calls.due`.
    group_id: str = "dialer"
    # Calls handed back (their campaign was paused after release) go to their due shard: the
    # scheduler's value.
    due_shards: int = Field(default=16, ge=1, validation_alias=AliasChoices("DUE_SHARDS"))
    # Where real calls go; test calls (`is_testing`) always go to the sandbox.
    provider: str = Field(default="sandbox", pattern="^(sandbox|twilio)$")
    # The sandbox carrier's ring time.
    sandbox_ring_ms: int = Field(default=2_000, ge=0)
    # The sandbox carrier's talk time of an answered call.
    sandbox_talk_ms: int = Field(default=5_000, ge=0)
    # Where this copy serves the callback endpoint, /healthz, /readyz and /metrics.
    http_host: str = "127.0.0.1"
    # Its port (0: any free port).
    http_port: int = Field(default=8082, ge=0, le=65535)
    # The base URL at which the carrier reaches this service (any copy): callbacks are sent to
    # `{public_url}/carrier/twilio/status`, and their signatures are checked against it.
    public_url: str = ""
    # With no callback for this long after the last one, the dialer asks the carrier.
    callback_timeout_seconds: int = Field(default=300, ge=1)
    # Failed look-ups in a row before an attempt whose carrier cannot tell is ended.
    status_lookups: int = Field(default=5, ge=1)
    # How often each copy looks for attempts whose outcome is overdue.
    watch_interval_ms: int = Field(default=1_000, ge=10)
    # Ring time the carrier allows before it gives up (`no_answer`).
    ring_timeout_seconds: int = Field(default=30, ge=5, le=600)
    # How long one request to the carrier may take.
    carrier_request_timeout_seconds: float = Field(default=10.0, gt=0)
    # How many tries a placement gets before it is `carrier_unavailable`.
    carrier_max_tries: int = Field(default=4, ge=1, le=10)
    # The agent's media stream: when set, the carrier connects the answered call to it.
    agent_stream_url: str | None = Field(
        default=None, validation_alias=AliasChoices("AGENT_STREAM_URL")
    )
    # Placements (claim to the carrier's answer) one process runs at once; more wait in Kafka.
    max_in_flight: int = Field(default=500, ge=1)
    # How long a claimed attempt stays claimed: longer than any call can last.
    claim_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    # Must equal the scheduler's: a held call's slot is renewed every third of it.
    dial_slot_lease_ms: int = Field(
        default=120_000, ge=1000, validation_alias=AliasChoices("DIAL_SLOT_LEASE_MS")
    )
    # Graceful stop: how long placements and sandbox calls in progress may take to finish;
    # unset, the drain budget of SHUTDOWN_GRACE_SECONDS, and never more (`drain_budget`).
    drain_seconds: float | None = Field(default=None, ge=0)
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    log: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    shutdown: ShutdownSettings = Field(default_factory=ShutdownSettings)

    @model_validator(mode="after")
    def _carrier_is_complete(self) -> Self:
        if self.provider == "twilio":
            missing = [
                name
                for name, value in (
                    ("TWILIO_ACCOUNT_SID", self.twilio.account_sid),
                    ("TWILIO_AUTH_TOKEN", self.twilio.auth_token.get_secret_value()),
                    ("TWILIO_FROM_NUMBER", self.twilio.from_number),
                    ("DIALER_PUBLIC_URL", self.public_url),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"DIALER_PROVIDER=twilio needs {', '.join(missing)}")
        return self

    @property
    def drain_budget(self) -> float:
        """How long calls in progress get at shutdown: DIALER_DRAIN_SECONDS if set, within the
        shared grace's drain budget."""
        budget = self.shutdown.drain_seconds
        return budget if self.drain_seconds is None else min(self.drain_seconds, budget)

    @property
    def placement_budget_seconds(self) -> float:
        """The longest a placement can take with every try and pause between them."""
        return self.carrier_max_tries * (self.carrier_request_timeout_seconds + 10.0)
