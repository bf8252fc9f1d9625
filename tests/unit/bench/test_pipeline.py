"""The pipeline benchmark's own rules: the numbers it calls, what its receiver keeps, and how
latencies are matched to the calls that were sent."""

from __future__ import annotations

import orjson

from bench.loadgen import number_at
from bench.pipeline import (
    COMPLETED,
    Completions,
    completing_index,
    latencies,
    max_calls,
    split_stages,
)
from services.dialer.domain.sandbox import sandbox_outcome
from shared.phone import to_e164
from shared.rules.outcomes import Outcome


def test_every_number_is_distinct_valid_and_completed_by_the_sandbox() -> None:
    ns = [*range(5_000), *range(max_calls() - 1_000, max_calls())]
    numbers = [number_at(completing_index(n)) for n in ns]
    assert len(set(numbers)) == len(ns)
    for number in numbers[::97]:
        assert to_e164(number) == number
    assert {sandbox_outcome(number).outcome for number in numbers} == {Outcome.COMPLETED}


def test_completing_indices_skip_only_the_digits_the_sandbox_does_not_complete() -> None:
    indices = [completing_index(n) for n in range(20)]
    assert indices == [0, 1, 2, 3, 8, 10, 11, 12, 13, 18, 20, 21, 22, 23, 28, 30, 31, 32, 33, 38]


def _body(event_type: str, call_id: str) -> bytes:
    return orjson.dumps({"id": "ev", "type": event_type, "data": {"id": call_id}})


def test_the_receiver_keeps_the_first_completed_arrival_of_each_call() -> None:
    completions = Completions()
    completions.record(_body(COMPLETED, "a"), 1.0)
    completions.record(_body(COMPLETED, "a"), 2.0)  # a repeated delivery
    completions.record(_body("campaign_call.started", "b"), 3.0)
    completions.record(b"not json", 4.0)
    completions.record(orjson.dumps({"type": COMPLETED}), 5.0)
    assert completions.first == {"a": 1.0}
    assert (completions.deliveries, completions.other_types, completions.unreadable) == (5, 1, 2)
    report = completions.report()
    assert (report["ids"], report["times"]) == (["a"], [1.0])


def test_latencies_are_matched_by_call_id_and_missing_calls_counted() -> None:
    sent = {"a": 10.0, "b": 11.0, "c": 12.0}
    arrived = {"b": 11.5, "a": 13.0, "other": 1.0}
    found, missing = latencies(sent, arrived)
    assert found == [0.5, 3.0]
    assert missing == 1


def test_stages_split_a_call_end_to_end() -> None:
    assert split_stages(100.0, 100.5, 100.75, 102.0) == (0.5, 0.25, 1.25)
