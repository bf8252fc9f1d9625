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


class NotifierSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore", populate_by_name=True)

    # The consumer group of `campaign-calls.events`; `campaign-calls.campaign-events` is read
    # as `<group>-campaigns`.
    group_id: str = "notifier"
    # Attempts one process holds at once, sent or waiting for their webhook's turn (its HTTP
    # connection pool is as large).
    max_in_flight: int = Field(default=256, ge=1)
    # Attempts one process sends to any one webhook at once.
    endpoint_concurrency: int = Field(default=16, ge=1)
    # A webhook may have as many more attempts waiting for their turn in a process as it
    # answers in this long at its recent pace (at least NOTIFIER_ENDPOINT_CONCURRENCY; one not
    # heard from yet, every place); an attempt that waited twice this long goes back to the
    # queue, and the webhook counts as slow.
    endpoint_waiting_ms: int = Field(default=1_000, ge=1)
    # How long the consumer waits for places among the process's attempts to come free, so
    # that it makes the first attempts of what it stores itself, before it stores the rest of
    # a batch for the queue (any copy's workers claim them from there).
    store_wait_ms: int = Field(default=1_000, ge=0)
    # An attempt claimed for a webhook with no place left, or whose turn did not come in time,
    # is queued again this much later.
    endpoint_busy_retry_ms: int = Field(default=1_000, ge=1)
    # How long a delivery (its body, for redelivery, and the dedup of its event) is kept.
    dedup_days: int = Field(default=7, ge=1)
    # Attempts kept in each webhook's deliveries log (the newest).
    keep_attempts: int = Field(default=1000, ge=1)
    # Every retry wait (5 s, 5 min, 30 min, 2 h, 5 h, 10 h …, a Retry-After too) is multiplied
    # by this: 0.001 runs the schedule in milliseconds for tests and demos.
    retry_scale: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    # The longest a receiver's Retry-After may hold a retry back (0 ignores it).
    retry_after_max_seconds: int = Field(default=3_600, ge=0)
    # How often the workers look for queued attempts when nothing told them of new ones (a
    # retry coming due, a test event or a redelivery queued by the API).
    poll_ms: int = Field(default=200, ge=1)
    # A claimed attempt not finished in this time (its notifier died) is claimed again; an
    # attempt whose webhook's timeout and the claim margin need longer extends it.
    lease_ms: int = Field(default=45_000, ge=1_000)
    # Held beyond a webhook's timeout for an attempt under way, so no one else makes it.
    claim_margin_ms: int = Field(default=15_000, ge=0)
    # Attempts under way get this long to finish at shutdown; unset, the drain budget of
    # SHUTDOWN_GRACE_SECONDS, and never more (`drain_budget`).
    shutdown_grace_ms: int | None = Field(default=None, ge=0)
    # /healthz, /readyz and /metrics (port 0: any free port).
    http_host: str = "127.0.0.1"
    # Its port (0: any free port).
    http_port: int = Field(default=8083, ge=0, le=65535)
    # Send to loopback, private and link-local targets (the same variable ingest reads;
    # `make run` and the test stack turn it on).
    allow_private_targets: bool = Field(
        default=False,
        validation_alias=AliasChoices(
            "WEBHOOK_ALLOW_PRIVATE_TARGETS", "NOTIFIER_ALLOW_PRIVATE_TARGETS"
        ),
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    log: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    # A delivery is kept no longer than the call it tells of (CALL_RETENTION_SECONDS).
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    @property
    def keep_deliveries_ms(self) -> int:
        """How long a delivery is kept after its last attempt: NOTIFIER_DEDUP_DAYS, or the
        calls' retention when that is shorter."""
        return min(self.dedup_days * 24 * 3600 * 1000, self.retention.call_retention_ms)

    shutdown: ShutdownSettings = Field(default_factory=ShutdownSettings)

    @property
    def drain_budget(self) -> float:
        """Seconds attempts under way get at shutdown: NOTIFIER_SHUTDOWN_GRACE_MS if set,
        within the shared grace's drain budget."""
        budget = self.shutdown.drain_seconds
        if self.shutdown_grace_ms is None:
            return budget
        return min(self.shutdown_grace_ms / 1000, budget)
