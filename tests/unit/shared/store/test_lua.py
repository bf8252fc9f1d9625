"""The loader of `.lua` files: an include line is replaced by the file it names."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from shared.store import lua


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """An importable package of its own (a fresh name, so no test sees another's files)."""
    name = f"lua_package_{uuid.uuid4().hex}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name, folder


def test_a_script_without_includes_is_read_as_it_is(package: tuple[str, Path]) -> None:
    name, folder = package
    (folder / "plain.lua").write_text("-- KEYS[1]  a key\nreturn redis.call('GET', KEYS[1])\n")

    assert lua.source(name, "plain.lua") == (
        "-- KEYS[1]  a key\nreturn redis.call('GET', KEYS[1])\n"
    )


def test_an_include_line_is_replaced_by_the_file_it_names(package: tuple[str, Path]) -> None:
    name, folder = package
    (folder / "twice.lua").write_text("local function twice(x)\n  return 2 * x\nend\n")
    (folder / "script.lua").write_text(
        "-- Returns twice ARGV[1].\n\n-- include: twice.lua\n\nreturn twice(tonumber(ARGV[1]))\n"
    )

    assert lua.source(name, "script.lua") == (
        "-- Returns twice ARGV[1].\n\n"
        "local function twice(x)\n  return 2 * x\nend\n\n"
        "return twice(tonumber(ARGV[1]))\n"
    )


def test_every_include_line_is_replaced_in_place(package: tuple[str, Path]) -> None:
    name, folder = package
    (folder / "a.lua").write_text("local a = 1\n")
    (folder / "b.lua").write_text("local b = 2\n")
    (folder / "script.lua").write_text("-- include: a.lua\n-- include: b.lua\nreturn a + b\n")

    assert lua.source(name, "script.lua") == "local a = 1\nlocal b = 2\nreturn a + b\n"


def test_only_a_whole_line_includes(package: tuple[str, Path]) -> None:
    name, folder = package
    (folder / "a.lua").write_text("local a = 1\n")
    text = "  -- include: a.lua\nreturn 1 -- include: a.lua\n-- include: a.lua, said once\n"
    (folder / "script.lua").write_text(text)

    assert lua.source(name, "script.lua") == text


def test_an_included_file_may_not_include_another(package: tuple[str, Path]) -> None:
    name, folder = package
    (folder / "inner.lua").write_text("local inner = 1\n")
    (folder / "outer.lua").write_text("-- include: inner.lua\nlocal outer = 2\n")
    (folder / "script.lua").write_text("-- include: outer.lua\nreturn outer\n")

    with pytest.raises(ValueError, match=r"outer\.lua"):
        lua.source(name, "script.lua")


def test_an_include_of_a_missing_file_fails(package: tuple[str, Path]) -> None:
    name, folder = package
    (folder / "script.lua").write_text("-- include: absent.lua\nreturn 1\n")

    with pytest.raises(FileNotFoundError):
        lua.source(name, "script.lua")


def test_a_caller_outside_a_package_is_refused() -> None:
    with pytest.raises(ValueError, match="package"):
        lua.source(None, "script.lua")
