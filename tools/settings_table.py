"""python -m tools.settings_table: every service's settings as one Markdown table.

Read from the settings models themselves (services/*/settings.py and shared/settings.py): the
environment variables pydantic-settings reads for each field (aliases included, the first
listed wins), its default, its type and bounds, and its meaning: the field's `description`,
else the comment just above it in the source. A field with neither is an error, so every
setting stays documented. Secrets never show a default.

    python -m tools.settings_table            # print the table
    python -m tools.settings_table --write    # put it into README.md between its markers
"""

from __future__ import annotations

import argparse
import ast
import inspect
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Union, get_args, get_origin

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, EnvSettingsSource

from services.dialer.settings import DialerSettings
from services.ingest.settings import IngestSettings
from services.notifier.settings import NotifierSettings
from services.scheduler.settings import SchedulerSettings

README: Final = Path(__file__).resolve().parent.parent / "README.md"
START: Final = "<!-- settings:start -->"
END: Final = "<!-- settings:end -->"
SERVICES: Final[tuple[tuple[str, type[BaseSettings]], ...]] = (
    ("ingest", IngestSettings),
    ("scheduler", SchedulerSettings),
    ("dialer", DialerSettings),
    ("notifier", NotifierSettings),
)
_BOUNDS: Final = (
    ("ge", "≥ {}"),
    ("gt", "> {}"),
    ("le", "≤ {}"),
    ("lt", "< {}"),
    ("min_length", "at least {} characters"),
    ("max_length", "at most {} characters"),
    ("pattern", "matches `{}`"),
)


@dataclass(frozen=True)
class Row:
    variables: tuple[str, ...]
    services: tuple[str, ...]
    default: str
    kind: str
    meaning: str
    model: type[BaseSettings]
    field: str


def env_names(model: type[BaseSettings], name: str) -> tuple[str, ...]:
    """The environment variables that set a field, in the order pydantic-settings tries them."""
    source = EnvSettingsSource(model)
    found = source._extract_field_info(model.model_fields[name], name)
    return tuple(dict.fromkeys(env.upper() for _, env, _ in found))


def _comments_above(model: type[BaseSettings]) -> dict[str, str]:
    """Each field's comment block: the `#` lines right above its line in the class body."""
    lines, _ = inspect.getsourcelines(inspect.getmodule(model))  # type: ignore[arg-type]
    tree = ast.parse("".join(lines))
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ClassDef) and node.name == model.__name__):
            continue
        for item in node.body:
            if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
                continue
            block: list[str] = []
            index = item.lineno - 2
            while index >= 0 and lines[index].strip().startswith("#"):
                block.insert(0, lines[index].strip().lstrip("#").strip())
                index -= 1
            if block:
                found[item.target.id] = " ".join(block)
    return found


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


def _kind(info: FieldInfo) -> str:
    annotation = info.annotation
    optional = False
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        optional = len(args) < len(get_args(annotation))
        annotation = args[0] if len(args) == 1 else annotation
    if get_origin(annotation) is Literal:
        kind = "one of " + ", ".join(f"`{value}`" for value in get_args(annotation))
    else:
        names: dict[object, str] = {
            bool: "true/false",
            int: "integer",
            float: "number",
            str: "text",
            SecretStr: "secret",
        }
        kind = names.get(annotation, str(annotation))
    bounds = [
        "not empty"
        if (attr, getattr(meta, attr)) == ("min_length", 1)
        else text.format(getattr(meta, attr))
        for meta in info.metadata
        for attr, text in _BOUNDS
        if getattr(meta, attr, None) is not None
    ]
    if any(getattr(meta, "allow_inf_nan", None) is False for meta in info.metadata):
        bounds.append("finite")
    if optional:
        bounds.append("optional")
    return ", ".join([kind, *bounds])


def _default(info: FieldInfo) -> str:
    if _is_secret(info.annotation):
        return "empty"
    if info.default_factory is not None:
        return f"computed (`{info.default_factory.__name__}()`)"
    value = info.default
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == "":
        return "empty"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _rows_of(model: type[BaseSettings], services: tuple[str, ...]) -> list[Row]:
    comments = _comments_above(model)
    rows = []
    for name, info in model.model_fields.items():
        if _nested(info) is not None:
            continue
        meaning = info.description or comments.get(name)
        if not meaning:
            raise ValueError(
                f"{model.__name__}.{name} has neither a description nor a comment above it"
            )
        rows.append(
            Row(
                variables=env_names(model, name),
                services=services,
                default=_default(info),
                kind=_kind(info),
                meaning=meaning,
                model=model,
                field=name,
            )
        )
    return rows


def _nested(info: FieldInfo) -> type[BaseSettings] | None:
    annotation = info.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
        return annotation
    return None


def rows() -> list[Row]:
    """Every setting: the groups several services share first, then each service's own
    (with the groups only it reads)."""
    readers: dict[type[BaseSettings], list[str]] = {}
    for service, model in SERVICES:
        for info in model.model_fields.values():
            group = _nested(info)
            if group is not None:
                readers.setdefault(group, []).append(service)
    table: list[Row] = []
    for group, services in readers.items():
        if len(services) > 1:
            table += _rows_of(group, tuple(services))
    for service, model in SERVICES:
        table += _rows_of(model, (service,))
        for group, services in readers.items():
            if services == [service]:
                table += _rows_of(group, (service,))
    return table


def table() -> str:
    everyone = len(SERVICES)
    lines = [
        "| variable | read by | default | type | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows():
        variables = " or ".join(f"`{name}`" for name in row.variables)
        services = "all" if len(row.services) == everyone else ", ".join(row.services)
        lines.append(
            "| "
            + " | ".join(
                _cell(text) for text in (variables, services, row.default, row.kind, row.meaning)
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def with_table(readme: str, rendered: str) -> str:
    """The README with the text between its markers replaced by the table."""
    head, start, rest = readme.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"README.md needs the markers {START} and {END}")
    return f"{head}{START}\n{rendered}{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.settings_table", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    args = parser.parse_args(argv)
    rendered = table()
    if args.write:
        README.write_text(with_table(README.read_text(encoding="utf-8"), rendered), "utf-8")
    else:
        sys.stdout.write(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
