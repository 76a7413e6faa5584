"""The in-process broker: one instance, no Redis. Each subscriber has a bounded queue; a
subscriber that falls that far behind is dropped rather than buffering without bound."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator

from subscriptions.ports import Message

log = logging.getLogger(__name__)

_CLOSED: Message = {}


class InProcessBroker:
    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[str, set[asyncio.Queue[Message]]] = defaultdict(set)

    async def publish(self, channel: str, message: Message) -> None:
        for queue in list(self._subscribers.get(channel, ())):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                log.warning(
                    "dropping a slow subscriber of %s (%d messages behind)", channel, queue.qsize()
                )
                self._subscribers[channel].discard(queue)
                queue.get_nowait()
                queue.put_nowait(_CLOSED)

    async def subscribe(self, channel: str) -> AsyncIterator[Message]:
        queue: asyncio.Queue[Message] = asyncio.Queue(self._queue_size)
        self._subscribers[channel].add(queue)
        try:
            while True:
                message = await queue.get()
                if message is _CLOSED:
                    return
                yield message
        finally:
            self._subscribers[channel].discard(queue)
            if not self._subscribers[channel]:
                del self._subscribers[channel]

    def subscriber_count(self, channel: str) -> int:
        return len(self._subscribers.get(channel, ()))
