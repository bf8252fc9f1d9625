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


class SchedulerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SCHEDULER_", extra="ignore", populate_by_name=True
    )

    # The consumer group of `campaign-calls.requested`; call events are read as
    # `<this>-outcomes`.
    group_id: str = "scheduler"
    # Shards of the due queue: the same value for the dialer (its hand-back); never lower it
    # on a live system.
    due_shards: int = Field(default=16, ge=1, validation_alias=AliasChoices("DUE_SHARDS"))
    # How often the due pump looks for work when the last pass found none.
    pump_interval_ms: int = Field(default=200, ge=10)
    # Due calls claimed per shard per pass.
    claim_batch: int = Field(default=500, ge=1)
    # A claimed call not handed to Kafka within this time goes back to the queue.
    lease_ms: int = Field(default=30_000, ge=1000)
    # How often expired leases are requeued and lost slots recovered.
    reap_interval_ms: int = Field(default=5_000, ge=100)
    # Calls of a paused or draft campaign are looked at again after this long.
    hold_recheck_ms: int = Field(default=1_000, ge=100)
    # How long a reservation taken for a directly published request holds the number if the
    # call is never queued.
    reservation_ttl_seconds: int = Field(default=3600, ge=60)
    # A call stored this long ago whose request has not arrived is queued by the due pump
    # (checked every reap interval): its ingest died before publishing it, or the broker was
    # down. Well under the reservation's life, so its number is still held for it.
    handoff_grace_ms: int = Field(default=30_000, ge=100)
    # A concurrency slot lives this long unless the dialer holding it renews it; a dialer
    # that dies mid-call thus frees its slot, and its attempt ends as failed/dialer_lost.
    dial_slot_lease_ms: int = Field(
        default=120_000, ge=1000, validation_alias=AliasChoices("DIAL_SLOT_LEASE_MS")
    )
    # A call held back by its campaign's concurrency limit is looked at again after this.
    slot_recheck_ms: int = Field(default=500, ge=50)
    # How long the dial claim taken before ending a lost attempt is kept.
    claim_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    # How often the campaign finisher looks for campaigns to finish when it found none.
    finish_interval_ms: int = Field(default=500, ge=10)
    # How many calls the finisher ends (or deletes) at once.
    finish_chunk: int = Field(default=500, ge=1)
    # One finisher walks a campaign at a time: it holds a lease this long, renewed per chunk.
    finish_lease_ms: int = Field(default=60_000, ge=1000)
    # How often the retention sweep runs.
    retention_interval_ms: int = Field(default=60_000, ge=10)
    # Campaigns the retention sweep takes per shard, and calls it removes per round.
    retention_batch: int = Field(default=500, ge=1)
    # Where this copy serves /healthz, /readyz and /metrics.
    http_host: str = "127.0.0.1"
    # Its port (0: any free port).
    http_port: int = Field(default=8081, ge=0, le=65535)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    log: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    shutdown: ShutdownSettings = Field(default_factory=ShutdownSettings)
