"""Kafka's TLS and SASL settings reach every client: the options for each protocol and
mechanism, the same for FastStream's broker as for aiokafka's clients, and no client built
without them."""

from __future__ import annotations

import ast
import ssl
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka.security import parse_security
from pydantic import ValidationError

from shared import bus, kafka_security
from shared.settings import KafkaSettings

ROOT = Path(__file__).resolve().parents[3]
# A throwaway self-signed authority, for a CA file the TLS context must load.
TEST_CA = """-----BEGIN CERTIFICATE-----
MIIBmDCCAT+gAwIBAgIUIOlzynddoJozA7fIhaDcyORW+wgwCgYIKoZIzj0EAwIw
ITEfMB0GA1UEAwwWY2FtcGFpZ24tY2FsbHMgdGVzdCBDQTAgFw0yNjEyMDMxNDU5
MzdaGA8yMTI2MTEwOTE0NTkzN1owITEfMB0GA1UEAwwWY2FtcGFpZ24tY2FsbHMg
dGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABKEg4DyMHUi0c2ZLmIG+
gkw4iRJ8GIqH0pIHb3o703EftZSMiZe8BLW8YBqO9m1Fyhv3LeJoO37m3ffQ6CeJ
LrujUzBRMB0GA1UdDgQWBBQb2PKpfZwy3XXp6HvLylDJtQG3bTAfBgNVHSMEGDAW
gBQb2PKpfZwy3XXp6HvLylDJtQG3bTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49
BAMCA0cAMEQCID23iiZxYo9qr4RzarsZfq+9frUeB2QIb4lLwiHXgb1PAiBC6r1O
Dwq70E3cDrw7+7L8GkiuMorKW+WzbwW5+UHOUQ==
-----END CERTIFICATE-----
"""
CONSTRUCTORS = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient", "KafkaBroker"}

MODES = [
    pytest.param({}, id="plaintext"),
    pytest.param({"security_protocol": "SSL"}, id="ssl"),
    *(
        pytest.param(
            {
                "security_protocol": protocol,
                "sasl_mechanism": mechanism,
                "sasl_username": "svc",
                "sasl_password": "s3cret",
            },
            id=f"{protocol}-{mechanism}",
        )
        for protocol in ("SASL_PLAINTEXT", "SASL_SSL")
        for mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
    ),
]


def _settings(**fields: Any) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers="kafka:9093", **fields)


def test_plaintext_adds_nothing() -> None:
    assert kafka_security.client_options(_settings()) == {}
    assert kafka_security.broker_security(_settings()) is None


def test_ssl_checks_the_brokers_certificate_and_name() -> None:
    options = kafka_security.client_options(_settings(security_protocol="SSL"))
    assert set(options) == {"security_protocol", "ssl_context"}
    assert options["security_protocol"] == "SSL"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_logs_in_with_the_mechanism_and_tls_only_with_sasl_ssl(
    protocol: str, mechanism: str
) -> None:
    settings = _settings(
        security_protocol=protocol,
        sasl_mechanism=mechanism,
        sasl_username="svc",
        sasl_password="s3cret",
    )
    options = kafka_security.client_options(settings)
    assert options["security_protocol"] == protocol
    assert options["sasl_mechanism"] == mechanism
    assert options["sasl_plain_username"] == "svc"
    assert options["sasl_plain_password"] == "s3cret"
    if protocol == "SASL_SSL":
        assert isinstance(options["ssl_context"], ssl.SSLContext)
    else:
        assert options["ssl_context"] is None


@pytest.mark.parametrize("fields", MODES)
def test_the_broker_gets_what_the_clients_get(fields: dict[str, Any]) -> None:
    settings = _settings(**fields)
    mine = kafka_security.client_options(settings)
    theirs = parse_security(kafka_security.broker_security(settings))
    for options in (mine, theirs):  # two contexts of the same making
        context = options.pop("ssl_context", None)
        options["tls"] = context is not None and context.verify_mode is ssl.CERT_REQUIRED
    assert theirs == mine


