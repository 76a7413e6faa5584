"""AppSync's real-time endpoint (`/graphql/realtime`, and `/graphql?header=…&payload=…`): the
socket side of subscriptions/appsync_session.py.

The upgrade is always accepted (with subprotocol `graphql-ws`); credentials that do not
verify are answered after it, with `connection_error` once the client sends
`connection_init`, then the socket is closed. Answering after the upgrade is what AppSync
clients expect: a refused upgrade tells them nothing, and Amplify retries it forever, while a
`connection_error` of errorCode 401 makes it stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import orjson
import strawberry
from starlette.datastructures import QueryParams
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from domain.auth import Caller
from domain.errors import UnauthorizedError
from hemisphere.http.authn import NOT_AUTHORIZED, Authenticator
from hemisphere.http.realtime_auth import authenticate_connection, authenticate_start
from hemisphere.http.realtime_options import RealtimeOptions
from subscriptions import appsync_protocol as protocol
from subscriptions.appsync_session import AppSyncSession
from subscriptions.mailbox import Mailbox

log = logging.getLogger(__name__)

SendText = Callable[[str], None]

# Close codes: ours are in the 4000 range the WebSocket RFC leaves to applications.
CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_SLOW = 4408
CLOSE_BAD_FRAME = 1003

_KEEP_ALIVE = orjson.dumps(protocol.keep_alive()).decode()


class AppSyncRealtime:
    """An ASGI app for WebSocket scopes."""

    def __init__(
        self,
        schema: strawberry.Schema,
        authenticator: Authenticator,
        make_context: Callable[[Caller], object],
        options: RealtimeOptions,
    ) -> None:
        self._schema = schema
        self._authenticator = authenticator
        self._make_context = make_context
        self._options = options

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        offered = list(scope.get("subprotocols") or [])
        await websocket.accept(
            subprotocol=protocol.SUBPROTOCOL if protocol.SUBPROTOCOL in offered else None
        )
        refusal = await self._refusal(websocket, offered)
        # Read once: the query string (the client's token, base64) and the handshake's headers
        # would otherwise stay in the scope, which uvicorn and Starlette hold for the
        # connection's life (2.4 KB of an idle one).
        scope["query_string"], scope["headers"] = b"", []
        try:
            first = await asyncio.wait_for(
                websocket.receive_text(), self._options.init_timeout_seconds
            )
        except (WebSocketDisconnect, TimeoutError, KeyError):
            await _close(websocket, CLOSE_UNAUTHORIZED if refusal else 1000)
            return
        if refusal is not None:
            error = protocol.connection_error("UnauthorizedException", refusal, 401)
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.send_text(orjson.dumps(error).decode())
            await _close(websocket, CLOSE_UNAUTHORIZED)
            return
        await _Connection(websocket, self._options).serve(self._session, first)

    async def _refusal(self, websocket: WebSocket, offered: list[str]) -> str | None:
        """Why the connection's credentials are refused, or None when they verify."""
        # Parsed here rather than through `websocket.query_params`, which would keep the parsed
        # token on the WebSocket for the connection's life (1.5 KB).
        query = QueryParams(websocket.scope["query_string"])
        encoded = query.get("header") or protocol.header_subprotocol(offered)
        if not encoded:
            return NOT_AUTHORIZED
        try:
            headers = protocol.decode_header(encoded)
            payload = protocol.decode_payload(query.get("payload"))
            await authenticate_connection(self._authenticator, headers, payload)
        except ValueError:
            return "The connection header is not base64-encoded JSON."
        except UnauthorizedError as exc:
            # As over HTTP: the same answer for a missing and a wrong key.
            return exc.message if "authorization" in headers else NOT_AUTHORIZED
        return None

    def _session(self, send: SendText, on_stream_end: Callable[[str], None]) -> AppSyncSession:
        return AppSyncSession(
            schema=self._schema,
            make_context=self._make_context,
            authorize=lambda headers, data: authenticate_start(self._authenticator, headers, data),
            send=send,
            on_stream_end=on_stream_end,
            rules=self._options.filter_rules,
            limits=self._options.limits,
        )


