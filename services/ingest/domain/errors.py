"""The documented error bodies, and turning validation failures into them."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

INVALID_DATA = "The given data was invalid."


class ApiError(Exception):
    """An error with a documented status, message and code."""

    def __init__(self, status: int, message: str, code: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"success": False, "message": self.message, "code": self.code, **self.extra}


class Invalid(Exception):
    """A 422 with per-field messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(INVALID_DATA)
        self.errors = errors

    def body(self) -> dict[str, Any]:
        return {"success": False, "message": INVALID_DATA, "errors": self.errors}


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what.capitalize()} not found.", f"{what.upper()}_NOT_FOUND")


UNAUTHENTICATED_BODY: dict[str, Any] = {"success": False, "message": "Unauthenticated."}


def _field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) if loc else "body"


def _message(field: str, error: dict[str, Any]) -> str:
    kind = error["type"]
    label = field.rsplit(".", 1)[-1].replace("_", " ")
    if kind == "missing":
        return f"The {label} field is required."
    text = str(error["msg"])
    if text.startswith("Value error, "):
        text = text[len("Value error, ") :]
    return f"The {label} {text[0].lower()}{text[1:]}." if text else f"The {label} is invalid."


def validation_errors(exc: ValidationError) -> dict[str, list[str]]:
    """Every message for every field, with dotted names for nested fields."""
    errors: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False):
        field = _field_name(tuple(error["loc"]))
        message = _message(field, dict(error))
        messages = errors.setdefault(field, [])
        if message not in messages:
            messages.append(message)
    return errors
