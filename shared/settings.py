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

    bootstrap_servers: str = "127.0.0.1:9092"
    # Apache Kafka supports the idempotent producer; the local broker does not.
    enable_idempotence: bool = False
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    client_id_prefix: str = "campaign-calls"
    # A consumer that stops heartbeating loses its partitions after this long; the local
    # broker also holds a new member's join for half of it.
    session_timeout_ms: int = Field(default=10_000, ge=500)
    heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    # Consumers fetch up to this many records at once and handle different keys side by side.
    batch_max_records: int = Field(default=500, ge=1)
    batch_concurrency: int = Field(default=64, ge=1)
    # How every client connects (`shared/kafka_security.py`): TLS for SSL and SASL_SSL (the
    # broker's certificate checked against `ssl_cafile`, else the system's authorities), a
    # SASL login for SASL_PLAINTEXT and SASL_SSL.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
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

    url: str = "redis://127.0.0.1:6379/0"
    max_connections: int = Field(default=64, ge=1)
    # How long a command waits for Redis's reply before its caller gets a timeout error and the
    # connection is dropped (a new one opens for the next commands), and how long opening a
    # connection may take. No service sends a blocking command (BLPOP, XREAD BLOCK, ...): one
    # would need to block for less than the socket timeout.
    socket_timeout_seconds: float = Field(default=10.0, gt=0)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)


def default_instance() -> str:
    """This process's name among the copies of its service: host name and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


class ObservabilitySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOG_", extra="ignore")

    level: str = "INFO"
    json_logs: bool = Field(default=False, alias="LOG_JSON")
    # Which copy of the service wrote a log line: every line carries it.
    instance: str = Field(default_factory=default_instance, alias="SERVICE_INSTANCE", min_length=1)


class RetentionSettings(BaseSettings):
    """How long an ended call is kept. The scheduler's retention sweep removes a call once it
    has been ended this long; every service that ends calls (ingest, scheduler, dialer) reads
    it too, for the expiry it gives the ended call's keys (this plus a day, a backstop)."""

    model_config = SettingsConfigDict(extra="ignore")

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

    shutdown_grace_seconds: float = Field(default=30.0, gt=0, le=3600)

    @property
    def drain_seconds(self) -> float:
        grace = self.shutdown_grace_seconds
        return grace - min(5.0, grace / 5)
