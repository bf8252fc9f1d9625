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


_PHRASES = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "list_type": "must be an array",
    "string_too_long": "must not be greater than {max_length} characters",
    "string_too_short": "must be at least {min_length} characters",
    "too_short": "must have at least {min_length} items",
    "too_long": "must not have more than {max_length} items",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be greater than {gt}",
    "less_than_equal": "must not be greater than {le}",
    "less_than": "must be less than {lt}",
    "enum": "must be one of: {expected}",
    "literal_error": "must be one of: {expected}",
    "date_type": "must be a valid date (YYYY-MM-DD)",
    "date_parsing": "must be a valid date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "must be a valid date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "must be a valid date (YYYY-MM-DD)",
    "datetime_type": "must be a valid RFC 3339 timestamp",
    "datetime_parsing": "must be a valid RFC 3339 timestamp",
    "datetime_from_date_parsing": "must be a valid RFC 3339 timestamp",
    "url_type": "must be a valid URL",
    "url_parsing": "must be a valid URL",
    "url_scheme": "must be an http or https URL",
    "url_too_long": "must not be greater than {max_length} characters",
}


def _label(field: str) -> str:
    """The field's own name, for messages: `call_time_ranges.0.end` reads as `end`."""
    for part in reversed(field.split(".")):
        if not part.isdigit():
            return part.replace("_", " ")
    return field


def _message(field: str, error: dict[str, Any]) -> str:
    kind = error["type"]
    label = _label(field)
    if kind == "missing":
        return f"The {label} field is required."
    phrase = _PHRASES.get(kind)
    if phrase is not None:
        try:
            return f"The {label} {phrase.format(**error.get('ctx', {}))}."
        except (KeyError, IndexError):
            pass
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
