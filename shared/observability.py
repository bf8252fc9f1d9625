"""Logging set-up shared by every service.

With `LOG_JSON` each line is one JSON object: `ts`, `level`, `service`, `instance`, `logger`,
`event` (the message), the fields of the log context (`call_id`, `campaign_id`, `attempt`,
`trace_id`, ... whichever are set) and the log call's own fields. No line, JSON or text,
carries a full phone number or a secret's value (shared.rules.log_masking)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType, TracebackType
from typing import Any, NamedTuple

import orjson

from shared import tracing
from shared.rules.log_masking import mask_phone_numbers, masked_fields
from shared.settings import ObservabilitySettings

# A log call's `extra={FIELDS: {...}}` adds those fields to the line's JSON form.
FIELDS = "fields"
# A log call's `extra={LINES: Lines(names, columns)}` writes one line per value of the columns,
# each with the record's event and those fields: many like lines (ingest's access lines) for the
# price of one record. The fields are written as they are: they must hold nothing to mask.
LINES = "lines"


class Lines(NamedTuple):
    """Many like lines of one log record (`LINES`): the fields `names`, and for each of them a
    column of values, one a line. Columns of text or of numbers are formatted a column at a
    time, not a value at a time."""

    names: tuple[str, ...]
    columns: tuple[Sequence[object], ...]


# Every line's own keys: neither the log context nor a log call's fields replace them.
_OWN = frozenset({"ts", "level", "service", "instance", "logger"})
_NOTHING: MappingProxyType[str, object] = MappingProxyType({})
_CONTEXT: ContextVar[MappingProxyType[str, object]] = ContextVar("log_context", default=_NOTHING)


class log_context:  # used as a function: `with log_context(call_id=...):`
    """Adds fields to every line logged inside the block, in this task and the tasks it
    starts: `call_id`, `campaign_id`, `attempt` while a message about one call is handled.
    A field given as None is left out. `trace_id` is the current span's (shared/tracing.py)
    when tracing is on, unless the context names one."""

    __slots__ = ("_fields", "_token")

    def __init__(self, **fields: object) -> None:
        self._fields = fields
        self._token: Token[MappingProxyType[str, object]] | None = None

    def __enter__(self) -> None:
        current = _CONTEXT.get()
        merged = dict(current)
        for name, value in self._fields.items():
            if value is not None:
                merged[name] = value
        self._token = _CONTEXT.set(MappingProxyType(merged))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _CONTEXT.reset(self._token)
            self._token = None


def current_log_context() -> MappingProxyType[str, object]:
    return _CONTEXT.get()


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str, instance: str) -> None:
        super().__init__()
        self._service = service
        self._instance = instance

    def format(self, record: logging.LogRecord) -> str:
        many = getattr(record, LINES, None)
        if many is not None:
            return self._lines(record, many)
        message = mask_phone_numbers(record.getMessage())
        entry: dict[str, Any] = {
            "ts": _iso_utc(record.created),
            "level": record.levelname,
            "service": self._service,
            "instance": self._instance,
            "logger": record.name,
            "event": message,
        }
        context = _CONTEXT.get()
        if context:
            _merge(entry, masked_fields(context))
        if tracing.enabled and "trace_id" not in entry:
            # Hex digits, never masked: a run of them could look like a number.
            trace_id = tracing.current_trace_id()
            if trace_id is not None:
                entry["trace_id"] = trace_id
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict) and fields:
            _merge(entry, masked_fields(fields))
        if entry["event"] is not message:
            # The log call named its event: its text stays, as `message`.
            entry["message"] = message
        if record.exc_info:
            entry["exc"] = mask_phone_numbers(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exc"] = mask_phone_numbers(record.exc_text)
        return orjson.dumps(entry, default=str).decode()

    def _lines(self, record: logging.LogRecord, many: Lines) -> str:
        """A record of many lines (`LINES`, whose fields carry nothing to mask): one JSON
        object a line, sharing the record's time, level and logger."""
        head = {
            "ts": _iso_utc(record.created),
            "level": record.levelname,
            "service": self._service,
            "instance": self._instance,
            "logger": record.name,
            "event": record.getMessage(),
        }
        # The head's object left open, each line's fields closing it.
        opened = _escaped(orjson.dumps(head)[:-1].decode())
        pairs = ",".join(f"{orjson.dumps(name).decode()}:%s" for name in many.names)
        columns = [_json_column(column) for column in many.columns]
        return "\n".join(map(f"{opened},{pairs}}}".__mod__, zip(*columns, strict=True)))


def _escaped(text: str) -> str:
    """`text` as a %-format's own characters."""
    return text.replace("%", "%%")


def _numbers(column: Sequence[object]) -> list[str] | None:
    """A column of numbers as JSON writes them, value by value, from one encoding of the
    whole column (a number's JSON holds no comma); None if it holds anything else."""
    if not column or not set(map(type, column)) <= {int, float}:
        return None
    return orjson.dumps(column).decode()[1:-1].split(",")


def _json_column(column: Sequence[object]) -> Sequence[str]:
    """Each value of `column` as JSON: texts encoded once per distinct value, numbers a
    column at a time."""
    if set(map(type, column)) <= {str}:
        encoded = {value: orjson.dumps(value).decode() for value in set(column)}
        return list(map(encoded.__getitem__, column))
    numbers = _numbers(column)
    if numbers is not None:
        return numbers
    return [orjson.dumps(value, default=str).decode() for value in column]


def _text_column(column: Sequence[object]) -> Sequence[object]:
    """Each value of `column` as a text line writes it (numbers as in JSON)."""
    numbers = _numbers(column)
    return column if numbers is None else numbers


def _iso_utc(created: float) -> str:
    """`2026-03-01T12:00:00.123Z`: UTC, to the millisecond."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _merge(entry: dict[str, Any], fields: dict[str, object]) -> None:
    for name, value in fields.items():
        if name not in _OWN and value is not None:
            entry[name] = value


class MaskingFormatter(logging.Formatter):
    """The text form: the usual line, and the log context's fields after the message, with
    numbers masked throughout (the message, the fields, a traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        many = getattr(record, LINES, None)
        if many is not None:
            head = _escaped(super().format(record))
            named = " ".join(f"{name}=%s" for name in many.names)
            columns = [_text_column(column) for column in many.columns]
            return "\n".join(map(f"{head} {named}".__mod__, zip(*columns, strict=True)))
        text = super().format(record)
        context = _CONTEXT.get()
        if context:
            pairs = masked_fields(context)
            text += " " + " ".join(f"{name}={value}" for name, value in pairs.items())
        text = mask_phone_numbers(text)
        if tracing.enabled and "trace_id" not in context:
            # After masking: its hex digits could look like a number.
            trace_id = tracing.current_trace_id()
            if trace_id is not None:
                text += f" trace_id={trace_id}"
        return text


def text_format(service: str, instance: str) -> str:
    return f"%(asctime)s {service} {instance} %(levelname)s %(name)s: %(message)s"


def formatter_for(service: str, settings: ObservabilitySettings) -> logging.Formatter:
    if settings.json_logs:
        return JsonFormatter(service, settings.instance)
    return MaskingFormatter(text_format(service, settings.instance))


def configure_logging(service: str, settings: ObservabilitySettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(service, settings))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level.upper())
    # aiokafka is chatty at INFO during rebalances and broker restarts.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
