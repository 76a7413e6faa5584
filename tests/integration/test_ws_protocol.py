"""The API's WebSocket protocol (uvicorn's websockets-sansio, lean) under a real uvicorn and a
real client: messages both ways, closes both ways, and what it lets go after the handshake."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from hemisphere.http.ws_protocol import LeanWebSocketsProtocol, _Flag
from hemisphere.localstack import free_port


async def echo(websocket: WebSocket) -> None:
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol="graphql-ws" if "graphql-ws" in offered else None)
    try:
        while True:
            text = await websocket.receive_text()
            if text == "close":
                await websocket.close(4408)
                return
            await websocket.send_text(text.upper())
    except WebSocketDisconnect:
        pass


async def flood(websocket: WebSocket) -> None:
    """More than the transport buffers: sends wait on the protocol's `writable` flag."""
    await websocket.accept()
    for n in range(FLOOD):
        await websocket.send_text(f"{n:08d}" + "x" * 8192)
    await websocket.close()


FLOOD = 1000


@contextlib.contextmanager
def serving() -> Iterator[tuple[int, uvicorn.Server]]:
    port = free_port()
    config = uvicorn.Config(
        Starlette(routes=[WebSocketRoute("/ws", echo), WebSocketRoute("/flood", flood)]),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws=LeanWebSocketsProtocol,
        ws_per_message_deflate=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield port, server
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, uvicorn.Server]]:
    with serving() as running:
        yield running


async def test_messages_go_both_ways_and_the_handshake_is_let_go(
    server: tuple[int, uvicorn.Server],
) -> None:
    port, uvicorn_server = server
    url = f"ws://127.0.0.1:{port}/ws?header={'x' * 1500}"
    async with websockets.connect(url, subprotocols=["graphql-ws"]) as socket:  # type: ignore[list-item]
        assert socket.subprotocol == "graphql-ws"
        for n in range(50):
            await socket.send(f"message {n}")
            assert await asyncio.wait_for(socket.recv(), 5) == f"MESSAGE {n}"
        protocols: list[Any] = [
            p
            for p in uvicorn_server.server_state.connections
            if isinstance(p, LeanWebSocketsProtocol)
        ]
        assert protocols
        for protocol in protocols:
            assert "request" not in vars(protocol) and "response" not in vars(protocol)


async def test_the_server_closes_with_its_code(server: tuple[int, uvicorn.Server]) -> None:
    port, _ = server
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as socket:
        await socket.send("close")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408


async def test_a_client_that_leaves_ends_the_app(server: tuple[int, uvicorn.Server]) -> None:
    port, uvicorn_server = server
    before = len(uvicorn_server.server_state.tasks)
    socket = await websockets.connect(f"ws://127.0.0.1:{port}/ws")
    await socket.send("hello")
    assert await asyncio.wait_for(socket.recv(), 5) == "HELLO"
    await socket.close()
    deadline = time.monotonic() + 5
    while len(uvicorn_server.server_state.tasks) > before:
        assert time.monotonic() < deadline, "the app's task did not end"
        await asyncio.sleep(0.02)


async def test_a_client_that_reads_slowly_gets_everything_in_order(
    server: tuple[int, uvicorn.Server],
) -> None:
    port, _ = server
    async with websockets.connect(f"ws://127.0.0.1:{port}/flood", max_queue=1) as socket:
        await asyncio.sleep(0.5)  # the server's writes pile up, and it pauses
        received = [int(str(m)[:8]) async for m in socket]
    assert received == list(range(FLOOD))


async def test_the_writable_flag_releases_every_waiter_when_set() -> None:
    flag = _Flag(is_set=True)
    assert await flag.wait()
    flag.clear()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1) == [True, True, True]
    flag.clear()
    cancelled = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    flag.set()
    assert flag.is_set()
