"""Requests of one event-loop turn, answered by one call for all of them.

The dialer handles the records of a fetched batch side by side: in one loop turn dozens of
them ask Redis the same kind of question (take this attempt, is this number blocked, what is
this agent). `PerTurn` gathers what is asked during a turn and answers it with one call in the
next (one script per campaign instead of one per attempt, say); each caller still awaits its
own answer, or its own failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Q = TypeVar("Q")
A = TypeVar("A")

# Answers of a turn's questions, in their order; an exception fails only its own caller.
Answer = Callable[[list[Q]], Awaitable[Sequence[A | BaseException]]]


class PerTurn(Generic[Q, A]):
    def __init__(self, answer: Answer[Q, A]) -> None:
        self._answer = answer
        self._asked: list[Q] = []
        self._waiting: list[asyncio.Future[A]] = []
        self._running: set[asyncio.Task[None]] = set()

    def ask(self, question: Q) -> asyncio.Future[A]:
        """The answer to `question`, given with the others asked in this turn."""
        future: asyncio.Future[A] = asyncio.get_running_loop().create_future()
        if not self._asked:  # the first of this turn: all are answered from the next
            future.get_loop().call_soon(self._answer_turn)
        self._asked.append(question)
        self._waiting.append(future)
        return future

    def _answer_turn(self) -> None:
        asked, waiting = self._asked, self._waiting
        self._asked, self._waiting = [], []
        task = asyncio.ensure_future(self._settle(asked, waiting))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _settle(self, asked: list[Q], waiting: list[asyncio.Future[A]]) -> None:
        try:
            answers = await self._answer(asked)
        except asyncio.CancelledError:
            for future in waiting:
                future.cancel()
            raise
        except Exception as exc:  # every caller of the turn fails with it
            for future in waiting:
                if not future.done():
                    future.set_exception(exc)
            return
        for future, answer in zip(waiting, answers, strict=True):
            if future.done():  # a caller that gave up
                continue
            if isinstance(answer, BaseException):
                future.set_exception(answer)
            else:
                future.set_result(answer)
