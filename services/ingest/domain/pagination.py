"""Pages of a list, with the documented `pagination` envelope."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from services.ingest.domain.errors import Invalid

Item = TypeVar("Item")
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
# Bounded so that every number of the envelope fits the 64-bit integers JSON clients read.
MAX_PAGE = 2**31 - 1


@dataclass(frozen=True, slots=True)
class PageRequest:
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> PageRequest:
        errors: dict[str, list[str]] = {}
        values = {}
        for name, default, top in (
            ("page", 1, MAX_PAGE),
            ("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE),
        ):
            raw = query.get(name)
            if raw is None:
                values[name] = default
                continue
            # ASCII only: "²" is a digit to str.isdigit but not to int().
            digits = raw.lstrip("0") if raw.isascii() and raw.isdigit() else ""
            if not digits:
                errors[name] = [f"The {name.replace('_', ' ')} must be a positive integer."]
            # Compared by length first: int() refuses strings of thousands of digits.
            elif len(digits) > len(str(top)) or int(digits) > top:
                errors[name] = [f"The {name.replace('_', ' ')} must not be greater than {top}."]
            else:
                values[name] = int(digits)
        if errors:
            raise Invalid(errors)
        return cls(values["page"], values["per_page"])

    @property
    def start(self) -> int:
        """The position of the page's first item among all (0-based)."""
        return (self.page - 1) * self.per_page

    def slice(self, items: Sequence[Item]) -> tuple[Sequence[Item], dict[str, Any]]:
        """The items of this page and the envelope that describes it."""
        chosen = items[self.start : self.start + self.per_page]
        return chosen, self.envelope(len(items), len(chosen))

    def envelope(self, total: int, shown: int) -> dict[str, Any]:
        """The envelope of this page when `total` items match and the page shows `shown`."""
        return {
            "current_page": self.page,
            "last_page": max(1, -(-total // self.per_page)),
            "per_page": self.per_page,
            "total": total,
            "from": self.start + 1 if shown else None,
            "to": self.start + shown if shown else None,
        }
