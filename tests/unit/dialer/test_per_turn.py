"""Questions of one loop turn, answered together."""

from __future__ import annotations

import asyncio

import pytest

from services.dialer.adapters.per_turn import PerTurn


async def test_the_questions_of_one_turn_get_one_call_and_each_its_own_answer() -> None:
    turns: list[list[int]] = []

    async def answer(asked: list[int]) -> list[int | BaseException]:
        turns.append(asked)
        return [ValueError(n) if n < 0 else n * 10 for n in asked]

    per_turn: PerTurn[int, int] = PerTurn(answer)
    first = await asyncio.gather(
        per_turn.ask(1), per_turn.ask(2), per_turn.ask(-1), per_turn.ask(2), return_exceptions=True
    )
    second = await per_turn.ask(3)

    assert list(first[:2]) == [10, 20]
    assert first[3] == 20
    assert isinstance(first[2], ValueError)
    assert second == 30
    assert turns == [[1, 2, -1, 2], [3]]


async def test_a_failed_answer_fails_every_caller_of_its_turn_only() -> None:
    calls = 0

    async def answer(asked: list[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("away")
        return [a.upper() for a in asked]

    per_turn: PerTurn[str, str] = PerTurn(answer)
    failed = await asyncio.gather(per_turn.ask("a"), per_turn.ask("b"), return_exceptions=True)
    assert all(isinstance(f, ConnectionError) for f in failed)
    assert await per_turn.ask("c") == "C"


async def test_a_caller_that_gave_up_leaves_the_others_their_answers() -> None:
    release = asyncio.Event()

    async def answer(asked: list[int]) -> list[int]:
        await release.wait()
        return asked

    per_turn: PerTurn[int, int] = PerTurn(answer)
    gone, kept = per_turn.ask(1), per_turn.ask(2)
    gone.cancel()
    release.set()
    assert await kept == 2
    with pytest.raises(asyncio.CancelledError):
        await gone