def test_a_ca_file_is_the_authority_the_broker_is_checked_against(tmp_path: Path) -> None:
    cafile = tmp_path / "ca.pem"
    cafile.write_text(TEST_CA)
    settings = _settings(security_protocol="SSL", ssl_cafile=str(cafile))
    context = kafka_security.ssl_context(settings)
    assert context is not None
    assert [cert["subject"] for cert in context.get_ca_certs()] == [
        ((("commonName", "campaign-calls test CA"),),)
    ]
    with pytest.raises(FileNotFoundError):
        kafka_security.ssl_context(_settings(security_protocol="SSL", ssl_cafile="/nope.pem"))


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_without_a_login_is_refused_at_start_up(protocol: str) -> None:
    with pytest.raises(ValidationError, match="KAFKA_SASL_USERNAME"):
        _settings(security_protocol=protocol, sasl_username="svc")
    with pytest.raises(ValidationError):
        _settings(security_protocol="TLS")


def test_the_settings_are_read_from_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", "/etc/kafka/ca.pem")
    settings = KafkaSettings()
    assert settings.security_protocol == "SASL_SSL"
    assert settings.sasl_mechanism == "SCRAM-SHA-512"
    assert settings.sasl_username == "svc"
    assert settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.ssl_cafile == "/etc/kafka/ca.pem"


# --- Every client is built with them -------------------------------------------------------


class _Recorder:
    """Stands in for a client class: keeps the keyword arguments it was built with."""

    def __init__(self, built: list[dict[str, Any]]) -> None:
        self.built = built

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.built.append(kwargs)
        return self

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def list_topics(self) -> list[str]:
        return ["a"]


SASL_SSL = {
    "security_protocol": "SASL_SSL",
    "sasl_mechanism": "SCRAM-SHA-256",
    "sasl_username": "svc",
    "sasl_password": "s3cret",
}


async def test_the_producer_and_the_admin_client_are_built_with_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[dict[str, Any]] = []
    monkeypatch.setattr(bus, "AIOKafkaProducer", _Recorder(built))
    monkeypatch.setattr(bus, "AIOKafkaAdminClient", _Recorder(built))
    settings = _settings(**SASL_SSL)

    await bus.BulkSender(settings, "test").start()
    await bus.ensure_topics(settings, topics=["a"])

    assert len(built) == 2
    for kwargs in built:
        assert kwargs["security_protocol"] == "SASL_SSL"
        assert kwargs["sasl_mechanism"] == "SCRAM-SHA-256"
        assert kwargs["sasl_plain_username"] == "svc"
        assert kwargs["sasl_plain_password"] == "s3cret"
        assert isinstance(kwargs["ssl_context"], ssl.SSLContext)


def test_the_broker_is_built_with_them(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[dict[str, Any]] = []
    monkeypatch.setattr(bus, "KafkaBroker", _Recorder(built))

    bus.create_broker(_settings(**SASL_SSL), "test")

    (kwargs,) = built
    assert parse_security(kwargs["security"])["sasl_mechanism"] == "SCRAM-SHA-256"
    assert parse_security(kwargs["security"])["security_protocol"] == "SASL_SSL"


def _constructions(path: Path) -> list[ast.Call]:
    calls = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in CONSTRUCTORS:
                calls.append(node)
    return calls


def _uses_the_helper(call: ast.Call) -> bool:
    for keyword in call.keywords:
        value = keyword.value
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
            helper = value.func.attr
            if keyword.arg is None and helper == "client_options":
                return True
            if keyword.arg == "security" and helper == "broker_security":
                return True
    return False


def test_no_kafka_client_is_built_without_them() -> None:
    """Every aiokafka or FastStream client of the services, the shared code and the devstack
    is built in shared/bus.py, from the security helpers."""
    sites = {
        (path.relative_to(ROOT).as_posix(), call.lineno): _uses_the_helper(call)
        for folder in ("services", "shared", "devstack")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for call in _constructions(path)
    }
    assert sites, "the search found no client at all"
    assert {file for file, _ in sites} == {"shared/bus.py"}, sites
    assert all(sites.values()), sites
