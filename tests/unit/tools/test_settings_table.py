"""The settings table: every setting, under the names that really set it, and the README current."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from shared.settings import KafkaSettings
from tools.settings_table import README, SERVICES, rows, table, with_table


def _probe(model: type[BaseSettings], field: str) -> tuple[str, object] | None:
    """A value for the field's variable that differs from its default, and what the field
    then holds; None when there is no simple one (choices, patterns, secrets)."""
    info = model.model_fields[field]
    default = info.default
    if any(getattr(meta, "pattern", None) for meta in info.metadata):
        return None
    if info.annotation is bool:
        return str(not default).lower(), not default
    if info.annotation is int:
        return str(default + 1), default + 1
    if info.annotation is float:
        return str(default + 1), default + 1
    if info.annotation in (str, str | None):
        return "probe-value", "probe-value"
    return None


def test_every_field_of_every_settings_model_has_a_row() -> None:
    listed = {(row.model, row.field) for row in rows()}
    models = {model for _, model in SERVICES} | {row.model for row in rows()}
    for model in models:
        for name, info in model.model_fields.items():
            nested = isinstance(info.annotation, type) and issubclass(info.annotation, BaseSettings)
            assert nested or (model, name) in listed, f"{model.__name__}.{name}"


def test_each_variable_listed_sets_its_field(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the variable under test is set (another name of the same field would win).
    for row in rows():
        for variable in row.variables:
            monkeypatch.delenv(variable, raising=False)
    probed = 0
    for row in rows():
        probe = _probe(row.model, row.field)
        if probe is None:
            continue
        raw, expected = probe
        for variable in row.variables:
            with monkeypatch.context() as env:
                env.setenv(variable, raw)
                assert getattr(row.model(), row.field) == expected, variable
            probed += 1
    # The aliased ones among them: API_HOST, DUE_SHARDS, LOG_JSON, SERVICE_INSTANCE, ...
    assert probed >= 90


def test_secrets_never_show_a_default() -> None:
    secret_rows = [row for row in rows() if "secret" in row.kind]
    assert {v for row in secret_rows for v in row.variables} == {
        "KAFKA_SASL_PASSWORD",
        "TWILIO_AUTH_TOKEN",
    }
    assert all(row.default == "empty" for row in secret_rows)
    assert KafkaSettings.model_fields["sasl_password"].annotation == SecretStr | None


def test_aliases_are_listed_first_wins_order_and_shared_groups_once() -> None:
    by_first = {row.variables[0]: row for row in rows()}
    assert by_first["API_HOST"].variables == ("API_HOST", "INGEST_HOST")
    assert by_first["KAFKA_PARTITIONS"].services == ("ingest", "scheduler", "dialer", "notifier")
    assert by_first["TWILIO_AUTH_TOKEN"].services == ("dialer",)
    assert sum(row.variables == ("KAFKA_BOOTSTRAP_SERVERS",) for row in rows()) == 1


def test_the_table_replaces_only_what_is_between_the_markers() -> None:
    readme = "intro\n<!-- settings:start -->\nold\n<!-- settings:end -->\noutro\n"
    assert with_table(readme, "| new |\n") == (
        "intro\n<!-- settings:start -->\n| new |\n<!-- settings:end -->\noutro\n"
    )
    with pytest.raises(ValueError, match="markers"):
        with_table("no markers here\n", "| new |\n")


def test_readme_table_is_current() -> None:
    readme = README.read_text(encoding="utf-8")
    assert with_table(readme, table()) == readme, (
        "README.md's settings table is not what the settings models generate: run "
        "`make settings-table` (python -m tools.settings_table --write) and commit the result"
    )
