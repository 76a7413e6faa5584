"""Tasks that live as long as a block or an exit stack: started in the background, cancelled
and awaited (so their `finally` runs) when it ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


async def cancel_task(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@contextlib.asynccontextmanager
async def in_background(
    coroutine: Coroutine[Any, Any, Any], name: str
) -> AsyncIterator[asyncio.Task[Any]]:
    task = asyncio.create_task(coroutine, name=name)
    try:
        yield task
    finally:
        await cancel_task(task)
