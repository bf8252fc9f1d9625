"""How every Kafka client of the system authenticates and encrypts: one reading of the
`KAFKA_SECURITY_PROTOCOL`, `KAFKA_SASL_*` and `KAFKA_SSL_CAFILE` settings, for aiokafka's
clients (`client_options`) and for FastStream's broker (`broker_security`), which hands the same
options to the aiokafka clients it makes.

Every client is built in `shared/bus.py` through these two; a unit test fails if a client is
constructed anywhere else."""

from __future__ import annotations

import ssl
from typing import Any

from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared.settings import KafkaSettings

_SCRAM = {"SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context of an SSL or SASL_SSL connection: the broker's certificate is checked
    against `KAFKA_SSL_CAFILE`, or the system's authorities without one, and so is its host
    name. None for a protocol without TLS."""
    if settings.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    return ssl.create_default_context(cafile=settings.ssl_cafile)


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """The keyword arguments an aiokafka producer, consumer or admin client takes for the
    configured security (none for PLAINTEXT, aiokafka's default)."""
    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol, "ssl_context": ssl_context(settings)}
    if protocol.startswith("SASL_"):
        password = settings.sasl_password
        options.update(
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.sasl_username,
            sasl_plain_password=password.get_secret_value() if password is not None else None,
        )
    return options


def broker_security(settings: KafkaSettings) -> BaseSecurity | None:
    """The same security as FastStream's `KafkaBroker(security=...)` takes it."""
    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    username = settings.sasl_username or ""
    password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
    use_ssl = protocol == "SASL_SSL"
    mechanism = settings.sasl_mechanism
    if mechanism == "PLAIN":
        return SASLPlaintext(username, password, ssl_context=context, use_ssl=use_ssl)
    return _SCRAM[mechanism](username, password, ssl_context=context, use_ssl=use_ssl)
