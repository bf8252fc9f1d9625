"""Log lines name the copy that wrote them; a handled batch is one line saying what it was."""

from __future__ import annotations

import logging
import os
import socket

import orjson
import pytest
from aiokafka import ConsumerRecord

from shared.bus import log_batch
from shared.observability import FIELDS, JsonFormatter, text_format
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
    assert entry["message"] == "hello you"


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
