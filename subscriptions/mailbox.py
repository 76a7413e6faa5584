"""A bounded first-in first-out queue with a single consumer, for what each subscriber and each
real-time connection keeps: the broker's messages for one subscription, the texts waiting to be
sent on one socket.

asyncio.Queue would do, but it allocates four deques (its items, getters, putters, and the
waiters of its `join` Event) of about 760 bytes each as soon as it is made, empty or not: with
two queues per connection, 6 KB of an idle connection's memory (bench/idle_memory.py). This one
holds an item deque only while items wait, and at most one waiting future.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Mailbox(Generic[T]):
    __slots__ = ("_items", "_maxsize", "_waiter")

    def __init__(self, maxsize: int) -> None:
        """`maxsize` items at most may wait (put_nowait raises asyncio.QueueFull past it); 0 or
        less: no bound, as for asyncio.Queue."""
        self._maxsize = maxsize
        self._items: deque[T] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self._items) if self._items is not None else 0

    def empty(self) -> bool:
        return self._items is None

    def put_nowait(self, item: T) -> None:
        items = self._items
        if items is None:
            items = self._items = deque()
        elif 0 < self._maxsize <= len(items):
            raise asyncio.QueueFull
        items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> T:
        items = self._items
        if items is None:
            raise asyncio.QueueEmpty
        item = items.popleft()
        if not items:
            # An empty deque still holds a 64-slot block: let it go until the next item.
            self._items = None
        return item

    async def get(self) -> T:
        """The oldest item, waiting for one if none is there. One consumer at a time."""
        while self._items is None:
            if self._waiter is not None:
                raise RuntimeError("Mailbox.get() is already awaited by another consumer")
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return self.get_nowait()
