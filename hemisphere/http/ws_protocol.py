"""The WebSocket protocol the API serves with: uvicorn's websockets-sansio one, lighter for
connections that stay open for hours doing nothing (issue 9: at most 32 KB per idle AppSync
connection, bench/idle_memory.py).

What it keeps of uvicorn's, per connection, is all but three things:
- the handshake's request and response, which uvicorn (and websockets' parser, for the request)
  keep for the connection's life though neither reads them after the handshake (about 5.5 KB:
  their headers, and the path with its query string, which for AppSync clients carries the
  token);
- its asyncio.Queue of received events, and the asyncio.Event that says whether the socket is
  writable: each allocates 760-byte deques whether it is used or not (3.8 KB). A Mailbox and
  a flag with lazily made waiters do the same work.
Everything else, framing, keep-alive pings, closing, is uvicorn's code unchanged.

It relies on uvicorn internals (the attributes `queue`, `writable`, `request` and `response`,
and `start_keepalive` being called once the handshake is sent), so `__init__` checks them:
a uvicorn that changed them fails at the first connection, loudly, instead of leaking.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from subscriptions.mailbox import Mailbox


class LeanWebSocketsProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.queue, asyncio.Queue) or not isinstance(
            self.writable, asyncio.Event
        ):
            raise RuntimeError("uvicorn's websockets-sansio protocol changed: review ws_protocol")
        # uvicorn uses put_nowait, get (from the app's `receive`, one reader) and empty.
        self.queue = Mailbox(0)  # type: ignore[assignment]
        self.writable = _Flag(is_set=self.writable.is_set())  # type: ignore[assignment]

    def start_keepalive(self) -> None:
        # Called once, right after the handshake's response was written: past this point
        # neither uvicorn nor websockets reads the request or the response again.
        super().start_keepalive()
        self.__dict__.pop("response", None)
        request = self.__dict__.pop("request", None)
        if isinstance(request, Request):
            # websockets' parser keeps it too, in a generator's frame: empty it.
            request.headers.clear()
            request.path = ""


class _Flag:
    """asyncio.Event's set, clear, is_set and wait, with no deque until someone waits."""

    __slots__ = ("_set", "_waiters")

    def __init__(self, *, is_set: bool) -> None:
        self._set = is_set
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True
