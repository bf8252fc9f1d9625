"""Log lines name the copy that wrote them; a handled batch is one line saying what it was."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys

import orjson
import pytest
from aiokafka import ConsumerRecord

from shared.bus import log_batch
from shared.observability import (
    FIELDS,
    LINES,
    JsonFormatter,
    Lines,
    MaskingFormatter,
    current_log_context,
    log_context,
    text_format,
)
from shared.settings import ObservabilitySettings


def _record(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("campaign-calls.due", partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


def test_a_copy_is_named_by_its_host_and_process_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SERVICE_INSTANCE", raising=False)
    assert ObservabilitySettings().instance == f"{socket.gethostname()}-{os.getpid()}"
    monkeypatch.setenv("SERVICE_INSTANCE", "dialer-2")
    assert ObservabilitySettings().instance == "dialer-2"


def test_every_line_names_its_service_and_copy() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    text = logging.Formatter(text_format("dialer", "dialer-2")).format(record)
    assert " dialer dialer-2 INFO x: hello you" in text
    entry = orjson.loads(JsonFormatter("dialer", "dialer-2").format(record))
    assert entry["service"] == "dialer"
    assert entry["instance"] == "dialer-2"
    assert entry["event"] == "hello you"
    assert "message" not in entry  # the event is the message


def test_a_handled_batch_is_one_line_with_its_offsets_per_partition(
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = [_record(3, 44), _record(0, 120), _record(3, 50), _record(0, 131), _record(3, 45)]
    with caplog.at_level(logging.INFO, logger="shared.bus"):
        log_batch(records, "campaign-calls.due")
    (line,) = caplog.records
    assert line.getMessage() == "handled 5 records of campaign-calls.due: 0@120-131 3@44-50"
    entry = orjson.loads(JsonFormatter("dialer", "dialer-2").format(line))
    assert entry["instance"] == "dialer-2"
    assert entry["event"] == "batch_handled"
    assert entry["message"] == "handled 5 records of campaign-calls.due: 0@120-131 3@44-50"
    assert entry["topic"] == "campaign-calls.due"
    assert entry["records"] == 5
    assert entry["offsets"] == {"0": [120, 131], "3": [44, 50]}
    assert getattr(line, FIELDS)["records"] == 5


def test_nothing_is_logged_for_an_empty_batch_or_below_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="shared.bus"):
        log_batch([], "campaign-calls.due")
    with caplog.at_level(logging.WARNING, logger="shared.bus"):
        log_batch([_record(0, 1)], "campaign-calls.due")
    assert caplog.records == []


def _line(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("dialer.x", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def _entry(record: logging.LogRecord) -> dict[str, object]:
    text = JsonFormatter("dialer", "dialer-2").format(record)
    assert "\n" not in text  # one object per line
    entry: dict[str, object] = orjson.loads(text)
    return entry


def test_a_json_line_has_its_own_keys_and_a_utc_timestamp() -> None:
    entry = _entry(_line("placed"))
    assert entry.keys() == {"ts", "level", "service", "instance", "logger", "event"}
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "dialer.x"
    assert isinstance(entry["ts"], str)
    assert entry["ts"].endswith("Z")
    assert entry["ts"][10] == "T"


def test_the_log_context_adds_the_call_to_every_line_inside_it_only() -> None:
    with log_context(call_id="c-1", campaign_id="k-1", attempt=2):
        with log_context(trace_id=None, attempt=3):
            inner = _entry(_line("ended"))
        outer = _entry(_line("placed"))
    after = _entry(_line("idle"))
    assert inner["call_id"] == "c-1"
    assert inner["campaign_id"] == "k-1"
    assert inner["attempt"] == 3
    assert outer["attempt"] == 2
    assert "trace_id" not in inner  # none is made up: only a trace_id set is written
    assert not {"call_id", "campaign_id", "attempt"} & after.keys()
    assert current_log_context() == {}


def test_a_trace_id_set_in_the_context_is_written() -> None:
    with log_context(trace_id="4bf92f3577b34da6a3ce929d0e0e4736"):
        entry = _entry(_line("placed"))
    assert entry["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_tasks_started_inside_the_context_keep_it() -> None:
    async def placed() -> dict[str, object]:
        await asyncio.sleep(0)
        return _entry(_line("placed"))

    with log_context(call_id="c-1"):
        task = asyncio.create_task(placed())
    assert (await task)["call_id"] == "c-1"


def test_a_log_call_cannot_replace_a_line_s_own_keys() -> None:
    entry = _entry(_line("x", **{FIELDS: {"service": "other", "level": "DEBUG", "x": None}}))
    assert entry["service"] == "dialer"
    assert entry["level"] == "WARNING"
    assert "x" not in entry  # a field of no value is left out


def test_numbers_are_masked_and_secrets_redacted_in_every_part_of_a_json_line() -> None:
    try:
        raise ValueError("carrier refused +12025550101")
    except ValueError:
        exc_info = sys.exc_info()
    record = _line(
        "dialing %s",
        "+12025550101",
        **{FIELDS: {"to": "+12025550101", "authorization": "Bearer t0k3n", "api_key": "k"}},
    )
    record.exc_info = exc_info
    with log_context(call_id="c-1", number="+12025550101"):
        text = JsonFormatter("dialer", "dialer-2").format(record)
    assert "2025550101" not in text
    assert "t0k3n" not in text
    entry = orjson.loads(text)
    assert entry["event"] == "dialing +*******0101"
    assert entry["to"] == "+*******0101"
    assert entry["number"] == "+*******0101"
    assert entry["authorization"] == "[redacted]"
    assert entry["api_key"] == "[redacted]"
    assert "carrier refused +*******0101" in entry["exc"]


def test_text_lines_are_masked_too_and_name_the_context() -> None:
    formatter = MaskingFormatter(text_format("dialer", "dialer-2"))
    with log_context(call_id="c-1", attempt=1):
        text = formatter.format(_line("dialing %s", "+12025550101"))
    assert text.endswith("dialer.x: dialing +*******0101 call_id=c-1 attempt=1")


def _many(lines: Lines) -> logging.LogRecord:
    record = logging.LogRecord("ingest.access", logging.INFO, __file__, 1, "access", None, None)
    setattr(record, LINES, lines)
    return record


def test_a_record_of_many_lines_is_one_json_object_a_line() -> None:
    lines = Lines(
        ("route", "status", "duration_ms", "note"),
        (["/a/{id}", 'say "100%"', "/a/{id}"], [201, 404, 7], [3.107, 0.5, 12.0], [None, 1, "x"]),
    )
    written = JsonFormatter("ingest", "in%stance").format(_many(lines)).split("\n")
    entries = [orjson.loads(line) for line in written]
    assert [(e["route"], e["status"], e["duration_ms"], e["note"]) for e in entries] == [
        ("/a/{id}", 201, 3.107, None),
        ('say "100%"', 404, 0.5, 1),
        ("/a/{id}", 7, 12.0, "x"),
    ]
    assert all(isinstance(entry["duration_ms"], float) for entry in entries)
    assert {(e["event"], e["logger"], e["instance"], e["level"]) for e in entries} == {
        ("access", "ingest.access", "in%stance", "INFO")
    }


def test_a_record_of_many_lines_is_one_text_line_each() -> None:
    lines = Lines(("route", "status", "duration_ms"), (["/a", "/b%s"], [201, 404], [3.107, 0.5]))
    formatter = MaskingFormatter(text_format("ingest", "i-1"))
    first, second = formatter.format(_many(lines)).split("\n")
    assert first.endswith(
        "ingest i-1 INFO ingest.access: access route=/a status=201 duration_ms=3.107"
    )
    assert second.endswith("access route=/b%s status=404 duration_ms=0.5")
