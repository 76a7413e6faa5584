"""One execution per change for every subscriber that would get the same answer.

A change published on a channel reaches each subscriber of the instance (the broker hands
them all the same message object). Without sharing, each of them decodes the message,
builds its view, and runs the whole GraphQL execution of its selection on it: with 100
subscribers of one customer, 100 identical executions per change, half the instance's CPU.

Two memos, both keyed by the identity of the shared object and holding it (so that its id is
not reused while the entry lives), both small and least-recently-used:
- `shared_view(message, decode)`: the decoded snapshot and its view, once per message and
  decoder;
- `SharedExecutions`: an event's execution result, once per (event payload, share key). The
  share key is everything else the answer depends on: the document, the operation, the
  variables and the caller's read scope (`domain.auth.read_scope`: mode, token customer,
  groups, a Lambda authorizer's decision). Subscribers whose filters let the change through
  get the same payload object; those whose filters stop it never execute at all.
An awaitable result is shared as a task each subscriber awaits shielded: one subscriber that
goes away does not cancel the others' result.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from subscriptions.ports import Message
from subscriptions.publication import selection_of
from subscriptions.selection import view


class _Memo:
    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[Hashable, tuple[object, Any]] = OrderedDict()

    def get(self, key: Hashable, owner: object) -> Any | None:
        found = self._entries.get(key)
        if found is None or found[0] is not owner:
            return None
        return found[1]

    def put(self, key: Hashable, owner: object, value: Any) -> None:
        self._entries[key] = (owner, value)
        self._entries.move_to_end(key)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)


_views = _Memo(1024)


def shared_view(message: Message, decode: Callable[[Any], object]) -> tuple[object, object]:
    """(snapshot, view) of a published message, computed once for all its subscribers."""
    key = (id(message), decode)
    found = _views.get(key, message)
    if found is not None:
        snapshot, seen = found
        return snapshot, seen
    snapshot = decode(message)
    shown = view(snapshot, selection_of(message))
    _views.put(key, message, (snapshot, shown))
    return snapshot, shown


class SharedExecutions:
    """Execution results of subscription events, shared between equal subscribers."""

    def __init__(self, size: int = 1024) -> None:
        self._memo = _Memo(size)
        self.executed = 0
        self.shared = 0

    def result(
        self,
        payload: object,
        share_key: Hashable,
        execute: Callable[[], Any],
        is_awaitable: Callable[[Any], bool],
    ) -> Any:
        key = (id(payload), share_key)
        found = self._memo.get(key, payload)
        if found is not None:
            self.shared += 1
            return asyncio.shield(found) if isinstance(found, asyncio.Future) else found
        self.executed += 1
        result = execute()
        if is_awaitable(result):
            task = asyncio.ensure_future(result)
            self._memo.put(key, payload, task)
            return asyncio.shield(task)
        self._memo.put(key, payload, result)
        return result


SHARED_EXECUTIONS = SharedExecutions()
