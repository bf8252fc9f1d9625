"""Lua scripts, read from the `.lua` files that sit beside the module that runs them.

A line that reads exactly `-- include: <name>.lua` is replaced by that file of the same
package, so a Lua function that several scripts need is written once. An included file
includes nothing itself.
"""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Final

INCLUDE: Final = re.compile(r"^-- include: (?P<name>[\w.-]+\.lua)$", re.MULTILINE)


def source(package: str | None, name: str) -> str:
    """The text of script `name` in `package` (the caller's `__package__`), includes in place."""
    if not package:
        raise ValueError(f"{name}: a script is read from a package, and this caller has none")
    folder = files(package)
    text = folder.joinpath(name).read_text(encoding="utf-8")

    def included(match: re.Match[str]) -> str:
        snippet = folder.joinpath(match["name"]).read_text(encoding="utf-8")
        if INCLUDE.search(snippet):
            raise ValueError(f"{match['name']} (included by {name}) includes another file")
        return snippet.rstrip("\n")

    return INCLUDE.sub(included, text)
