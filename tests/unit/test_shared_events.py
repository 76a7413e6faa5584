"""subscriptions.shared_events: equal subscribers share a decoded change and its execution."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from subscriptions.shared_events import SharedExecutions, shared_view


def test_a_message_is_decoded_once_for_all_its_subscribers() -> None:
    decoded: list[dict[str, Any]] = []

    def decode(message: dict[str, Any]) -> object:
        decoded.append(message)
        return ("snapshot", message["id"])

    message = {"id": "o-1"}
    assert shared_view(message, decode)[1] is shared_view(message, decode)[1]
    assert len(decoded) == 1
    # An equal but distinct message (another publication) is decoded on its own.
    shared_view({"id": "o-1"}, decode)
    assert len(decoded) == 2


def test_one_execution_per_payload_and_key() -> None:
    shared = SharedExecutions()
    runs: list[str] = []

    def execute(name: str) -> Any:
        return lambda: runs.append(name) or name

    payload, other_payload = object(), object()
    assert shared.result(payload, "k", execute("1"), inspect.isawaitable) == "1"
    assert shared.result(payload, "k", execute("2"), inspect.isawaitable) == "1"
    assert shared.result(payload, "k2", execute("3"), inspect.isawaitable) == "3"
    assert shared.result(other_payload, "k", execute("4"), inspect.isawaitable) == "4"
    assert runs == ["1", "3", "4"]
    assert (shared.executed, shared.shared) == (3, 1)


async def test_an_awaited_result_survives_one_subscriber_going_away() -> None:
    shared = SharedExecutions()
    gate = asyncio.Event()

    async def slow() -> str:
        await gate.wait()
        return "result"

    payload = object()
    leaving = asyncio.ensure_future(shared.result(payload, "k", slow, inspect.isawaitable))
    staying = asyncio.ensure_future(shared.result(payload, "k", slow, inspect.isawaitable))
    await asyncio.sleep(0)
    leaving.cancel()
    gate.set()
    assert await staying == "result"
    with pytest.raises(asyncio.CancelledError):
        await leaving