class _Connection:
    """The socket of an accepted connection: `serve` reads and feeds the session, a writer task
    drains a bounded mailbox of outgoing messages while there are some, and a timer sends the
    keep-alives. Whichever ends first (the client leaves, a send fails, the mailbox overflows)
    ends the others.

    Lean on purpose: thousands of these sit idle per instance (issue 9: at most 32 KB each). So
    no asyncio.Queue (four deques, even empty), no Event, no keep-alive task, no reader task
    beside the one serving the connection, and the writer runs only while messages wait."""

    def __init__(self, websocket: WebSocket, options: RealtimeOptions) -> None:
        self._websocket = websocket
        self._options = options
        self._outgoing: Mailbox[str] = Mailbox(options.max_pending_messages)
        self._too_slow = False
        self._ended = False
        # The task reading the socket while it does (`serve`'s), for `_end` to interrupt.
        self._reading: asyncio.Task[object] | None = None
        self._interrupted = False
        self._writer: asyncio.Task[None] | None = None
        self._keep_alive: asyncio.TimerHandle | None = None

    def send(self, text: str) -> None:
        if self._ended:
            return
        try:
            self._outgoing.put_nowait(text)
        except asyncio.QueueFull:
            self._slow()
            return
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())

    def stream_ended(self, id: str) -> None:
        # The broker dropped a subscriber of this connection for falling behind.
        self._slow()

    async def serve(
        self,
        make_session: Callable[[SendText, Callable[[str], None]], AppSyncSession],
        first: str,
    ) -> None:
        session = make_session(self.send, self.stream_ended)
        # The first message (connection_init) is answered before the first `ka` is queued.
        await session.receive(first)
        self._tick()
        reading = self._reading = asyncio.current_task()
        try:
            await self._read(session)
        except asyncio.CancelledError:
            # `_end` interrupts the reading when a send fails or the client is too slow (as
            # asyncio.timeout does); any other cancellation (the server stopping) goes on.
            if not self._interrupted or reading is None or reading.uncancel() > 0:
                raise
        finally:
            self._reading = None
            self._ended = True
            if self._keep_alive is not None:
                self._keep_alive.cancel()
            if self._writer is not None:
                self._writer.cancel()
                await asyncio.gather(self._writer, return_exceptions=True)
            await session.close()
        if self._too_slow:
            log.warning(
                "disconnected a slow real-time client (%d messages waiting, %d subscriptions)",
                self._outgoing.qsize(),
                session.subscription_count,
            )
            await _close(self._websocket, CLOSE_TOO_SLOW)

    def _slow(self) -> None:
        self._too_slow = True
        self._end()

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        reading = self._reading
        # From the reading task itself (a message it handled overflowed the mailbox), `_read`
        # sees `_ended` once that message is handled.
        if reading is not None and reading is not asyncio.current_task():
            self._interrupted = True
            reading.cancel()

    async def _read(self, session: AppSyncSession) -> None:
        while not self._ended:
            try:
                text = await self._websocket.receive_text()
            except WebSocketDisconnect:
                return
            except KeyError:
                # A binary frame: the protocol is JSON text only.
                await _close(self._websocket, CLOSE_BAD_FRAME)
                return
            await session.receive(text)
            # Not kept while waiting for the next one (a `start` is a kilobyte with its token).
            del text

    async def _write(self) -> None:
        """Sends what waits, then ends; `send` starts another when more comes."""
        try:
            while not self._outgoing.empty():
                text = self._outgoing.get_nowait()
                try:
                    await self._websocket.send_text(text)
                except (WebSocketDisconnect, RuntimeError):
                    self._end()
                    return
        finally:
            # No await since the mailbox was seen empty: `send` cannot have missed this end.
            self._writer = None

    def _tick(self) -> None:
        self.send(_KEEP_ALIVE)
        self._keep_alive = asyncio.get_running_loop().call_later(
            self._options.keepalive_seconds, self._tick
        )


async def _close(websocket: WebSocket, code: int) -> None:
    # The client may be gone already; closing twice is not an error worth a traceback.
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code)
