"""Settings pieces every service shares: where Kafka and Redis are, and how to talk to them."""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """Kafka connection; the environment names are the ones operators already use."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    # The brokers, `host:port` separated by commas.
    bootstrap_servers: str = "127.0.0.1:9092"
    # The idempotent producer: turn it on with Apache Kafka; the local broker lacks it.
    enable_idempotence: bool = False
    # Partitions per topic when the topics are created: the most copies of a consumer that
    # share a topic. Set it before they are first created.
    partitions: int = Field(default=6, ge=1)
    # Replicas of each topic's partitions when the topics are created.
    replication_factor: int = Field(default=1, ge=1)
    # Starts every client id (`<prefix>-<service>`...) and the DLQ replay's consumer group.
    client_id_prefix: str = "campaign-calls"
    # A consumer that stops heartbeating loses its partitions after this long; the local
    # broker also holds a new member's join for half of it.
    session_timeout_ms: int = Field(default=10_000, ge=500)
    # How often a consumer tells its group it is alive.
    heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    # How long the broker may hold a consumer's fetch while it has no record for it, and how
    # long a consumer waits for a batch (and pauses after an empty one) before it looks again.
    # Apache Kafka answers a fetch as soon as a record comes; the local broker (Tansu) only once
    # this runs out, so there it is what each hop of a call may wait (aiokafka's default is
    # 500 ms, FastStream's batch wait 200 ms).
    fetch_max_wait_ms: int = Field(default=50, ge=0, le=60_000)
    # Records a consumer fetches at once.
    batch_max_records: int = Field(default=500, ge=1)
    # Keys of a fetched batch handled side by side (one key's records always in order).
    batch_concurrency: int = Field(default=64, ge=1)
    # How every client connects (`shared/kafka_security.py`): TLS for SSL and SASL_SSL (the
    # broker's certificate checked against `ssl_cafile`, else the system's authorities), a
    # SASL login for SASL_PLAINTEXT and SASL_SSL.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    # The SASL mechanism, with SASL_PLAINTEXT and SASL_SSL.
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    # The SASL login: both required with a SASL protocol, else the service stops at start-up.
    sasl_username: str | None = None
    # The SASL login's password: a secret value, never logged.
    sasl_password: SecretStr | None = None
    # With SSL and SASL_SSL: the CA bundle (PEM) the broker's certificate and host name are
    # checked against; without it, the system's authorities.
    ssl_cafile: str | None = None

    @model_validator(mode="after")
    def _sasl_needs_a_login(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL_") and not (
            self.sasl_username and self.sasl_password and self.sasl_password.get_secret_value()
        ):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs KAFKA_SASL_USERNAME "
                "and KAFKA_SASL_PASSWORD"
            )
        return self


class RedisSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REDIS_", extra="ignore")

    # Redis or Valkey: one server, or any node of a Redis Cluster.
    url: str = "redis://127.0.0.1:6379/0"
    # The pool for blocking commands and explicit pipelines; everything else shares one
    # connection (one per node of a cluster).
    max_connections: int = Field(default=64, ge=1)
    # How long a command waits for Redis's reply before its caller gets a timeout error and the
    # connection is dropped (a new one opens for the next commands). No service sends a
    # blocking command (BLPOP, XREAD BLOCK, ...): one would need to block for less than this.
    socket_timeout_seconds: float = Field(default=10.0, gt=0)
    # How long opening a connection to Redis (or a cluster node) may take.
    connect_timeout_seconds: float = Field(default=5.0, gt=0)


def default_instance() -> str:
    """This process's name among the copies of its service: host name and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


class ObservabilitySettings(BaseSettings):
    """How a service logs (shared/observability.py; README "Logs")."""

    model_config = SettingsConfigDict(env_prefix="LOG_", extra="ignore")

    # LOG_LEVEL: the lowest level written; WARNING also leaves out ingest's access lines.
    level: str = "INFO"
    # LOG_JSON: one JSON object per line (the container image sets it); else text lines.
    # Either way numbers are masked to their last four digits and secrets redacted.
    json_logs: bool = Field(default=False, alias="LOG_JSON")
    # Which copy of the service wrote a log line: every line carries it (`<hostname>-<pid>`
    # unless set).
    instance: str = Field(default_factory=default_instance, alias="SERVICE_INSTANCE", min_length=1)


class RetentionSettings(BaseSettings):
    """How long an ended call is kept. The scheduler's retention sweep removes a call once it
    has been ended this long; every service that ends calls (ingest, scheduler, dialer) reads
    it too, for the expiry it gives the ended call's keys (this plus a day, a backstop)."""

    model_config = SettingsConfigDict(extra="ignore")

    # How long an ended call is kept (30 days by default): the scheduler's sweep removes it
    # then; ingest, scheduler and dialer give an ended call's keys an expiry of this plus a
    # day, as a backstop; the notifier keeps a delivery no longer. Set it alike for all four.
    call_retention_seconds: int = Field(default=30 * 24 * 3600, ge=1)

    @property
    def call_retention_ms(self) -> int:
        return self.call_retention_seconds * 1000


class ShutdownSettings(BaseSettings):
    """How long a service may take to stop. From SIGTERM (or SIGINT) a process has
    `SHUTDOWN_GRACE_SECONDS` to exit: the work in flight gets the drain budget (the grace less
    what is kept for committing offsets and closing clients: a fifth of it, at most 5 s), and
    a process still running when the grace is over exits at once with status 1."""

    model_config = SettingsConfigDict(extra="ignore")

    # The longest a process takes from SIGTERM to exit; the work in flight gets this less a
    # fifth of it (at most 5 s), the rest is for committing offsets and closing clients.
    shutdown_grace_seconds: float = Field(default=30.0, gt=0, le=3600)

    @property
    def drain_seconds(self) -> float:
        grace = self.shutdown_grace_seconds
        return grace - min(5.0, grace / 5)
