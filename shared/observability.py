"""Logging set-up shared by every service."""

from __future__ import annotations

import logging
import sys

import orjson

from shared.settings import ObservabilitySettings

# A log call's `extra={FIELDS: {...}}` adds those fields to the line's JSON form.
FIELDS = "fields"


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str, instance: str) -> None:
        super().__init__()
        self._service = service
        self._instance = instance

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": self.formatTime(record),
            "level": record.levelname,
            "service": self._service,
            "instance": self._instance,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def text_format(service: str, instance: str) -> str:
    return f"%(asctime)s {service} {instance} %(levelname)s %(name)s: %(message)s"


def configure_logging(service: str, settings: ObservabilitySettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.json_logs:
        handler.setFormatter(JsonFormatter(service, settings.instance))
    else:
        handler.setFormatter(logging.Formatter(text_format(service, settings.instance)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level.upper())
    # aiokafka is chatty at INFO during rebalances and broker restarts.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
