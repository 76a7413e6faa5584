"""One WebSocket through the edge: a client's connection bridged to a region's.

Both real-time protocols pass through unchanged: the client's offered subprotocols (graphql-ws,
graphql-transport-ws, AppSync's `header-…`) and query (`?header=&payload=`) go to the region,
whose chosen subprotocol is the one the client gets. The handshake costs a round trip (half
the RTT each way) and each message is delayed by half the RTT in its direction, through a
`DelayLine` (latency, not per-message serialization).

When the region goes away (its connection drops, or `close_for_failover` after its health
check failed) the client is closed with 1012 (service restart) so that it reconnects, and the
edge sends the new connection to the next healthy region.
"""

from __future__ import annotations

import asyncio
import contextlib

import websockets
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from regions.delay_proxy import DelayLine

# Close codes the client sees: 1012 asks it to reconnect (it lands on another region).
REGION_LOST_CODE = 1012
OPEN_TIMEOUT_SECONDS = 5.0
# The handshake headers that belong to one hop (the edge's own connection to the region).
_HOP_HEADERS = frozenset(
    {
        "host",
        "connection",
        "upgrade",
        "content-length",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
    }
)
Message = str | bytes


class RegionConnectionFailedError(Exception):
    """The region refused or did not answer the WebSocket handshake."""


class WebSocketBridge:
    """A client's WebSocket and its region's, until either side closes."""

    def __init__(self, region: str, one_way_seconds: float) -> None:
        self.region = region
        self.one_way_seconds = one_way_seconds
        self._task: asyncio.Task[None] | None = None
        self._failover = False

    def close_for_failover(self) -> None:
        """The region was found unhealthy: close the client (1012) so that it reconnects."""
        self._failover = True
        if self._task is not None:
            self._task.cancel()

    async def serve(self, scope: Scope, receive: Receive, send: Send, upstream_url: str) -> None:
        client = WebSocket(scope, receive, send)
        offered: list[str] = scope.get("subprotocols") or []
        self._task = asyncio.current_task()
        await asyncio.sleep(self.one_way_seconds)  # the upgrade request travels to the region
        try:
            upstream = await websockets.connect(
                upstream_url,
                # None, not []: an empty list would send an empty Sec-WebSocket-Protocol.
                subprotocols=[Subprotocol(p) for p in offered] if offered else None,
                additional_headers=_forwarded_headers(scope),
                open_timeout=OPEN_TIMEOUT_SECONDS,
                max_size=None,
                compression=None,
            )
        except InvalidStatus as refused:  # the region answered the upgrade with an HTTP error
            await asyncio.sleep(self.one_way_seconds)
            denial = refused.response
            await client.send_denial_response(
                Response(
                    bytes(denial.body or b""),
                    status_code=denial.status_code,
                    media_type=denial.headers.get("content-type"),
                )
            )
            return
        except (OSError, TimeoutError, websockets.InvalidHandshake) as error:
            raise RegionConnectionFailedError(f"{self.region}: {error}") from error
        try:
            await asyncio.sleep(self.one_way_seconds)  # the 101 travels back
            await client.accept(
                subprotocol=upstream.subprotocol,
                headers=[(b"x-hemisphere-region", self.region.encode())],
            )
            try:
                await self._bridge(client, upstream)
            except* (OSError, RuntimeError, ConnectionClosed, WebSocketDisconnect):
                pass  # either side vanished mid-message: both are closed below
        except asyncio.CancelledError:
            if not self._failover:
                raise
        finally:
            await upstream.close()
        if self._failover:
            await _close_quietly(client, REGION_LOST_CODE, f"region {self.region} unavailable")

    async def _bridge(self, client: WebSocket, upstream: ClientConnection) -> None:
        async def to_upstream(message: Message) -> None:
            await upstream.send(message)

        async def to_client(message: Message) -> None:
            if isinstance(message, str):
                await client.send_text(message)
            else:
                await client.send_bytes(message)

        outbound: DelayLine[Message] = DelayLine(self.one_way_seconds, to_upstream)
        inbound: DelayLine[Message] = DelayLine(self.one_way_seconds, to_client)
        client_close: list[int] = []

        async def upstream_side() -> None:
            await outbound.run()  # ends when the client's close has travelled to the region
            await upstream.close(_sendable(client_close[0] if client_close else 1000))

        async with asyncio.TaskGroup() as group:
            sending = group.create_task(upstream_side())
            receiving = group.create_task(inbound.run())
            from_client = group.create_task(self._from_client(client, outbound, client_close))
            code, reason = await self._from_upstream(upstream, inbound)
            await inbound.close()
            await receiving
            from_client.cancel()
            sending.cancel()
        await _close_quietly(client, code, reason)

    async def _from_client(
        self, client: WebSocket, line: DelayLine[Message], close_code: list[int]
    ) -> None:
        while True:
            message = await client.receive()
            if message["type"] == "websocket.disconnect":
                close_code.append(int(message.get("code") or 1000))
                await line.close()
                return
            text: str | None = message.get("text")
            await line.put(text if text is not None else bytes(message.get("bytes") or b""))

    async def _from_upstream(
        self, upstream: ClientConnection, line: DelayLine[Message]
    ) -> tuple[int, str]:
        """Relay until the region closes; the close code and reason the client should get."""
        try:
            async for message in upstream:
                await line.put(message)
        except ConnectionClosed:
            pass
        received = upstream.protocol.close_rcvd
        if received is None:  # dropped without a close frame: the region died
            return REGION_LOST_CODE, f"region {self.region} unavailable"
        return _sendable(received.code), received.reason


def _sendable(code: int) -> int:
    """1005/1006/1015 describe a close, they cannot be sent in one: send a normal close."""
    return 1000 if code in (1005, 1006, 1015) else code


def _forwarded_headers(scope: Scope) -> list[tuple[str, str]]:
    headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
    return [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in headers
        if name.decode("latin-1").lower() not in _HOP_HEADERS
    ]


async def _close_quietly(client: WebSocket, code: int, reason: str) -> None:
    # The client may be gone already; closing is then nothing to do.
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
        await client.close(code, reason)
