"""The region's broker: every API instance hears every change published in the region."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

Message = dict[str, Any]


class Broker(Protocol):
    async def publish(self, channel: str, message: Message) -> None: ...

    def subscribe(self, channel: str) -> AsyncIterator[Message]:
        """Messages published on `channel` from now on, until the iterator is closed."""
        ...
