"""In-memory fakes of the sagas' task queue and of the answers to the state machine
(workflows.ports.TaskQueue, TaskAnswers), for the worker's tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QueuedMessage:
    body: str
    receipt: str


class InMemoryTaskQueue:
    """workflows.ports.TaskQueue: messages stay until deleted; a received one is invisible
    until `redeliver()` (the visibility timeout passing)."""

    def __init__(self) -> None:
        self.visible: list[QueuedMessage] = []
        self.in_flight: dict[str, QueuedMessage] = {}
        self.deleted: list[QueuedMessage] = []
        self._count = 0
        self._arrived = asyncio.Event()

    def put(self, body: str) -> None:
        self._count += 1
        self.visible.append(QueuedMessage(body, f"r-{self._count}"))
        self._arrived.set()

    def redeliver(self) -> None:
        self.visible.extend(self.in_flight.values())
        self.in_flight.clear()
        self._arrived.set()

    async def receive(self, max_messages: int) -> list[QueuedMessage]:
        while not self.visible:
            self._arrived.clear()
            await self._arrived.wait()
        taken, self.visible = self.visible[:max_messages], self.visible[max_messages:]
        for message in taken:
            self.in_flight[message.receipt] = message
        return taken

    async def delete(self, task: QueuedMessage) -> None:
        message = self.in_flight.pop(task.receipt)
        self.deleted.append(message)


class RecordingAnswers:
    """workflows.ports.TaskAnswers that records what it was told; tokens in `moot` are no
    longer waited for, and `unreachable` makes every answer fail as an outage would."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, str, str]] = []
        self.moot: set[str] = set()
        self.unreachable: Exception | None = None
        self.answered = asyncio.Event()

    async def succeed(self, token: str, output: str) -> bool:
        return self._answer(token, "success", output)

    async def fail(self, token: str, error: str, cause: str) -> bool:
        return self._answer(token, "failure", error)

    def _answer(self, token: str, kind: str, detail: str) -> bool:
        if self.unreachable is not None:
            raise self.unreachable
        self.answers.append((token, kind, detail))
        self.answered.set()
        return token not in self.moot


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until `predicate()` holds (the fakes have no event to await for every state)."""
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {within}s")
        await asyncio.sleep(0.005)


def task_body(step: str, state: Mapping[str, Any], token: str) -> str:
    return json.dumps({"step": step, "input": dict(state), "taskToken": token})
