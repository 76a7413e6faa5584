"""The region's broker: every API instance hears every change published in the region."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

Message = dict[str, Any]


class Broker(Protocol):
    async def publish(self, channel: str, message: Message) -> None: ...

    def subscribe(
        self, channel: str, where: Mapping[str, Any] | None = None
    ) -> AsyncIterator[Message]:
        """Messages published on `channel` from now on, until the iterator is closed; with
        `where` (field -> value, None meaning any), at least those whose fields equal the
        values, and possibly others (the caller still checks)."""
        ...
