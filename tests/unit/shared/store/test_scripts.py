"""Every `.lua` file of the project: its header names what it uses, one Python caller loads
it (or, for a shared part, scripts include it), and its includes resolve."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import services
import shared
from shared.store import lua

ROOTS = [Path(shared.__file__).parent, Path(services.__file__).parent]
HEADER_ENTRY = re.compile(r"^-- (?P<table>KEYS|ARGV)\[(?P<index>\d+)(?P<tail>\.\.)?\] +\S")
LITERAL_USE = re.compile(r"\b(?P<table>KEYS|ARGV)\[(?P<index>\d+)\]")
DYNAMIC_USE = re.compile(r"#(?P<count>KEYS|ARGV)\b|\b(?P<table>KEYS|ARGV)\[(?!\d+\])")


def _lua_files() -> list[Path]:
    return sorted(path for root in ROOTS for path in root.rglob("*.lua"))


def _python_files() -> Iterator[Path]:
    for root in ROOTS:
        yield from root.rglob("*.py")


@dataclass(frozen=True)
class Script:
    path: Path
    header: list[str]
    body: str
    includes: list[str]


def _read(path: Path) -> Script:
    """The header is the comment block the file opens with, up to the first blank line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    end = next((i for i, line in enumerate(lines) if not line.startswith("--")), len(lines))
    body = "\n".join(lines[end:])
    includes = [m["name"] for m in lua.INCLUDE.finditer(body)]
    code = "\n".join(line.split("--", 1)[0] for line in lines[end:])
    return Script(path, lines[:end], code, includes)


@dataclass(frozen=True)
class Load:
    module: Path
    name: str
    constant: str | None  # the module-level name the script's text is bound to


def _loads() -> list[Load]:
    """Every `lua.source(__package__, "<name>.lua")` call in the project's Python."""
    found = []
    for module in _python_files():
        tree = ast.parse(module.read_text(encoding="utf-8"))
        targets: dict[int, str] = {}
        for statement in tree.body:
            if isinstance(statement, ast.AnnAssign | ast.Assign) and statement.value:
                target = (
                    statement.target
                    if isinstance(statement, ast.AnnAssign)
                    else statement.targets[0]
                )
                if isinstance(target, ast.Name):
                    targets[id(statement.value)] = target.id
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "source"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "lua"
            ):
                package, name = node.args
                assert isinstance(package, ast.Name), f"{module}: pass __package__"
                assert package.id == "__package__", f"{module}: pass __package__"
                assert isinstance(name, ast.Constant), f"{module}: name the file literally"
                assert isinstance(name.value, str)
                found.append(Load(module, name.value, targets.get(id(node))))
    return found


SCRIPTS = {path: _read(path) for path in _lua_files()}
INCLUDED = {script.path.parent / name for script in SCRIPTS.values() for name in script.includes}
LOADS = _loads()


def _ids(path: Path) -> str:
    return str(path.relative_to(ROOTS[0].parent))


def test_the_files_are_found() -> None:
    """The checks below run on what the search finds: it must find the project's scripts."""
    scripts = SCRIPTS.keys() - INCLUDED
    assert len(scripts) >= 20
    assert {path.parent.name for path in scripts} == {"store", "ingest", "adapters"}
    assert len(INCLUDED) >= 3


@pytest.mark.parametrize("path", sorted(SCRIPTS.keys() - INCLUDED), ids=_ids)
def test_the_header_names_every_key_and_argument_the_script_uses(path: Path) -> None:
    script = SCRIPTS[path]
    declared: dict[str, list[int]] = defaultdict(list)
    tails: dict[str, int] = {}
    for line in script.header:
        entry = HEADER_ENTRY.match(line)
        if entry is None:
            continue
        if entry["tail"]:
            tails[entry["table"]] = int(entry["index"])
        else:
            declared[entry["table"]].append(int(entry["index"]))
    used: dict[str, set[int]] = defaultdict(set)
    for use in LITERAL_USE.finditer(script.body):
        used[use["table"]].add(int(use["index"]))
    dynamic = {use["count"] or use["table"] for use in DYNAMIC_USE.finditer(script.body)}

    for table in ("KEYS", "ARGV"):
        singles = declared[table]
        assert singles == list(range(1, len(singles) + 1)), f"{table}: 1, 2, ... in order"
        if table in tails:
            assert tails[table] == len(singles) + 1, f"{table}[n..] follows the last single one"
        assert (table in tails) == (table in dynamic), (
            f"{table}[n..] is declared exactly when the script walks {table}"
        )
        first_tail = tails.get(table)
        undeclared = {
            i for i in used[table] if i not in singles and (first_tail is None or i < first_tail)
        }
        assert not undeclared, f"{table}{sorted(undeclared)} used but not in the header"
        unused = set(singles) - used[table]
        assert not unused, f"{table}{sorted(unused)} in the header but not used"
    assert any(line.startswith("-- Returns") for line in script.header), "says what it returns"


@pytest.mark.parametrize("path", sorted(INCLUDED), ids=_ids)
def test_a_shared_part_takes_everything_as_arguments(path: Path) -> None:
    script = SCRIPTS[path]
    assert not LITERAL_USE.search(script.body)
    assert not DYNAMIC_USE.search(script.body)
    assert not script.includes
    assert script.header, "a header says what the part defines"


@pytest.mark.parametrize("path", sorted(SCRIPTS), ids=_ids)
def test_a_script_is_loaded_by_one_caller_beside_it_and_a_shared_part_by_none(
    path: Path,
) -> None:
    loads = [load for load in LOADS if load.module.parent / load.name == path]
    if path in INCLUDED:
        assert loads == []
        return
    assert len(loads) == 1, f"loaded by {[str(load.module) for load in loads]}"
    (load,) = loads
    assert load.constant is not None, "bound once, at import, to a module-level name"
    source = load.module.read_text(encoding="utf-8")
    registered = re.findall(rf"register_script\({re.escape(load.constant)}\)", source)
    assert len(registered) == 1, f"{load.constant} is registered once"
    assert len(re.findall(rf"\b{re.escape(load.constant)}\b", source)) == 2, (
        f"{load.constant} is used only to register it"
    )


def test_every_loaded_file_exists() -> None:
    missing = [load for load in LOADS if not (load.module.parent / load.name).is_file()]
    assert missing == []


@pytest.mark.parametrize("path", sorted(SCRIPTS.keys() - INCLUDED), ids=_ids)
def test_includes_resolve(path: Path) -> None:
    script = SCRIPTS[path]
    package = ".".join(path.parent.relative_to(ROOTS[0].parent).parts)
    text = lua.source(package, path.name)

    assert not lua.INCLUDE.search(text)
    for name in script.includes:
        part = (path.parent / name).read_text(encoding="utf-8").rstrip("\n")
        assert part in text
